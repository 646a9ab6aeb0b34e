"""What the harness reads from Redis: counters, memory, and how many jobs are left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

QUEUE = "bench"


@dataclass(frozen=True)
class Snapshot:
    calls: int  # INFO commandstats: every command, including those run inside scripts
    reads: int  # INFO stats total_reads_processed: ~ one per client round trip
    cpu: float  # used_cpu_user + used_cpu_sys, seconds
    used_memory: int

    def __sub__(self, other: Snapshot) -> Snapshot:
        return Snapshot(
            self.calls - other.calls, self.reads - other.reads, self.cpu - other.cpu,
            self.used_memory - other.used_memory,
        )


class Probe:
    def __init__(self, url: str) -> None:
        self.r = redis.Redis.from_url(url)

    def flushall(self) -> None:
        self.r.flushall()

    def snapshot(self) -> Snapshot:
        info: dict[str, Any] = self.r.info("all")
        calls = sum(v["calls"] for k, v in info.items() if k.startswith("cmdstat_"))
        return Snapshot(
            calls=int(calls),
            reads=int(info["total_reads_processed"]),
            cpu=float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            used_memory=int(info["used_memory"]),
        )

    def key_memory(self) -> int:
        """The sum of MEMORY USAGE (exact, SAMPLES 0) over every key.

        Not the used_memory delta: that also moves with allocator fragmentation,
        the script cache and client buffers, by a few bytes per job either way
        between two runs of the same library.
        """
        total = 0
        for key in self.r.scan_iter(count=1000):
            total += int(self.r.memory_usage(key, samples=0) or 0)
        return total

    def waiting(self, lib: str) -> int:
        """Jobs of the bench queue not yet taken by a worker, by each library's keys."""
        r = self.r
        if lib in ("pyqueue", "pyqueue-base", "pyqueue-uvloop", "bull", "bull412"):
            return int(r.llen(f"bull:{QUEUE}:wait")) + int(r.zcard(f"bull:{QUEUE}:delayed"))
        if lib in ("bullmq", "pyqueue-bullmq", "bullmq-node"):
            # BullMQ keeps prioritized jobs in a set of their own.
            return (int(r.llen(f"bull:{QUEUE}:wait")) + int(r.zcard(f"bull:{QUEUE}:delayed"))
                    + int(r.zcard(f"bull:{QUEUE}:prioritized")))
        if lib == "rq":
            return int(r.llen(f"rq:queue:{QUEUE}"))
        if lib == "arq":
            return int(r.zcard(QUEUE))
        if lib == "saq":
            return int(r.llen(f"saq:{QUEUE}:queued"))
        raise ValueError(lib)

    def close(self) -> None:
        self.r.close()
