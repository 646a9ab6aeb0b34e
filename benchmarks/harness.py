"""The benchmark harness: one Redis, every library, interleaved repetitions.

Run it as ``python benchmarks/run.py`` (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import ceiling
from benchmarks.libs import (
    ALL_LIBS,
    BASE_SRC_ENV,
    BENCH_DIR,
    LIBS,
    PEERS_PYTHON,
    PEERS_VENV,
    Lib,
)
from benchmarks.probe import Probe
from benchmarks.procs import Group, HarnessError, run_once

WORKLOADS = ["w1", "w2", "w3", "w4", "w5"]
RESULTS_DIR = BENCH_DIR / "results"
NODE_DIR = BENCH_DIR / "node"
# W3/W4: seconds between go (the workers start) and starting the producer.
PRODUCER_SETTLE_S = 1.0
# The CPU cap: worker and Redis share this machine's cores.
CORES = os.cpu_count() or 1


# The libraries a ratio table is made for: pyqueue, on uvloop and in BullMQ mode when they ran.
SUBJECTS = ("pyqueue", "pyqueue-uvloop", "pyqueue-bullmq")
# The libraries whose adapter has --floor (Bull mode's scripts in a bare loop).
FLOOR_LIBS = ("pyqueue", "pyqueue-uvloop")


def _peers_of(subject: str, libs: list[str]) -> list[str]:
    """pyqueue's ratios leave out its uvloop run; that run's include pyqueue (uvloop ÷ asyncio)."""
    skip = set(SUBJECTS) if subject == "pyqueue" else {subject}
    return [x for x in libs if x not in skip]


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    fmt: str = "{:,.0f}"
    # The peers' metric pyqueue's value is divided by, when not this one's own.
    versus: str | None = None


def build_metrics(high: list[int]) -> list[Metric]:
    """The table's rows, with one W2 row per concurrency level (1 and each of ``high``)."""
    top = max(high) if high else 1
    w2: list[Metric] = []
    for c in [1, *high]:
        w2 += [
            Metric(f"w2_c{c}", f"W2 drain c={c}: N ÷ (last completion - go)", "jobs/s", True),
            Metric(f"w2_start_c{c}", f"W2 drain c={c}: N ÷ (last handler start - go)",
                   "jobs/s", True),
        ]
    w2 += [
        Metric("w2_startup_ms_c1", "W2 start-up, c=1: go → first handler start", "ms", False,
               "{:,.1f}"),
        Metric("w2_rss", "W2 worker peak RSS", "MB", False, "{:,.1f}"),
        Metric("w2_cpu_us_c1", "W2 worker CPU per job, c=1", "µs", False),
        Metric("w2_redis_cpu_us_c1", "W2 Redis CPU per job, c=1", "µs", False, "{:,.1f}"),
        Metric("w2_total_cpu_us_c1", "W2 worker + Redis CPU per job, c=1", "µs", False),
        # pyqueue only, so its ratio is to the peers' own c=1 drain.
        Metric("w2_floor_c1", "W2 c=1 script floor: the finishing script in a bare loop "
               "(pyqueue's connection, no Worker)", "jobs/s", True, versus="w2_c1"),
        Metric("w2_floor_cpu_us_c1", "W2 c=1 script floor: client CPU per job", "µs", False,
               versus="w2_cpu_us_c1"),
        Metric("w2_floor_pct_c1", "W2 c=1 completion rate, % of script floor", "%", True,
               "{:,.1f}"),
    ]
    if high:
        w2.append(Metric(f"w2_total_cpu_us_c{top}", f"W2 worker + Redis CPU per job, c={top}",
                         "µs", False))
    for c in [1, *high]:
        w2.append(Metric(f"w2_rt_c{c}", f"W2 round trips per job, c={c} (measured)",
                         "reads/job", False, "{:,.2f}"))
    w2.append(Metric("w2_cmds_c1", "W2 Redis commands per job, c=1 (incl. in scripts)",
                     "cmds/job", False, "{:,.1f}"))
    caps = [1, top] if high else [1]
    for c in caps:
        w2.append(Metric(f"w2_rtcap_c{c}", f"W2 round-trip cap, c={c}: ceiling ÷ round trips",
                         "jobs/s", True))
    for c in caps:
        w2.append(Metric(f"w2_cpucap_c{c}",
                         f"W2 CPU cap, c={c}: cores x 1e6 ÷ (worker + Redis µs/job)",
                         "jobs/s", True))
    for c in caps:
        w2.append(Metric(f"w2_rtcap_pct_c{c}", f"W2 c={c} completion rate, % of round-trip cap",
                         "%", True, "{:,.1f}"))
    for c in caps:
        w2.append(Metric(f"w2_cpucap_pct_c{c}", f"W2 c={c} completion rate, % of CPU cap",
                         "%", True, "{:,.1f}"))
    w5: list[Metric] = []
    for k in (1, 2, 4):
        noun = "process" if k == 1 else "processes"
        w5 += [
            Metric(f"w5_p{k}", f"W5 drain, {k} worker {noun}: N ÷ (last completion - go)",
                   "jobs/s", True),
            Metric(f"w5_start_p{k}", f"W5 drain, {k} worker {noun}: N ÷ (last start - go)",
                   "jobs/s", True),
        ]
    return [
        Metric("w1_single", "W1 enqueue, one at a time", "jobs/s", True),
        Metric("w1_bulk", "W1 enqueue, bulk API", "jobs/s", True),
        *w2,
        Metric("w3_p50", "W3 add→start latency p50", "ms", False, "{:,.2f}"),
        Metric("w3_p95", "W3 add→start latency p95", "ms", False, "{:,.2f}"),
        Metric("w3_p99", "W3 add→start latency p99", "ms", False, "{:,.2f}"),
        Metric("w4_p50", "W4 delayed lateness p50", "ms", False, "{:,.1f}"),
        Metric("w4_p99", "W4 delayed lateness p99", "ms", False, "{:,.1f}"),
        *w5,
        Metric("w5_mem", "W5 Redis memory per waiting job", "bytes", False),
    ]


@dataclass
class Config:
    n: int
    reps: int
    libs: list[str]
    workloads: list[str]
    concurrency: list[int]  # the high levels of W2; the first is also W3/W4/W5's
    latency_n: int
    rate: float
    delayed_n: int
    delay_ms: int
    processes: list[int]
    scale_n: int
    ceiling_n: int
    out: Path
    chart: bool
    install: bool


def parse_args(argv: list[str]) -> Config:
    p = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="pyqueue against Node Bull and the Python queues, same Redis, same run.",
    )
    p.add_argument("--n", type=int, default=10_000, help="jobs for W1, W2 and W5")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--libs", default=",".join(ALL_LIBS),
                   help=f"comma-separated subset of {','.join(ALL_LIBS)}")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--concurrency", default="50,100",
                   help="comma-separated high concurrency levels of W2 (c=1 always runs); "
                        "the first is also the concurrency of W3, W4 and W5")
    p.add_argument("--latency-n", type=int, default=2000, help="W3 jobs")
    p.add_argument("--rate", type=float, default=200.0, help="W3/W4 jobs per second")
    p.add_argument("--delayed-n", type=int, default=500, help="W4 jobs")
    p.add_argument("--delay-ms", type=int, default=1000, help="W4 delay")
    p.add_argument("--processes", default="1,2,4", help="W5 worker process counts")
    p.add_argument("--scale-n", type=int, default=None,
                   help="jobs for the W5 multi-process drains (default n/2)")
    p.add_argument("--ceiling-n", type=int, default=100_000,
                   help="redis-benchmark requests (x10 for the pipelined row)")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON (default benchmarks/results/latest.json; PNG beside it)")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--no-install", action="store_true",
                   help="do not create/update the peers venv or node_modules")
    p.add_argument("--base-src", type=Path, default=None,
                   help="src/ of another pyqueue checkout, run as the library pyqueue-base "
                        "(e.g. a `git worktree add` of an older commit)")
    p.add_argument("--tiny", action="store_true",
                   help="CI smoke run: a few hundred jobs, pyqueue only, 1 rep, no peer install")
    a = p.parse_args(argv)
    libs = [x.strip() for x in a.libs.split(",") if x.strip()]
    workloads = [x.strip() for x in a.workloads.split(",") if x.strip()]
    out = a.out
    if a.tiny:
        a.n, a.reps, a.latency_n, a.delayed_n, a.ceiling_n = 300, 1, 200, 50, 5000
        libs = ["pyqueue"] if a.libs == ",".join(ALL_LIBS) else libs
        a.no_install = True
        if out is None:
            out = Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "tiny.json"
    for lib in libs:
        if lib not in LIBS:
            p.error(f"unknown library {lib!r}; choose from {','.join(LIBS)}")
    if "pyqueue-base" in libs:
        if a.base_src is None or not (a.base_src / "pyqueue" / "__init__.py").exists():
            p.error("pyqueue-base needs --base-src pointing at a checkout's src/ folder")
        # Read by the pyqueue-base adapter processes, which inherit the environment.
        os.environ[BASE_SRC_ENV] = str(a.base_src.resolve())
    for w in workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}; choose from {','.join(WORKLOADS)}")
    try:
        levels = [int(x) for x in a.concurrency.split(",") if x.strip()]
    except ValueError:
        p.error(f"--concurrency takes a comma list of integers, not {a.concurrency!r}")
    levels = list(dict.fromkeys(x for x in levels if x > 1))
    if not levels:
        p.error("--concurrency needs at least one level above 1 (c=1 always runs)")
    return Config(
        n=a.n, reps=a.reps, libs=libs, workloads=workloads, concurrency=levels,
        latency_n=a.latency_n, rate=a.rate, delayed_n=a.delayed_n, delay_ms=a.delay_ms,
        processes=[int(x) for x in a.processes.split(",")], ceiling_n=a.ceiling_n,
        scale_n=a.scale_n or max(1, a.n // 2),
        out=out or RESULTS_DIR / "latest.json", chart=not a.no_chart, install=not a.no_install,
    )


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- setup -----------------------------------------------------------------------------


def _stamp_ok(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text().strip() == digest


def ensure_peers(cfg: Config) -> None:
    """Create/refresh benchmarks/.peers-venv and benchmarks/node/node_modules as needed."""
    need_py = cfg.chart or any(LIBS[x].runtime == "peer-python" for x in cfg.libs)
    if need_py:
        req = BENCH_DIR / "requirements-peers.txt"
        digest = hashlib.sha256(req.read_bytes()).hexdigest()
        stamp = PEERS_VENV / ".bench-stamp"
        if not _stamp_ok(stamp, digest):
            log(f"installing Python peers into {PEERS_VENV} ...")
            if not PEERS_PYTHON.exists():
                subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
            subprocess.run(
                [str(PEERS_PYTHON), "-m", "pip", "install", "-q", "-r", str(req)], check=True
            )
            stamp.write_text(digest)
    if any(LIBS[x].runtime == "node" for x in cfg.libs):
        lock = NODE_DIR / "package-lock.json"
        source = lock if lock.exists() else NODE_DIR / "package.json"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        stamp = NODE_DIR / "node_modules" / ".bench-stamp"
        if not _stamp_ok(stamp, digest):
            npm = shutil.which("npm") or "npm"
            verb = "ci" if lock.exists() else "install"
            log(f"npm {verb} in {NODE_DIR} ...")
            subprocess.run(
                [npm, verb, "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True
            )
            stamp.write_text(digest)


# --- statistics ------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


# --- one library, one workload ----------------------------------------------------------


class Runner:
    def __init__(self, cfg: Config, url: str, port: int) -> None:
        self.cfg = cfg
        self.url = url
        self.port = port
        self.probe = Probe(url)
        self.records: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.rep = 0

    def opts(self, *extra: str) -> list[str]:
        return ["--url", self.url, *extra]

    def record(self, metric: str, lib: str, value: float) -> None:
        self.records.append({"metric": metric, "lib": lib, "rep": self.rep, "value": value})

    def timeout_for(self, n: int) -> float:
        return 60.0 + n / 40.0

    def fill(self, lib: Lib, n: int) -> None:
        self.probe.flushall()
        run_once(lib.argv("fill", self.opts("--n", str(n))), self.timeout_for(n))
        waiting = self.probe.waiting(lib.name)
        if waiting != n:
            raise HarnessError(f"{lib.name}: fill left {waiting} waiting jobs, expected {n}")

    def workers(
        self,
        lib: Lib,
        processes: int,
        concurrency: int,
        expect: int,
        *,
        burst: bool,
        producer: list[str] | None = None,
        delay_ms: int = 0,
        floor: bool = False,
    ) -> dict[str, Any]:
        """Start workers, release them, wait for `expect` jobs; return the aggregate."""
        group = Group()
        deadline = time.monotonic() + self.timeout_for(expect)
        extra = ["--concurrency", str(concurrency)]
        if burst:
            extra.append("--burst")
        if floor:
            extra.append("--floor")
        if delay_ms:
            extra += ["--delay-ms", str(delay_ms)]
        try:
            for _ in range(processes):
                group.spawn(lib.argv("worker", self.opts(*extra)))
            ready = 0
            while ready < processes:
                _, ev = group.next_event(deadline, "workers ready")
                ready += ev.get("event") == "ready"
            before = self.probe.snapshot()
            for child in group.children:
                child.send("go")
            prod = None
            if producer:
                # W3/W4 measure an idle, started worker: the workers construct and start
                # after go, so the producer waits for them to settle first.
                time.sleep(PRODUCER_SETTLE_S)
                prod = group.spawn(producer)
            counts = [0] * len(group.children)
            while sum(counts) < expect:
                idx, ev = group.next_event(deadline, f"{expect} jobs (have {sum(counts)})")
                if ev.get("event") == "count":
                    counts[idx] = int(ev["n"])
            after = self.probe.snapshot()
            workers = group.children[:processes]
            for child in workers:
                child.send("stop")
            pending = {c.index for c in workers} | ({prod.index} if prod else set())
            pending -= {c.index for c in group.children if c.result is not None}
            while pending:
                idx, ev = group.next_event(deadline + 30, "results")
                if ev.get("event") == "result":
                    pending.discard(idx)
            results = [c.result for c in workers if c.result is not None]
            for child in group.children:
                child.proc.wait(30)
        finally:
            group.close()
        self._check(lib, results, expect)
        diff = after - before
        t0 = min(float(r["t_go"]) for r in results)
        t_done = max(float(r["last_completed"]) for r in results)
        t_start = max(float(r["last_start"]) for r in results)
        latencies = [x for r in results for x in r["latencies"]]
        return {
            "jobs_per_s": expect / (t_done - t0),
            "start_jobs_per_s": expect / (t_start - t0),
            "startup_ms": 1000.0 * (min(float(r["first_start"]) for r in results) - t0),
            "rss_mb": max(float(r["rss_mb"]) for r in results),
            "cpu_us": 1e6 * sum(float(r["cpu_s"]) for r in results) / expect,
            "rt": max(0, diff.reads - 1) / expect,
            "cmds": max(0, diff.calls - 1) / expect,
            "redis_cpu_us": 1e6 * diff.cpu / expect,
            "latencies_ms": [1000.0 * x for x in latencies],
        }

    def _check(self, lib: Lib, results: list[dict[str, Any]], expect: int) -> None:
        """Exactly `expect` jobs completed and started, all distinct; none left waiting."""
        total = sum(int(r["count"]) for r in results)
        started = sum(int(r["started"]) for r in results)
        if (total != expect or started != expect
                or any(r["unique"] != r["count"] for r in results)
                or any(r["unique_started"] != r["started"] for r in results)):
            per = [(r["count"], r["unique"], r["started"], r["unique_started"]) for r in results]
            raise HarnessError(
                f"{lib.name}: completed {total} jobs, started {started} ({per} as completed, "
                f"distinct, started, distinct), expected {expect}"
            )
        left = self.probe.waiting(lib.name)
        if left:
            raise HarnessError(f"{lib.name}: {left} jobs still waiting after the run")

    # The workloads. Each records its metrics for one library.

    def w1(self, lib: Lib) -> None:
        n = self.cfg.n
        self.probe.flushall()
        res = run_once(lib.argv("enqueue", self.opts("--n", str(n))), self.timeout_for(n))
        self._check_waiting(lib, n)
        self.record("w1_single", lib.name, float(res["jobs_per_s"]))
        if lib.bulk:
            self.probe.flushall()
            res = run_once(lib.argv("enqueue", self.opts("--n", str(n), "--bulk")),
                           self.timeout_for(n))
            self._check_waiting(lib, n)
            self.record("w1_bulk", lib.name, float(res["jobs_per_s"]))

    def _check_waiting(self, lib: Lib, n: int) -> None:
        waiting = self.probe.waiting(lib.name)
        if waiting != n:
            raise HarnessError(f"{lib.name}: {waiting} jobs waiting after enqueue, expected {n}")

    def w2(self, lib: Lib, conc: int) -> None:
        """One W2 drain at one concurrency level (run() interleaves the libraries per level)."""
        n = self.cfg.n
        tag = f"c{conc}"
        self.fill(lib, n)
        res = self.workers(lib, 1, conc, n, burst=True)
        self.w2_rss[lib.name] = max(self.w2_rss.get(lib.name, 0.0), res["rss_mb"])
        self.record(f"w2_{tag}", lib.name, res["jobs_per_s"])
        self.record(f"w2_start_{tag}", lib.name, res["start_jobs_per_s"])
        self.record(f"w2_startup_ms_{tag}", lib.name, res["startup_ms"])
        self.record(f"w2_rt_{tag}", lib.name, res["rt"])
        self.record(f"w2_cpu_us_{tag}", lib.name, res["cpu_us"])
        self.record(f"w2_redis_cpu_us_{tag}", lib.name, res["redis_cpu_us"])
        total_cpu = res["cpu_us"] + res["redis_cpu_us"]
        self.record(f"w2_total_cpu_us_{tag}", lib.name, total_cpu)
        if conc == 1:
            self.record("w2_cmds_c1", lib.name, res["cmds"])
        if conc in (1, max(self.cfg.concurrency)):
            # The physical limits: one connection's round trips, and the machine's cores.
            rt_cap = self.ceiling_c1 / res["rt"] if self.ceiling_c1 and res["rt"] else 0.0
            if rt_cap:
                self.record(f"w2_rtcap_{tag}", lib.name, rt_cap)
                self.record(f"w2_rtcap_pct_{tag}", lib.name, 100.0 * res["jobs_per_s"] / rt_cap)
            if total_cpu > 0:
                cpu_cap = CORES * 1e6 / total_cpu
                self.record(f"w2_cpucap_{tag}", lib.name, cpu_cap)
                self.record(f"w2_cpucap_pct_{tag}", lib.name,
                            100.0 * res["jobs_per_s"] / cpu_cap)
        if conc == self._w5_concurrency(lib):
            self.w5_single[lib.name] = res
        if conc == 1 and lib.name in FLOOR_LIBS:
            self.fill(lib, n)
            floor = self.workers(lib, 1, 1, n, burst=True, floor=True)
            self.record("w2_floor_c1", lib.name, floor["jobs_per_s"])
            self.record("w2_floor_cpu_us_c1", lib.name, floor["cpu_us"])
            self.record("w2_floor_pct_c1", lib.name,
                        100.0 * res["jobs_per_s"] / floor["jobs_per_s"])

    def _timed(self, lib: Lib, n: int, delay_ms: int) -> list[float]:
        self.probe.flushall()
        producer = lib.argv("produce", self.opts(
            "--n", str(n), "--rate", str(self.cfg.rate), "--delay-ms", str(delay_ms)))
        conc = self.cfg.concurrency[0] if lib.concurrent else 1
        res = self.workers(lib, 1, conc, n, burst=False, producer=producer, delay_ms=delay_ms)
        lat: list[float] = res["latencies_ms"]
        if len(lat) != n:
            raise HarnessError(f"{lib.name}: {len(lat)} latency samples, expected {n}")
        return lat

    def w3(self, lib: Lib) -> None:
        lat = self._timed(lib, self.cfg.latency_n, 0)
        for p in (50, 95, 99):
            self.record(f"w3_p{p}", lib.name, percentile(lat, p))

    def w4(self, lib: Lib) -> None:
        lat = self._timed(lib, self.cfg.delayed_n, self.cfg.delay_ms)
        for p in (50, 99):
            self.record(f"w4_p{p}", lib.name, percentile(lat, p))

    def _w5_concurrency(self, lib: Lib) -> int:
        return self.cfg.concurrency[0] if lib.concurrent else 1

    def w5(self, lib: Lib) -> None:
        n = self.cfg.scale_n
        conc = self._w5_concurrency(lib)
        for k in self.cfg.processes:
            if k == 1 and lib.name in self.w5_single and n == self.cfg.n:
                res = self.w5_single[lib.name]
            else:
                self.fill(lib, n)
                res = self.workers(lib, k, conc, n, burst=True)
            if k in (1, 2, 4):
                self.record(f"w5_p{k}", lib.name, res["jobs_per_s"])
                self.record(f"w5_start_p{k}", lib.name, res["start_jobs_per_s"])
        n = self.cfg.n
        self.probe.flushall()
        run_once(lib.argv("fill", self.opts("--n", str(n))), self.timeout_for(n))
        self._check_waiting(lib, n)
        self.record("w5_mem", lib.name, self.probe.key_memory() / n)

    # The whole run.

    def run(self) -> list[dict[str, Any]]:
        ceilings: list[dict[str, float]] = []
        for rep in range(self.cfg.reps):
            self.rep = rep
            self.w5_single: dict[str, dict[str, Any]] = {}
            failed_here: set[tuple[str, str]] = set()
            self.probe.flushall()
            ceil = ceiling.measure(self.url, self.port, self.cfg.ceiling_n)
            self.ceiling_c1 = ceil["evalsha_c1_rps"] if ceil else 0.0
            if ceil:
                ceil["rep"] = rep
                ceilings.append(ceil)
                log(f"[rep {rep + 1}] ceiling: EVALSHA c=1 {ceil['evalsha_c1_rps']:,.0f}/s, "
                    f"-P 50 -c 50 {ceil['evalsha_p50_c50_rps']:,.0f}/s")
            # Rotate the library order each repetition so no one always runs first.
            shift = rep % len(self.cfg.libs)
            libs = self.cfg.libs[shift:] + self.cfg.libs[:shift]
            self.w2_rss: dict[str, float] = {}
            for w in self.cfg.workloads:
                # W2 runs level by level, every library at one level before the next, so
                # the runs a ratio compares are as close in time as they can be.
                levels: list[int | None] = [1, *self.cfg.concurrency] if w == "w2" else [None]
                for level in levels:
                    for name in libs:
                        lib = LIBS[name]
                        if level is not None and level > 1 and not lib.concurrent:
                            continue
                        if (w, name) in failed_here:
                            continue
                        what = w if level is None else f"{w} c={level}"
                        t0 = time.monotonic()
                        try:
                            if level is None:
                                getattr(self, w)(lib)
                            else:
                                self.w2(lib, level)
                            log(f"[rep {rep + 1}] {what} {name}: ok "
                                f"({time.monotonic() - t0:.1f}s)")
                        except HarnessError as exc:
                            failed_here.add((w, name))
                            self.failures.append({"rep": rep, "workload": w, "lib": name,
                                                  "error": str(exc)[:2000]})
                            log(f"[rep {rep + 1}] {what} {name}: FAILED: {exc}")
                if w == "w2":
                    for name, rss in self.w2_rss.items():
                        if (w, name) not in failed_here:
                            self.record("w2_rss", name, rss)
        self.ceilings = ceilings
        return self.records


# --- reporting -------------------------------------------------------------------------


def summarize(records: list[dict[str, Any]], libs: list[str],
              metrics: list[Metric]) -> dict[str, Any]:
    """Per metric and library: median, min, max; per peer: pyqueue/peer ratios by rep."""
    out: dict[str, Any] = {}
    for m in metrics:
        rows: dict[str, Any] = {}
        for lib in libs:
            vals = [r["value"] for r in records if r["metric"] == m.key and r["lib"] == lib]
            if vals:
                rows[lib] = {"median": statistics.median(vals), "min": min(vals),
                             "max": max(vals), "values": vals}
        ratios: dict[str, dict[str, Any]] = {}
        for subject in SUBJECTS:
            ours = {r["rep"]: r["value"] for r in records
                    if r["metric"] == m.key and r["lib"] == subject}
            ratios[subject] = {}
            for lib in _peers_of(subject, libs):
                theirs = {r["rep"]: r["value"] for r in records
                          if r["metric"] == (m.versus or m.key) and r["lib"] == lib}
                rs = [ours[k] / theirs[k] for k in ours if theirs.get(k)]
                if rs:
                    ratios[subject][lib] = {"median": statistics.median(rs), "min": min(rs),
                                            "max": max(rs)}
        if rows:
            out[m.key] = {"title": m.title, "unit": m.unit,
                          "higher_is_better": m.higher_is_better, "libs": rows,
                          "ratio_pyqueue_over": ratios["pyqueue"], "ratios": ratios}
    return out


def _cell(m: Metric, row: dict[str, Any] | None) -> str:
    if row is None:
        return "n/a"
    med = m.fmt.format(row["median"])
    if row["min"] == row["max"]:
        return med
    return f"{med} ({m.fmt.format(row['min'])}-{m.fmt.format(row['max'])})"


def markdown_tables(summary: dict[str, Any], libs: list[str], metrics: list[Metric],
                    ceilings: list[dict[str, float]], failed: set[tuple[str, str]]) -> str:
    labels = [LIBS[x].label for x in libs]
    lines = ["| metric | unit | " + " | ".join(labels) + " |",
             "|---|---|" + "---:|" * len(libs)]
    for m in metrics:
        s = summary.get(m.key)
        if s is None:
            continue
        cells = []
        for lib in libs:
            row = s["libs"].get(lib)
            cells.append("fail" if row is None and (m.key[:2], lib) in failed else _cell(m, row))
        better = "↑" if m.higher_is_better else "↓"
        lines.append(f"| {m.title} | {m.unit} {better} | " + " | ".join(cells) + " |")
    titles = {m.key: m.title for m in metrics}
    for subject in SUBJECTS:
        peers = _peers_of(subject, libs)
        if subject not in libs or not peers:
            continue
        name = LIBS[subject].label
        lines += ["", f"{name} ÷ peer, per repetition, median (min-max). For ↑ metrics above "
                  f"1 means {name} is faster; for ↓ metrics below 1 means {name} is better.",
                  "", "| metric | " + " | ".join(LIBS[x].label for x in peers) + " |",
                  "|---|" + "---:|" * len(peers)]
        for m in metrics:
            s = summary.get(m.key)
            if s is None or subject not in s["libs"]:
                continue
            title = m.title if m.versus is None else f"{m.title} ÷ the peer's {titles[m.versus]}"
            cells = []
            for lib in peers:
                r = s["ratios"][subject].get(lib)
                if r is None:
                    cells.append("n/a")
                elif r["min"] == r["max"]:
                    cells.append(f"{r['median']:.2f}x")
                else:
                    cells.append(f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})")
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "Round trips per processed job, documented from each library's code path: "
              + ", ".join(f"{LIBS[x].label} {LIBS[x].documented_round_trips}" for x in libs)
              + ". The measured rows above count Redis read events (≈ client round trips)."]
    if ceilings:
        c1 = [c["evalsha_c1_rps"] for c in ceilings]
        piped = [c["evalsha_p50_c50_rps"] for c in ceilings]
        lines += ["", "| ceiling (redis-benchmark, trivial EVALSHA) | requests/s |", "|---|---:|",
                  f"| 1 connection | {_spread(c1)} (≈{1e6 / statistics.median(c1):.0f} µs "
                  "per round trip) |",
                  f"| 50 connections, pipeline 50 | {_spread(piped)} |"]
        cpu = [c["evalsha_c1_redis_cpu_us"] for c in ceilings if "evalsha_c1_redis_cpu_us" in c]
        if cpu:
            lines.append(f"| Redis CPU per round trip, 1 connection (the fixed cost any client "
                         f"pays per job at c=1) | {_spread(cpu, '{:,.1f}')} µs |")
    else:
        lines += ["", "Ceiling row skipped: redis-benchmark is not on PATH."]
    return "\n".join(lines)


def _spread(vals: list[float], fmt: str = "{:,.0f}") -> str:
    med = fmt.format(statistics.median(vals))
    return med if len(vals) == 1 else f"{med} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"


def machine_info(url: str) -> dict[str, str]:
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=20, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    probe = Probe(url)
    info: dict[str, Any] = probe.r.info("server")
    probe.close()
    return {
        "nproc": sh("nproc"),
        "lscpu": sh("lscpu | head -n 15"),
        "memory": sh("free -h | sed -n 2p"),
        "redis": str(info.get("redis_version", "")),
        "python": platform.python_version(),
        "node": sh("node --version"),
        "platform": platform.platform(),
    }


def render_chart(out_json: Path, out_png: Path) -> str | None:
    """Draw the PNG with the peers venv's matplotlib (or ours, if it has one)."""
    python = str(PEERS_PYTHON) if PEERS_PYTHON.exists() else sys.executable
    proc = subprocess.run(
        [python, str(BENCH_DIR / "chart.py"), str(out_json), str(out_png)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "chart failed"
    return None


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    from pyqueue.embedded import RedisServer

    if cfg.install:
        ensure_peers(cfg)
    started = time.time()
    with RedisServer() as srv:
        log(f"redis-server on {srv.url}; libs={','.join(cfg.libs)} "
            f"workloads={','.join(cfg.workloads)} n={cfg.n} reps={cfg.reps}")
        runner = Runner(cfg, srv.url, srv.port)
        records = runner.run()
        machine = machine_info(srv.url)
        runner.probe.close()
    metrics = build_metrics(cfg.concurrency)
    summary = summarize(records, cfg.libs, metrics)
    failed = {(f["workload"], f["lib"]) for f in runner.failures}
    table = markdown_tables(summary, cfg.libs, metrics, runner.ceilings, failed)
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": time.time() - started,
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
        "machine": machine,
        "cores": CORES,
        "libs": {x: {"label": LIBS[x].label, "settings": LIBS[x].settings,
                     "documented_round_trips": LIBS[x].documented_round_trips}
                 for x in cfg.libs},
        "ceiling": runner.ceilings,
        "summary": summary,
        "records": records,
        "failures": runner.failures,
        "table_markdown": table,
    }
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, cfg.out)
    print(table)
    print(f"\nresults: {cfg.out} ({result['seconds']:.0f}s)")
    if cfg.chart:
        png = cfg.out.with_suffix(".png")
        err = render_chart(cfg.out, png)
        print(f"chart: {png}" if err is None else f"chart skipped: {err}")
    if runner.failures:
        print(f"{len(runner.failures)} run(s) FAILED:", file=sys.stderr)
        for f in runner.failures:
            print(f"  rep {f['rep'] + 1} {f['workload']} {f['lib']}: {f['error'][:300]}",
                  file=sys.stderr)
        return 1
    return 0
