"""The main job: the reference server on SQLite, a synthetic population, concurrent SMTP
deliveries and POP3 retrievals for a few seconds, an oracle that checks every message arrived
exactly once, a summary and a JSON report."""
from __future__ import annotations

import json
import os
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
    def __init__(self, server: Server, population: Population, seed: int):
        self.server = server
        self.population = population
        self.seed = seed
        self.lock = threading.Lock()
        self.expected: dict[int, list[str]] = defaultdict(list)
        self.retrieved: dict[int, list[str]] = defaultdict(list)
        self.pending: set[int] = set()
        self.smtp_latency: list[float] = []
        self.pop3_latency: list[float] = []
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

    def fetch(self, index: int) -> bool:
        """One POP3 session for user `index`: retrieve and delete everything. False if busy."""
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
                self.pop3_latency.append(time.monotonic() - t0)
            return True
        finally:
            pop.close()

    def reader(self, worker: int) -> None:
        rng = random.Random(self.seed * 2000 + worker)
        while not self.stop.is_set():
            with self.lock:
                candidates = list(self.pending)
            if not candidates:
                time.sleep(0.01)
                continue
            index = rng.choice(candidates)
            try:
                if self.fetch(index):
                    with self.lock:
                        if len(self.retrieved[index]) >= len(self.expected[index]):
                            self.pending.discard(index)
            except (poplib.error_proto, OSError) as e:
                self.error(f"pop3: {type(e).__name__}")

    def drain(self) -> None:
        for index in sorted(set(self.expected)):
            for _ in range(50):
                try:
                    if self.fetch(index):
                        break
                except (poplib.error_proto, OSError) as e:
                    self.error(f"pop3 drain: {type(e).__name__}")
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
        return {"ok": not (lost or duplicated or unexpected), "lost": lost[:20],
                "duplicated": duplicated[:20], "unexpected": unexpected[:20],
                "lost_count": len(lost), "duplicated_count": len(duplicated),
                "unexpected_count": len(unexpected)}


def run_demo(users: int = 10000, seconds: float = 5.0, senders: int = 8, readers: int = 4,
             seed: Optional[int] = None, data_dir: Optional[str] = None,
             report_dir: str = "reports/out", quiet: bool = False) -> dict:
    seed = int(time.time()) % 1_000_000 if seed is None else seed
    say = (lambda *a: None) if quiet else print
    say(f"millipost demo: seed {seed} (repeat with --seed {seed}), {users:,} users, "
        f"{senders} SMTP + {readers} POP3 clients for {seconds:g} s")
    population = Population(seed, users)
    with Server(data_dir=data_dir) as server:
        t0 = time.monotonic()
        server.provision(population)
        provision_s = time.monotonic() - t0
        say(f"  server on 127.0.0.1 smtp {server.smtp_port} pop3 {server.pop3_port}, "
            f"store {server.data_dir}; provisioned in {provision_s:.2f} s")
        demo = Demo(server, population, seed)
        threads = [threading.Thread(target=demo.sender, args=(i,)) for i in range(senders)]
        threads += [threading.Thread(target=demo.reader, args=(i,)) for i in range(readers)]
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
                   "data_dir": data_dir},
        "totals": {"messages": demo.sent, "deliveries": demo.deliveries, "retrieved": retrieved,
                   "errors": sum(demo.errors.values())},
        "errors": dict(demo.errors),
        "rates": {"messages_per_s": round(demo.sent / traffic_s, 1),
                  "deliveries_per_s": round(demo.deliveries / traffic_s, 1)},
        "latency": {"smtp_transaction": percentiles(demo.smtp_latency),
                    "pop3_session": percentiles(demo.pop3_latency)},
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
        f"{result['rates']['messages_per_s']:,} msg/s), retrieved {retrieved:,} by POP3")
    if lat.get("count"):
        say(f"  SMTP transaction p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms; "
            f"errors {result['totals']['errors']}")
    verdict = "OK: every delivery retrieved exactly once" if oracle["ok"] else (
        f"FAILED: {oracle['lost_count']} lost, {oracle['duplicated_count']} duplicated, "
        f"{oracle['unexpected_count']} unexpected")
    say(f"  oracle {verdict}")
    say(f"  report {path}")
    return result
