"""Hypothesis strategies for mail and IMAP, for property tests against any server.

    from hypothesis import given
    from millipost import strategies as ms

    @given(raw=ms.messages())          # RFC 5322 / MIME messages as octets
    def test_append(raw): ...

    ms.addresses(), ms.address_lists(), ms.phrases()       # header values (RFC 5322, 2047)
    ms.body_tree(), ms.render(part, style)                  # MIME trees and their octets
    ms.flags(), ms.keywords(), ms.flag_lists()              # IMAP flags (RFC 9051 §2.3.2)
    ms.sequence_sets(max_number)                            # IMAP sequence sets
    ms.search_keys(), ms.search_programs()                  # IMAP SEARCH keys (RFC 9051 §6.4.4)

Messages cover nested multipart/mixed|alternative|related|digest, message/rfc822 parts,
text/plain|html with charsets, base64 / quoted-printable / 7bit / 8bit, RFC 2047 encoded-words,
RFC 2231 parameters (charset'lang', continuations), Content-Disposition/ID/Description/Language/
Location, folding, header-name case, transport padding and sometimes bare LF line ends. Every
value is valid by the RFCs: a server that refuses or misreads one is wrong.

Requires Hypothesis (``pip install hypothesis``); it is imported by this module only.
"""
from __future__ import annotations

import base64
import quopri
import re
import urllib.parse
from dataclasses import dataclass, field

from hypothesis import strategies as st

__all__ = [
    "Part", "Style", "render", "messages", "body_tree", "top_headers", "addresses",
    "address_lists", "phrases", "flags", "keywords", "flag_lists", "sequence_sets",
    "search_keys", "search_programs",
]

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
               min_size=1, max_size=10)
UNICODE_WORD = st.text(alphabet="abcxyzéüßøñçÆ€中文пр", min_size=1, max_size=8)
SEP = st.sampled_from([" ", " ", " ", "  ", "\r\n ", "\r\n\t", "\r\n  "])


@st.composite
def folded(draw, words):
    """A header value from words, joined by spaces or folding (CRLF + WSP)."""
    out = words[0]
    for w in words[1:]:
        out += draw(SEP) + w
    return out


@st.composite
def encoded_word(draw):
    text = draw(UNICODE_WORD)
    charset = draw(st.sampled_from(["utf-8", "UTF-8", "iso-8859-1"]))
    try:
        data = text.encode(charset)
    except UnicodeEncodeError:
        charset, data = "utf-8", text.encode("utf-8")
    if draw(st.booleans()):
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    q = "".join(chr(c) if chr(c).isalnum() and c < 128 else f"={c:02X}" for c in data)
    return f"=?{charset}?Q?{q}?="


@st.composite
def phrase(draw):
    # Plain words, encoded-words (RFC 2047) and raw UTF-8 words (RFC 6532).
    words = draw(st.lists(st.one_of(WORD, encoded_word(), UNICODE_WORD), min_size=1,
                          max_size=4))
    return draw(folded(words))


@st.composite
def address(draw):
    local = draw(WORD).lower()
    host = draw(st.sampled_from(["example.org", "mail.example.net", "localhost"]))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return f"{local}@{host}"
    name = draw(st.lists(st.one_of(WORD, encoded_word()), min_size=1, max_size=3))
    if kind == 1:
        return f"{' '.join(name)} <{local}@{host}>"
    plain = draw(st.lists(WORD, min_size=1, max_size=3))
    return f'"{" ".join(plain)}" <{local}@{host}>'


@st.composite
def address_list(draw):
    addrs = draw(st.lists(address(), min_size=1, max_size=3))
    return draw(folded([a + "," for a in addrs[:-1]] + [addrs[-1]]))


@st.composite
def param(draw, name):
    """`; name=value` in one of the RFC 2045/2231 forms."""
    form = draw(st.integers(0, 4))
    value = draw(st.text(alphabet="abcdefXYZ0123 .-_éü€", min_size=1, max_size=20))
    ascii_value = value.encode("ascii", "ignore").decode() or "x"
    if draw(st.integers(0, 4)) == 0:
        name = name.upper()  # parameter names are case-insensitive (RFC 2045 §5.1)
    if form == 0:
        # Whitespace around ';' and '=' is allowed (RFC 2045 §5.1 uses RFC 822 lexical rules).
        sep, eq = draw(st.sampled_from([("; ", "="), (";", "="), (" ; ", " = "), (";\r\n ", "=")]))
        return f"{sep}{name}{eq}{re.sub('[^A-Za-z0-9.]', '', ascii_value) or 'v'}"
    if form == 1:
        # Sometimes raw UTF-8 in the quoted string (RFC 6532 allows it in MIME headers too).
        return f'; {name}="{value if draw(st.integers(0, 3)) == 0 else ascii_value}"'
    lang = draw(st.sampled_from(["", "en", "de-CH"]))
    data = urllib.parse.quote(value.encode("utf-8"), safe="")
    if form == 2:
        return f"; {name}*=utf-8'{lang}'{data}"
    # Continuations: extended segments, maybe a plain quoted one at the end.
    cut = draw(st.integers(1, max(1, len(data) - 1)))
    while cut < len(data) and data[cut - 1] == "%" or (cut >= 2 and data[cut - 2] == "%"):
        cut += 1
    segs = [f"{name}*0*=utf-8'{lang}'{data[:cut]}"]
    if cut < len(data):
        segs.append(f"{name}*1*={data[cut:]}")
    if form == 4:
        segs.append(f'{name}*{len(segs)}="{re.sub("[^A-Za-z0-9]", "", ascii_value) or "z"}"')
    sep = draw(st.sampled_from(["; ", ";\r\n ", ";\r\n\t"]))
    return "".join(sep + s for s in segs)


@dataclass
class Part:
    headers: list = field(default_factory=list)  # (name, value) as written
    body: bytes = b""
    children: list = field(default_factory=list)
    boundary: str = ""


_boundary_counter = [0]


def boundary(draw) -> str:
    _boundary_counter[0] += 1
    token = draw(st.text(alphabet="abcXYZ0189'()+_,-./:?", min_size=0, max_size=12))
    return f"=_{_boundary_counter[0]}{token}"


@st.composite
def content_extras(draw, headers):
    if draw(st.booleans()):
        headers.append(("Content-ID", f"<{draw(WORD)}@{draw(WORD)}.example>"))
    if draw(st.booleans()):
        headers.append(("Content-Description", draw(phrase())))
    if draw(st.integers(0, 3)) == 0:
        headers.append(("Content-Language", draw(st.sampled_from(
            ["en", "de-CH", "en, fr", "en-GB,\r\n de"]))))
    if draw(st.integers(0, 3)) == 0:
        headers.append(("Content-Location", f"http://example.org/{draw(WORD)}.html"))
    if draw(st.booleans()):
        disp = draw(st.sampled_from(["attachment", "inline", "Attachment"]))
        names = draw(st.lists(st.sampled_from(["filename", "size", "x-note"]), max_size=2,
                              unique=True))
        ps = "".join(draw(param(n)) for n in names)
        headers.append(("Content-Disposition", disp + ps))
    if draw(st.integers(0, 5)) == 0:
        headers.append(("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="))


TEXT_LINE = st.text(alphabet="abcdefghij klmnopqrstuvwxyz.,;:!?'\"0123456789ABC\tXYZ", max_size=60)
TEXT_LINE_8 = st.text(alphabet="abcdef xyz.,éüß€中пр\t", max_size=40)


@st.composite
def leaf(draw):
    kind = draw(st.sampled_from(["text/plain", "text/html", "application/octet-stream",
                                 "image/png", "TEXT/Plain"]))
    headers = []
    text = kind.lower().startswith("text")
    cte = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", None,
                                "Base64", "QUOTED-PRINTABLE"]))
    charset = draw(st.sampled_from(["utf-8", "iso-8859-1", "us-ascii", None]))
    ps = ""
    if text and charset:
        ps += f"; charset={charset}" if draw(st.booleans()) else f'; charset="{charset}"'
    # Distinct names: a parameter given twice is invalid (RFC 2045 §5.1 grammar aside, RFC 2231
    # §3 forbids mixing forms of one name), and readers differ on which one wins.
    names = draw(st.lists(st.sampled_from(["name", "format", "x-a"]), max_size=2, unique=True))
    ps += "".join(draw(param(n)) for n in names)
    if kind == "text/plain" and not ps and draw(st.booleans()):
        pass  # no Content-Type at all: text/plain; charset=us-ascii (RFC 2045 §5.2)
    else:
        headers.append(("Content-Type", kind + ps))
    # The decoded content.
    if text:
        eight = cte not in ("7bit", None) and charset != "us-ascii"
        lines = draw(st.lists(TEXT_LINE_8 if eight else TEXT_LINE, max_size=8))
        enc = charset if charset and charset != "us-ascii" else "utf-8"
        content = "\r\n".join(lines).encode(enc, "replace")
        if draw(st.booleans()):
            content += b"\r\n"
    else:
        content = draw(st.binary(max_size=200))
        if cte not in ("base64", "Base64", "quoted-printable", "QUOTED-PRINTABLE"):
            cte = "base64"
    low = (cte or "7bit").lower()
    if low == "base64":
        body = base64.encodebytes(content).replace(b"\n", b"\r\n")
    elif low == "quoted-printable":
        body = quopri.encodestring(content.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    else:
        body = content
    if cte is not None:
        headers.append(("Content-Transfer-Encoding", cte))
    draw(content_extras(headers))
    return Part(headers=headers, body=body)


def as_message(headers: list, root: Part) -> Part:
    """A message: `headers` followed by the MIME header of `root`, with `root`'s body."""
    msg = Part(headers=headers + root.headers, body=root.body, children=root.children,
               boundary=root.boundary)
    for attr in ("preamble", "epilogue"):
        if hasattr(root, attr):
            setattr(msg, attr, getattr(root, attr))
    return msg


def message_part(inner):
    @st.composite
    def build(draw):
        headers = [("Content-Type", draw(st.sampled_from(["message/rfc822", "Message/RFC822"])))]
        draw(content_extras(headers))
        encapsulated = as_message(draw(top_headers()), draw(inner))
        return Part(headers=headers, children=[encapsulated])
    return build()


def multipart(children):
    @st.composite
    def build(draw):
        kids = draw(st.lists(children, min_size=1, max_size=4))
        sub = draw(st.sampled_from(["mixed", "alternative", "related", "Mixed"]))
        bnd = boundary(draw)
        q = draw(st.booleans()) or not re.fullmatch(r"[A-Za-z0-9_=.-]+", bnd)
        ps = f'; boundary="{bnd}"' if q else f"; boundary={bnd}"
        if sub == "related":
            ps += '; type="text/html"'
        headers = [("Content-Type", f"multipart/{sub}" + ps)]
        if draw(st.integers(0, 3)) == 0:
            headers.append(("Content-Disposition", "inline"))
        p = Part(headers=headers, children=kids, boundary=bnd)
        p.preamble = draw(st.sampled_from([b"", b"This is a MIME message.\r\n"]))
        p.epilogue = draw(st.sampled_from([b"", b"\r\n", b"epilogue\r\n"]))
        return p
    return build()


@st.composite
def top_headers(draw):
    h = [("From", draw(address_list())), ("To", draw(address_list()))]
    if draw(st.booleans()):
        h.append(("Cc", draw(address_list())))
    h.append(("Subject", draw(phrase())))
    h.append(("Date", draw(st.sampled_from(["Mon, 2 Mar 2026 10:00:00 +0100",
                                            "Tue, 31 Dec 2024 23:59:59\r\n -0000"]))))
    if draw(st.booleans()):
        h.append(("Message-ID", f"<{draw(WORD)}@example.org>"))
    if draw(st.integers(0, 3)) == 0:
        h.append(("In-Reply-To", f"<{draw(WORD)}@example.org>"))
    if draw(st.integers(0, 3)) == 0:
        h.append(("Reply-To", draw(address_list())))
    h.append(("MIME-Version", "1.0"))
    return h


@dataclass
class Style:
    """Valid variations in how the same message is written."""
    name_case: str = "as-is"     # header field names: as-is, lower, upper
    after_colon: str = " "       # what follows the colon: " ", "", "\t", "  "
    padding: str = ""            # transport padding after delimiters (RFC 2046 §5.1.1)


def field_name(n: str, style: Style) -> str:
    return n.lower() if style.name_case == "lower" else n.upper() if style.name_case == "upper" \
        else n


def render(part: Part, style: Style = Style()) -> bytes:
    """The octets of a part: header, blank line, body (a multipart's children between its
    delimiters; a message/rfc822 part's encapsulated message)."""
    out = b"".join(field_name(n, style).encode() + b":" + style.after_colon.encode() +
                   v.encode("utf-8") + b"\r\n" for n, v in part.headers)
    out += b"\r\n"
    pad = style.padding.encode()
    if part.boundary:
        out += part.preamble
        for k in part.children:
            out += b"--" + part.boundary.encode() + pad + b"\r\n" + render(k, style) + b"\r\n"
        out += b"--" + part.boundary.encode() + b"--" + pad + b"\r\n" + part.epilogue
    elif part.children:
        out += render(part.children[0], style)
    else:
        out += part.body
    return out


def digest(inner):
    """multipart/digest whose parts are messages, some without Content-Type (RFC 2046 §5.1.5:
    the default there is message/rfc822)."""
    @st.composite
    def build(draw):
        kids = draw(st.lists(message_part(inner), min_size=1, max_size=3))
        for k in kids:
            if draw(st.booleans()):
                k.headers = [(n, v) for n, v in k.headers if n != "Content-Type"]
        bnd = boundary(draw)
        p = Part(headers=[("Content-Type", f'multipart/digest; boundary="{bnd}"')],
                 children=kids, boundary=bnd)
        p.preamble, p.epilogue = b"", b""
        return p
    return build()


def body_tree():
    return st.recursive(leaf(), lambda inner: st.one_of(multipart(inner), message_part(inner),
                                                        digest(inner)), max_leaves=6)


@st.composite
def messages(draw):
    style = Style(name_case=draw(st.sampled_from(["as-is", "as-is", "lower", "upper"])),
                  after_colon=draw(st.sampled_from([" ", " ", "", "\t", "  "])),
                  padding=draw(st.sampled_from(["", "", " ", "\t ", "  "])))
    raw = render(as_message(draw(top_headers()), draw(body_tree())), style)
    if draw(st.integers(0, 9)) == 0:
        raw = raw.replace(b"\r\n", b"\n")  # bare LF throughout, as some MTAs store mail
    return raw




# --- IMAP values -------------------------------------------------------------------------------

SYSTEM_FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
_ATOM_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$_-.&+!#'"


def keywords():
    """Keywords: atoms (RFC 9051 flag-keyword), e.g. "$Forwarded", "Work"."""
    return st.one_of(st.sampled_from(["$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "Work"]),
                     st.text(alphabet=_ATOM_CHARS, min_size=1, max_size=12))


def flags():
    """One settable flag: a system flag (never \\Recent) or a keyword."""
    return st.one_of(st.sampled_from(SYSTEM_FLAGS), keywords())


def flag_lists(max_size: int = 5):
    """A list of distinct flags (case-insensitively distinct), for STORE and APPEND."""
    return st.lists(flags(), max_size=max_size, unique_by=str.lower)


@st.composite
def sequence_sets(draw, max_number: int = 50, allow_star: bool = True):
    """An IMAP sequence-set (RFC 9051 §9: seq-number / seq-range, comma-separated) over
    1..max_number, with "*" sometimes; ranges may be written high:low."""
    def number():
        if allow_star and draw(st.integers(0, 9)) == 0:
            return "*"
        return str(draw(st.integers(1, max(1, max_number))))
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        a = number()
        parts.append(a if draw(st.booleans()) else f"{a}:{number()}")
    return ",".join(parts)


_DATES = ["1-Feb-1994", "02-Mar-2026", "31-Dec-2024", "29-Feb-2024"]


@st.composite
def search_keys(draw, depth: int = 2, max_number: int = 50):
    """One SEARCH key (RFC 9051 §6.4.4) as text: flags, keywords, sizes, dates, sets, text
    keys with quoted strings, and NOT / OR / parenthesised groups up to `depth`."""
    simple = [
        "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN", "UNANSWERED", "UNDELETED",
        "UNDRAFT", "UNFLAGGED", "UNSEEN",
    ]
    kind = draw(st.integers(0, 9 if depth > 0 else 6))
    if kind <= 2:
        return draw(st.sampled_from(simple))
    if kind == 3:
        return f"{draw(st.sampled_from(['KEYWORD', 'UNKEYWORD']))} {draw(keywords())}"
    if kind == 4:
        op = draw(st.sampled_from(["LARGER", "SMALLER"]))
        return f"{op} {draw(st.integers(0, 100000))}"
    if kind == 5:
        op = draw(st.sampled_from(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]))
        return f"{op} {draw(st.sampled_from(_DATES))}"
    if kind == 6:
        field_ = draw(st.sampled_from(["SUBJECT", "FROM", "TO", "CC", "BCC", "BODY", "TEXT"]))
        text = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz éü", min_size=0, max_size=8))
        return f'{field_} "{text}"'
    if kind == 7:
        return f"NOT {draw(search_keys(depth - 1, max_number))}"
    if kind == 8:
        a, b = draw(search_keys(depth - 1, max_number)), draw(search_keys(depth - 1, max_number))
        return f"OR {a} {b}"
    if draw(st.booleans()):
        return f"UID {draw(sequence_sets(max_number))}"
    inner = draw(st.lists(search_keys(depth - 1, max_number), min_size=1, max_size=3))
    return "(" + " ".join(inner) + ")"


@st.composite
def search_programs(draw, max_number: int = 50):
    """The arguments of a SEARCH command: optional CHARSET UTF-8, then one or more keys."""
    keys = draw(st.lists(search_keys(2, max_number), min_size=1, max_size=3))
    prefix = "CHARSET UTF-8 " if draw(st.booleans()) else ""
    return prefix + " ".join(keys)


# Names used by older code.
addresses = address
address_lists = address_list
phrases = phrase
