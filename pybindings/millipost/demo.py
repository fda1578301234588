"""The main job: the reference server on SQLite, a synthetic population, concurrent SMTP
deliveries and POP3 and IMAP retrievals for a few seconds, an oracle that checks every message
arrived exactly once (across both protocols), a summary and a JSON report.

POP3 and IMAP readers take turns on the same mailboxes: the demo lets one reader at a time hold
a user (as a real user runs one client at a time), so a message deleted through one protocol
that came back through the other, or one expunged but still listed, is a duplicate the oracle
reports."""
from __future__ import annotations

import imaplib
import json
import os
import re
import poplib
import random
import smtplib
import threading
import time
from collections import defaultdict
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Optional

from .population import Population
from .progress import Progress
from ._server import Server

ID_HEADER = "X-Millipost-Id"


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"count": 0}
    s = sorted(samples)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 3)

    return {"count": len(s), "p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99),
            "max_ms": round(s[-1] * 1000, 3)}


def make_message(rng: random.Random, sender, recipients, msg_id: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = f"{sender.name} <{sender.address}>"
    m["To"] = ", ".join(r.address for r in recipients)
    m["Subject"] = rng.choice(["Quarterly report", "Lunch?", "Überraschung für dich",
                               "Re: the plan", "Café à 10h", "Photos from the trip"])
    m["Message-ID"] = f"<{msg_id}@millipost.demo>"
    m[ID_HEADER] = msg_id
    lines = []
    for _ in range(rng.randint(1, 40)):
        line = " ".join(rng.choice(["lorem", "ipsum", "dolor", "sit", "amet", "grüße", "ñandú"])
                        for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.1:
            line = "." + line  # exercises dot-stuffing both ways
        lines.append(line)
    m.set_content("\n".join(lines) + "\n")
    return m


class Demo:
    def __init__(self, server: Server, population: Population, seed: int,
                 protocols: tuple[str, ...] = ("pop3", "imap")):
        self.server = server
        self.protocols = protocols  # those the readers use; drain() takes turns among them
        self.population = population
        self.seed = seed
        self.lock = threading.Lock()
        self.expected: dict[int, list[str]] = defaultdict(list)
        self.retrieved: dict[int, list[str]] = defaultdict(list)
        self.pending: set[int] = set()
        self.smtp_latency: list[float] = []
        self.pop3_latency: list[float] = []
        self.imap_latency: list[float] = []
        # Retrievals per protocol (a message counts once it is deleted for good).
        self.by_protocol: dict[str, int] = defaultdict(int)
        self.sessions: dict[str, int] = defaultdict(int)
        self.busy: set[int] = set()  # users a reader holds now
        # Replies that contradict what the reader did (a STORE reply without the flags, an
        # EXPUNGE count that differs from the messages flagged): the oracle fails on any.
        self.violations: list[dict] = []
        self.errors: dict[str, int] = defaultdict(int)
        self.sent = 0
        self.deliveries = 0
        self.stop = threading.Event()

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def sender(self, worker: int) -> None:
        rng = random.Random(self.seed * 1000 + worker)
        n = 0
        # A small active set, so that readers find mail to fetch.
        active = min(len(self.population), 500)
        smtp = None
        while not self.stop.is_set():
            try:
                if smtp is None:
                    smtp = smtplib.SMTP(self.server.host, self.server.smtp_port, timeout=30)
                    smtp.ehlo("demo.millipost")
                sender = self.population[rng.randrange(len(self.population))]
                rcpts = [self.population[i] for i in rng.sample(range(active), rng.randint(1, 3))]
                msg_id = f"{self.seed}.{worker}.{n}"
                n += 1
                msg = make_message(rng, sender, rcpts, msg_id)
                t0 = time.monotonic()
                smtp.send_message(msg, from_addr=sender.address, to_addrs=[r.address for r in rcpts])
                self_lat = time.monotonic() - t0
                with self.lock:
                    self.smtp_latency.append(self_lat)
                    self.sent += 1
                    self.deliveries += len(rcpts)
                    for r in rcpts:
                        self.expected[r.index].append(msg_id)
                        self.pending.add(r.index)
            except (smtplib.SMTPException, OSError) as e:
                self.error(f"smtp: {type(e).__name__}")
                smtp = None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def violation(self, index: int, what: str) -> None:
        with self.lock:
            self.violations.append({"user": index, "what": what})

    def claim(self, index: int) -> bool:
        with self.lock:
            if index in self.busy:
                return False
            self.busy.add(index)
            return True

    def release(self, index: int) -> None:
        with self.lock:
            self.busy.discard(index)

    def fetch(self, index: int, protocol: str = "pop3") -> bool:
        """One session for user `index` over `protocol` that retrieves and deletes everything.
        False if another reader holds the user (or POP3 answered [IN-USE])."""
        if not self.claim(index):
            return False
        try:
            return self.fetch_imap(index) if protocol == "imap" else self.fetch_pop3(index)
        finally:
            self.release(index)

    def fetch_imap(self, index: int) -> bool:
        """SELECT INBOX, FETCH every message's id header (PEEK), STORE +FLAGS (\\Seen
        \\Deleted) checked in the FETCH replies, EXPUNGE checked against the stored set."""
        user = self.population[index]
        t0 = time.monotonic()
        imap = imaplib.IMAP4(self.server.host, self.server.imap_port, timeout=30)
        try:
            imap.login(user.login, user.password)
            typ, data = imap.select("INBOX")
            if typ != "OK":
                raise imaplib.IMAP4.error(f"SELECT: {data!r}")
            exists = int(data[0])
            got: dict[int, str] = {}  # UID -> id header
            if exists:
                typ, data = imap.fetch(
                    f"1:{exists}", f"(UID BODY.PEEK[HEADER.FIELDS ({ID_HEADER})])")
                if typ != "OK":
                    raise imaplib.IMAP4.error(f"FETCH: {data!r}")
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    m = re.search(rb"UID (\d+)", item[0])
                    if not m:
                        raise imaplib.IMAP4.error(f"FETCH without UID: {item[0]!r}")
                    headers = BytesHeaderParser().parsebytes(item[1])
                    got[int(m.group(1))] = headers.get(ID_HEADER, "?")
            if got:
                uids = ",".join(map(str, sorted(got)))
                typ, data = imap.uid("STORE", uids, "+FLAGS", r"(\Seen \Deleted)")
                if typ != "OK":
                    raise imaplib.IMAP4.error(f"STORE: {data!r}")
                flagged = sum(1 for d in data if d and b"\\Deleted" in d and b"\\Seen" in d)
                if flagged != len(got):
                    self.violation(index, f"STORE replied with both flags for {flagged} of "
                                          f"{len(got)} messages")
                typ, data = imap.expunge()
                if typ != "OK":
                    raise imaplib.IMAP4.error(f"EXPUNGE: {data!r}")
                expunged = [d for d in data if d is not None]
                if len(expunged) != len(got):
                    self.violation(index, f"EXPUNGE reported {len(expunged)} of {len(got)} "
                                          f"messages")
            imap.logout()
            with self.lock:
                self.retrieved[index].extend(got.values())
                self.by_protocol["imap"] += len(got)
                self.sessions["imap"] += 1
                self.imap_latency.append(time.monotonic() - t0)
            return True
        finally:
            try:
                imap.shutdown()
            except OSError:
                pass

    def fetch_pop3(self, index: int) -> bool:
        user = self.population[index]
        t0 = time.monotonic()
        pop = poplib.POP3(self.server.host, self.server.pop3_port, timeout=30)
        try:
            pop.user(user.login)
            try:
                pop.pass_(user.password)
            except poplib.error_proto as e:
                if b"IN-USE" in e.args[0]:
                    return False
                raise
            count, _ = pop.stat()
            got = []
            for i in range(1, count + 1):
                _, lines, _ = pop.retr(i)
                headers = BytesHeaderParser().parsebytes(b"\r\n".join(lines))
                got.append(headers.get(ID_HEADER, "?"))
                pop.dele(i)
            pop.quit()  # UPDATE: deletions applied now; only then do they count as retrieved
            with self.lock:
                self.retrieved[index].extend(got)
                self.by_protocol["pop3"] += len(got)
                self.sessions["pop3"] += 1
                self.pop3_latency.append(time.monotonic() - t0)
            return True
        finally:
            pop.close()

    def reader(self, worker: int, protocol: str = "pop3") -> None:
        rng = random.Random(self.seed * 2000 + worker + (1000 if protocol == "imap" else 0))
        while not self.stop.is_set():
            with self.lock:
                candidates = list(self.pending)
            if not candidates:
                time.sleep(0.01)
                continue
            index = rng.choice(candidates)
            try:
                if self.fetch(index, protocol):
                    with self.lock:
                        if len(self.retrieved[index]) >= len(self.expected[index]):
                            self.pending.discard(index)
                else:
                    time.sleep(0.001)
            except (poplib.error_proto, imaplib.IMAP4.error, OSError) as e:
                self.error(f"{protocol}: {type(e).__name__}")

    def drain(self) -> None:
        """Reads what is left, taking turns among the protocols in use, by user."""
        for n, index in enumerate(sorted(set(self.expected))):
            protocol = self.protocols[n % len(self.protocols)]
            for _ in range(50):
                try:
                    if self.fetch(index, protocol):
                        break
                except (poplib.error_proto, imaplib.IMAP4.error, OSError) as e:
                    self.error(f"{protocol} drain: {type(e).__name__}")
                time.sleep(0.02)

    def oracle(self) -> dict:
        lost, duplicated, unexpected = [], [], []
        for index in set(self.expected) | set(self.retrieved):
            want = defaultdict(int)
            for m in self.expected.get(index, []):
                want[m] += 1
            got = defaultdict(int)
            for m in self.retrieved.get(index, []):
                got[m] += 1
            for m, k in want.items():
                if got[m] < k:
                    lost.append({"user": index, "id": m})
                elif got[m] > k:
                    duplicated.append({"user": index, "id": m})
            for m in got:
                if m not in want:
                    unexpected.append({"user": index, "id": m})
        return {"ok": not (lost or duplicated or unexpected or self.violations),
                "lost": lost[:20], "duplicated": duplicated[:20], "unexpected": unexpected[:20],
                "violations": self.violations[:20], "violation_count": len(self.violations),
                "lost_count": len(lost), "duplicated_count": len(duplicated),
                "unexpected_count": len(unexpected)}


def run_demo(users: int = 10000, seconds: float = 5.0, senders: int = 8, readers: int = 4,
             imap_readers: int = 2, seed: Optional[int] = None, data_dir: Optional[str] = None,
             report_dir: str = "reports/out", quiet: bool = False) -> dict:
    seed = int(time.time()) % 1_000_000 if seed is None else seed
    say = (lambda *a: None) if quiet else print
    say(f"millipost demo: seed {seed} (repeat with --seed {seed}), {users:,} users, "
        f"{senders} SMTP + {readers} POP3 + {imap_readers} IMAP clients for {seconds:g} s")
    population = Population(seed, users)
    with Server(data_dir=data_dir) as server:
        t0 = time.monotonic()
        server.provision(population)
        provision_s = time.monotonic() - t0
        say(f"  server on 127.0.0.1 smtp {server.smtp_port} pop3 {server.pop3_port} "
            f"imap {server.imap_port}, "
            f"store {server.data_dir}; provisioned in {provision_s:.2f} s")
        protocols = tuple(p for p, n in (("pop3", readers), ("imap", imap_readers)) if n) \
            or ("pop3",)
        demo = Demo(server, population, seed, protocols)
        threads = [threading.Thread(target=demo.sender, args=(i,)) for i in range(senders)]
        threads += [threading.Thread(target=demo.reader, args=(i,)) for i in range(readers)]
        threads += [threading.Thread(target=demo.reader, args=(i, "imap"))
                    for i in range(imap_readers)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        bar = Progress(int(seconds * 10), "  traffic", unit="ticks")
        while time.monotonic() - t_start < seconds:
            time.sleep(0.1)
            with demo.lock:
                extra = f"sent {demo.sent} retrieved {sum(map(len, demo.retrieved.values()))}"
            bar.update(int((time.monotonic() - t_start) * 10), extra)
        demo.stop.set()
        for t in threads:
            t.join()
        traffic_s = time.monotonic() - t_start
        bar.close()
        demo.drain()
        oracle = demo.oracle()
        counters = server.counters()
    retrieved = sum(map(len, demo.retrieved.values()))
    result = {
        "kind": "demo",
        "seed": seed,
        "config": {"users": users, "seconds": seconds, "senders": senders, "readers": readers,
                   "imap_readers": imap_readers, "data_dir": data_dir},
        "totals": {"messages": demo.sent, "deliveries": demo.deliveries, "retrieved": retrieved,
                   "retrieved_pop3": demo.by_protocol["pop3"],
                   "retrieved_imap": demo.by_protocol["imap"],
                   "sessions_pop3": demo.sessions["pop3"], "sessions_imap": demo.sessions["imap"],
                   "errors": sum(demo.errors.values())},
        "errors": dict(demo.errors),
        "rates": {"messages_per_s": round(demo.sent / traffic_s, 1),
                  "deliveries_per_s": round(demo.deliveries / traffic_s, 1)},
        "latency": {"smtp_transaction": percentiles(demo.smtp_latency),
                    "pop3_session": percentiles(demo.pop3_latency),
                    "imap_session": percentiles(demo.imap_latency)},
        "provision_seconds": round(provision_s, 3),
        "oracle": oracle,
        "server_counters": counters,
    }
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{seed}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    result["report"] = path
    lat = result["latency"]["smtp_transaction"]
    say(f"  sent {demo.sent:,} messages ({demo.deliveries:,} deliveries, "
        f"{result['rates']['messages_per_s']:,} msg/s), retrieved {retrieved:,} "
        f"({demo.by_protocol['pop3']:,} by POP3, {demo.by_protocol['imap']:,} by IMAP)")
    if lat.get("count"):
        say(f"  SMTP transaction p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms; "
            f"errors {result['totals']['errors']}")
    verdict = "OK: every delivery retrieved exactly once" if oracle["ok"] else (
        f"FAILED: {oracle['lost_count']} lost, {oracle['duplicated_count']} duplicated, "
        f"{oracle['unexpected_count']} unexpected, {oracle['violation_count']} IMAP replies "
        f"wrong")
    say(f"  oracle {verdict}")
    say(f"  report {path}")
    return result
