#!/usr/bin/env python3
"""Writes an mbox of realistic mail for load tools that read one (Dovecot's imaptest `mbox=`).

Deterministic from --seed: plain and multipart/alternative messages, attachments in base64,
quoted-printable bodies, non-ASCII headers as RFC 2047 encoded-words, threads with
In-Reply-To/References, and heavy-tailed sizes (most messages a few KB, a few near a MB).

    python3 bench/make_mbox.py --messages 500 --out /tmp/realistic.mbox
"""
from __future__ import annotations

import argparse
import email.utils
import random
from email.header import Header
from email.message import EmailMessage

WORDS = ("the meeting report budget quarter design review draft invoice travel plan team "
         "release schedule server mail client storage index search thread reply update "
         "Grüße Köln Zürich naïve café résumé Ελλάδα Москва 東京 ").split()
NAMES = ["Alice Example", "Bob Builder", "Jürgen Müller", "Zoë Ångström", "Дмитрий Иванов",
         "Chloé Dubois", "王小明", "Carol Smith", "Dave Jones", "Eve Martin"]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def body_text(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        line = sentence(rng, rng.randint(6, 14))
        lines.append(line)
        total += len(line.encode()) + 2
    return "\n".join(lines) + "\n"


def address(rng: random.Random, i: int) -> str:
    name = rng.choice(NAMES)
    return email.utils.formataddr((str(Header(name, "utf-8")) if not name.isascii() else name,
                                   f"user{i}@example.org"))


def make(rng: random.Random, n: int, threads: list[list[str]]) -> EmailMessage:
    m = EmailMessage()
    m["From"] = address(rng, rng.randint(1, 200))
    m["To"] = ", ".join(address(rng, rng.randint(1, 200)) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.3:
        m["Cc"] = address(rng, rng.randint(1, 200))
    subject = sentence(rng, rng.randint(2, 7))
    msgid = f"<{n}.{rng.getrandbits(40):x}@example.org>"
    if threads and rng.random() < 0.4:
        thread = rng.choice(threads)
        m["In-Reply-To"] = thread[-1]
        m["References"] = " ".join(thread[-10:])
        subject = "Re: " + thread[0]
        thread.append(msgid)
    else:
        threads.append([subject, msgid])
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(1_700_000_000 + n * 3_600 + rng.randint(0, 3_000))
    m["Message-ID"] = msgid
    # Heavy tail: log-normal around 3 KB, capped at 1 MB.
    size = min(int(rng.lognormvariate(8.0, 1.1)), 1_000_000)
    text = body_text(rng, size)
    kind = rng.random()
    if kind < 0.45:
        m.set_content(text, charset="utf-8")
    elif kind < 0.8:
        m.set_content(text, charset="utf-8")
        m.add_alternative("<html><body><p>" + text.replace("\n", "</p><p>") + "</p></body></html>",
                          subtype="html", charset="utf-8")
    else:
        m.set_content(text, charset="utf-8")
        blob = rng.randbytes(min(size * 2, 600_000))
        m.add_attachment(blob, maintype="application", subtype="octet-stream",
                         filename=rng.choice(["report.pdf", "Übersicht.xlsx", "photo.jpg"]))
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    threads: list[list[str]] = []
    with open(args.out, "wb") as f:
        for n in range(args.messages):
            m = make(rng, n, threads)
            raw = m.as_bytes(policy=m.policy.clone(linesep="\n"))
            f.write(b"From sender@example.org Mon Jan  1 00:00:00 2024\n")
            # mboxrd quoting of body lines that start with "From ".
            for line in raw.split(b"\n"):
                f.write((b">" + line if line.lstrip(b">").startswith(b"From ") else line) + b"\n")
            f.write(b"\n")
    print(f"wrote {args.messages} messages to {args.out} (seed {args.seed})")


if __name__ == "__main__":
    main()
