# mime/testdata/pyemail_structure.py: the MIME structure of .eml files as Python's `email`
# package (policy=default) reads them: an independent reading that pyemail_test.cpp compares
# with millipost's parser.
#
# One line per part, depth-first, indented two spaces per level; an encapsulated message is a
# child of its message/* part:
#   <type>/<subtype>[ name="value"]...[ disposition=<type>[ name="value"]...][ decoded=<octets>]
# Parameters are sorted by name, values RFC 2231-decoded, non-ASCII as \uXXXX escapes; decoded=
# is the size of a leaf after its Content-Transfer-Encoding is undone. Given several files, each
# one's lines follow a line `# <path>`.
import email
import email.policy
import sys


def quote(value):
    text = value.encode("ascii", "backslashreplace").decode("ascii")
    return '"' + text.replace('"', '\\"') + '"'


def params_of(header):
    if header is None:
        return ""
    try:
        params = dict(header.params)
    except AttributeError:  # an unparsable header has no params
        return ""
    return "".join(f" {name.lower()}={quote(str(params[name]))}" for name in sorted(params))


def describe(part, depth, out):
    line = "  " * depth + part.get_content_type()
    line += params_of(part.get("content-type"))
    disposition = part.get("content-disposition")
    if disposition is not None and getattr(disposition, "content_disposition", None):
        line += " disposition=" + disposition.content_disposition
        line += params_of(disposition)
    payload = part.get_payload()
    if isinstance(payload, list):
        out.append(line)
        for child in payload:
            describe(child, depth + 1, out)
        return
    decoded = part.get_payload(decode=True)
    line += f" decoded={len(decoded) if decoded is not None else 0}"
    out.append(line)


def structure(path):
    # message_from_bytes keeps CRLF (message_from_binary_file would read through universal
    # newlines and turn CRLF into LF, changing every size).
    with open(path, "rb") as f:
        message = email.message_from_bytes(f.read(), policy=email.policy.default)
    out = []
    describe(message, 0, out)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: pyemail_structure.py FILE.eml...")
    for name in sys.argv[1:]:
        if len(sys.argv) > 2:
            print("# " + name)
        print("\n".join(structure(name)))
