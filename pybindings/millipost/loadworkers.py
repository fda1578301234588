"""Several engine processes for one run (``millipost load --workers N``, docs/load.md).

One process can hold only as many connections as it has file descriptors (this machine's hard
limit is 20,000), so a run of more concurrent sessions is split over N processes, each running
``_core.run_load`` on a partition of the population: user *i* belongs to worker ``i % N``, and a
worker's senders and MX hosts write only to its own users, so each worker's oracle sees every
message its users are owed and verifies them alone. The engine numbers sessions, messages (and
so ``X-Millipost-Id``s) and loopback source addresses in the worker's residue class, so the
processes never collide. The open-loop rate and the closed-loop sessions are split among the
workers; their results are merged into one results dict (:func:`merge`).
"""
from __future__ import annotations

import math
import multiprocessing
import queue as queue_mod
import signal
from typing import Callable, Mapping, Sequence

#: Breaches, violations and stuck transcripts kept in merged results (as the engine does).
MAX_REPORTED = 100
#: Error samples kept in merged results (as the engine does).
MAX_ERROR_SAMPLES = 20
#: Keys of the engine's live progress dicts that add up over workers.
_LIVE_SUMS = ("sessions", "sessions_active", "commands", "errors", "breaches", "delivered",
              "commands_per_s", "verified")


def split(total: int, n: int, w: int) -> int:
    """Worker w's share of `total` (the first `total % n` workers get one more)."""
    return total // n + (1 if w < total % n else 0)


def worker_configs(engine_cfg: Mapping, n: int) -> list[dict]:
    """The engine configuration of each of n workers: the same run (run_id included, so that
    ids share their prefix), its own partition, its share of the closed-loop sessions; the
    open-loop rate splits by itself (each engine multiplies the per-user rate by its own
    users). Only worker 0 samples the target process."""
    out = []
    for w in range(n):
        c = dict(engine_cfg, worker=w, workers=n)
        if c.get("sessions") is not None and c.get("mode") == "closed":
            c["sessions"] = split(int(c["sessions"]), n, w)
        if w > 0:
            c["target_pid"] = None
        out.append(c)
    return out


def _child(cfg: dict, w: int, q, stop) -> None:
    # Ctrl-C goes to the whole process group: the parent decides, and tells us through `stop`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import _core

    def progress(live):
        q.put(("live", w, dict(live)))
        if stop.is_set():
            raise KeyboardInterrupt  # the engine's documented way to stop early
        return True

    try:
        q.put(("done", w, _core.run_load(cfg, progress)))
    except ValueError as e:
        q.put(("invalid", w, str(e)))
    except BaseException as e:  # reported to the parent, which raises it
        q.put(("error", w, f"{type(e).__name__}: {e}"))


def run(engine_cfg: Mapping, n: int, progress: Callable[[Mapping], None] | None) -> dict:
    """Runs n engine processes and returns their merged results. `progress` receives the
    workers' live counts summed. A KeyboardInterrupt here (Ctrl-C) stops every worker; the
    partial results are merged as usual (``interrupted``)."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs a server
    q = ctx.Queue()
    stop = ctx.Event()
    procs = [ctx.Process(target=_child, args=(c, w, q, stop), daemon=True)
             for w, c in enumerate(worker_configs(engine_cfg, n))]
    for p in procs:
        p.start()
    results: dict[int, dict] = {}
    failures: list[str] = []
    invalid: list[str] = []
    live: dict[int, dict] = {}
    interrupted = False
    try:
        while len(results) + len(failures) + len(invalid) < n:
            try:
                try:
                    kind, w, payload = q.get(timeout=0.5)
                except queue_mod.Empty:
                    dead = [w for w, p in enumerate(procs)
                            if not p.is_alive() and p.exitcode not in (0, None)
                            and w not in results]
                    if dead and q.empty():
                        failures += [f"worker {w} died (exit status {procs[w].exitcode})"
                                     for w in dead]
                        break
                    continue
                if kind == "live":
                    live[w] = payload
                    if progress is not None and not stop.is_set():
                        progress(sum_live(live.values()))
                elif kind == "done":
                    results[w] = payload
                elif kind == "invalid":
                    invalid.append(payload)
                else:
                    failures.append(f"worker {w}: {payload}")
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    if invalid:
        raise ValueError(invalid[0])
    if failures:
        raise RuntimeError("load workers failed: " + "; ".join(failures))
    merged = merge([results[w] for w in sorted(results)])
    merged["interrupted"] = bool(merged.get("interrupted")) or interrupted
    return merged


def sum_live(lives) -> dict:
    lives = list(lives)
    out: dict = {"t": max((float(x.get("t", 0) or 0) for x in lives), default=0.0)}
    for k in _LIVE_SUMS:
        if any(k in x for x in lives):
            out[k] = sum(x.get(k, 0) or 0 for x in lives)
    if any(x.get("phase") for x in lives):
        out["phase"] = next(x["phase"] for x in lives if x.get("phase"))
    return out


# ---- merging results ---------------------------------------------------------------------------


def _bucket_width(lower: int, sub_buckets: int) -> int:
    # Exact 1 µs buckets below sub_buckets; [2^k, 2^(k+1)) split into sub_buckets.
    if lower < sub_buckets:
        return 1
    return max(1, (1 << (int(lower).bit_length() - 1)) // sub_buckets)


def quantile(counts: Sequence[Sequence[int]], q: float, sub_buckets: int, top: int) -> int:
    """The q-quantile of a log-linear histogram's [lower, count] rows, as the engine computes it:
    the middle of the bucket holding the rank, the largest sample exactly. (The engine also
    clamps to the smallest sample, which the results do not carry: within one bucket's width,
    1/16 of the value.)"""
    total = sum(c for _, c in counts)
    if total == 0:
        return 0
    rank = min(max(math.ceil(q * total), 1), total)
    if rank == total:
        return top
    seen = 0
    for lower, c in sorted(counts):
        seen += c
        if seen >= rank:
            return min(lower + (_bucket_width(lower, sub_buckets) - 1) // 2, top)
    return top


def _merge_commands(rs: Sequence[Mapping]) -> dict:
    if len(rs) == 1:  # as the engine computed it (it also knows each bucket's smallest sample)
        return {verb: dict(c) for verb, c in (rs[0].get("commands") or {}).items()}
    out: dict = {}
    for r in rs:
        for verb, c in (r.get("commands") or {}).items():
            m = out.setdefault(verb, {"count": 0, "errors": 0, "_counts": {}, "_max": 0,
                                      "_sum": 0.0, "_sub": 16})
            m["count"] += c.get("count", 0)
            m["errors"] += c.get("errors", 0)
            h = c.get("histogram") or {}
            m["_sub"] = int(h.get("sub_buckets", 16) or 16)
            for lower, n in h.get("counts", []):
                m["_counts"][lower] = m["_counts"].get(lower, 0) + n
            lat = c.get("latency_us") or {}
            m["_max"] = max(m["_max"], lat.get("max", 0) or 0)
            m["_sum"] += (lat.get("mean", 0) or 0) * c.get("count", 0)
    for verb, m in out.items():
        counts = sorted(m.pop("_counts").items())
        top, total, sub = m.pop("_max"), m.pop("_sum"), m.pop("_sub")
        m["latency_us"] = {
            "p50": quantile(counts, 0.5, sub, top), "p90": quantile(counts, 0.9, sub, top),
            "p99": quantile(counts, 0.99, sub, top), "p999": quantile(counts, 0.999, sub, top),
            "max": top, "mean": total / m["count"] if m["count"] else 0.0}
        m["histogram"] = {"scheme": "log-linear", "sub_buckets": sub,
                          "counts": [[lo, n] for lo, n in counts]}
    return out


def _merge_timeline(rs: Sequence[Mapping]) -> list:
    # By second: counts and open sessions add up; p50 is the command-weighted mean of the
    # workers' (the timeline keeps no per-second histograms), p99 the largest (conservative).
    rows: dict[float, dict] = {}
    for r in rs:
        for row in r.get("timeline") or []:
            t = row.get("t", 0)
            m = rows.setdefault(t, {"t": t, "commands": 0, "errors": 0, "sessions_active": 0,
                                    "p50_us": 0.0, "p99_us": 0, "_w": 0})
            n = row.get("commands", 0) or 0
            m["commands"] += n
            m["errors"] += row.get("errors", 0) or 0
            m["sessions_active"] += row.get("sessions_active", 0) or 0
            m["p50_us"] += (row.get("p50_us", 0) or 0) * n
            m["_w"] += n
            m["p99_us"] = max(m["p99_us"], row.get("p99_us", 0) or 0)
            for k in ("target_cpu", "target_rss_bytes"):  # worker 0 samples the target
                if k in row:
                    m[k] = row[k]
    out = []
    for t in sorted(rows):
        m = rows[t]
        w = m.pop("_w")
        m["p50_us"] = m["p50_us"] / w if w else 0
        out.append(m)
    return out


def merge(rs: Sequence[Mapping]) -> dict:
    """One results dict (docs/load.md, "Results JSON") from the workers' results: totals, errors
    and refusals add up, histograms merge (quantiles recomputed from them), lists concatenate
    (capped as the engine caps them), the timeline merges by second, the target figures are
    worker 0's; ``workers`` holds each worker's totals."""
    if not rs:
        raise ValueError("no worker results to merge")
    first = rs[0]
    out = {k: v for k, v in first.items()}
    totals: dict = {}
    for r in rs:
        for k, v in (r.get("totals") or {}).items():
            totals[k] = totals.get(k, 0) + v
    out["totals"] = totals
    out["commands"] = _merge_commands(rs)
    out["timeline"] = _merge_timeline(rs)
    for key in ("errors", "refusals"):
        d: dict = {}
        for r in rs:
            for k, v in (r.get(key) or {}).items():
                d[k] = d.get(k, 0) + v
        out[key] = d
    for key, cap in (("breaches", MAX_REPORTED), ("violations", MAX_REPORTED),
                     ("stuck", MAX_REPORTED), ("error_samples", MAX_ERROR_SAMPLES)):
        out[key] = [x for r in rs for x in (r.get(key) or [])][:cap]
    out["seconds"] = max(r.get("seconds", 0) or 0 for r in rs)
    out["started"] = min(str(r.get("started", "")) for r in rs)
    out["bytes_verified"] = sum(r.get("bytes_verified", 0) or 0 for r in rs)
    states = [r.get("verification") for r in rs]
    out["verification"] = next((s for s in states if s != "done"), "done")
    out["interrupted"] = any(r.get("interrupted") for r in rs)
    cpu = sum((r.get("engine") or {}).get("cpu_seconds", 0) or 0 for r in rs)
    out["engine"] = {
        "io_threads": sum((r.get("engine") or {}).get("io_threads", 0) or 0 for r in rs),
        "cpu_seconds": cpu, "workers": len(rs),
        "cpu_ms_per_1000_commands": cpu * 1e6 / totals["commands"]
        if totals.get("commands") else 0.0}
    cfg = dict(first.get("config") or {})
    cfg.pop("worker", None)
    cfg["workers"] = len(rs)
    if cfg.get("mode") == "closed":
        cfg["sessions"] = sum((r.get("config") or {}).get("sessions", 0) or 0 for r in rs)
    out["config"] = cfg
    out["workers"] = [r.get("totals") for r in rs]
    return out
