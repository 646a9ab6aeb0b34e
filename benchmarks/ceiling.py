"""redis-benchmark's round-trip rate for a trivial EVALSHA: the ceiling a queue works under."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess

import redis

SCRIPT = "return 1"


def _rps(argv: list[str]) -> float:
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    rows = [row for row in csv.reader(io.StringIO(out)) if row and row[0] != "test"]
    return float(rows[-1][1])


def measure(url: str, port: int, n: int) -> dict[str, float] | None:
    """EVALSHA requests/s with one connection, and with 50 connections pipelining 50.

    Returns None (the row is skipped) when redis-benchmark is not on PATH.
    """
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return None
    r = redis.Redis.from_url(url)
    sha = str(r.script_load(SCRIPT))
    assert sha == hashlib.sha1(SCRIPT.encode()).hexdigest()
    base = [exe, "-h", "127.0.0.1", "-p", str(port), "--csv"]
    cpu_before = _redis_cpu(r)
    single = _rps([*base, "-n", str(n), "-c", "1", "evalsha", sha, "0"])
    cpu_single = _redis_cpu(r) - cpu_before
    piped = _rps([*base, "-n", str(n * 10), "-c", "50", "-P", "50", "evalsha", sha, "0"])
    r.close()
    return {
        "evalsha_c1_rps": single,
        "evalsha_c1_us": 1e6 / single,
        # Mostly the kernel's: reading, writing and being woken, once per round trip.
        "evalsha_c1_redis_cpu_us": 1e6 * cpu_single / n,
        "evalsha_p50_c50_rps": piped,
    }


def _redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
