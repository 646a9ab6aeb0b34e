"""Many worker "hosts" share queues: the rate limit and the concurrency hold across them.

Each worker process runs in its own network namespace (its own IP address, talking
to Redis over a veth link), as workers on separate machines would. Where
namespaces cannot be made, the processes run on loopback instead, and the test
says so with a warning. The figures come from the job hashes (``processedOn``,
``finishedOn``, the return value naming the host), not from the workers' word.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.scale.hosts import Hosts, namespaces_unavailable

from pyqueue import BulkJob, Job, Queue
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue.embedded import RedisServer

pytestmark = pytest.mark.slow

HOSTS = 4
CONCURRENCY = 2
LIMIT = 6  # jobs ...
PER_MS = 400  # ... per this many ms, for the whole queue
LIMITED_JOBS = 6 * LIMIT
BUSY_JOBS = 80
# processedOn is the worker's clock when it asked; the limiter's window is Redis's.
# The gap (one round trip on a busy machine) is allowed for by shortening windows.
SLACK_MS = 100
PREFIX = "hosts"
WORKER = Path(__file__).with_name("host_worker.py")


@pytest.fixture
def hosts() -> Iterator[Hosts | None]:
    reason = namespaces_unavailable()
    if reason is not None:
        message = (
            f"network namespaces unavailable ({reason}): the {HOSTS} workers run as "
            "separate processes with their own connections on loopback instead"
        )
        print(message)
        warnings.warn(message, stacklevel=1)
        yield None
        return
    made = Hosts(HOSTS)
    with made:
        yield made
    assert made.leftovers() == [], "network namespaces were left behind"


def _spawn(hosts: Hosts | None, server: RedisServer) -> list[tuple[str, subprocess.Popen[str]]]:
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    for i in range(HOSTS):
        if hosts is None:
            name, address = f"proc{i}", "127.0.0.1"
        else:
            host = hosts.hosts[i]
            name, address = host.address, host.gateway
        argv = [
            sys.executable, str(WORKER), f"redis://{address}:{server.port}/0", PREFIX, name,
            str(CONCURRENCY), str(LIMIT), str(PER_MS),
        ]
        if hosts is not None:
            argv = hosts.command(hosts.hosts[i], argv)
        procs.append((name, subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=Path(__file__).parents[2],
        )))
    return procs


def _stop(procs: list[tuple[str, subprocess.Popen[str]]]) -> None:
    for _, proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for _, proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for _, proc in procs:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def max_overlap(spans: list[tuple[int, int]]) -> int:
    """Most spans ``[start, end)`` open at one moment (an end before a start at a tie)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def most_in_window(starts: list[int], width: int) -> int:
    """Most starts inside any interval ``[t, t + width)``."""
    starts = sorted(starts)
    most = lo = 0
    for hi, t in enumerate(starts):
        while starts[lo] <= t - width:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def test_the_checks_catch_what_they_should() -> None:
    assert max_overlap([(0, 10), (5, 15), (10, 20)]) == 2
    assert max_overlap([(0, 10), (10, 20)]) == 1
    assert most_in_window([0, 1, 2, 399, 400, 401], 400) == 4
    assert most_in_window([0, 100, 200], 100) == 1


async def _run_to_completion(queue: Queue[Any], total: int, procs: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while (await queue.get_job_counts("completed"))["completed"] < total:
        for name, proc in procs:
            assert proc.poll() is None, f"worker {name} died: {proc.stderr.read()}"  # type: ignore[union-attr]
        assert asyncio.get_running_loop().time() < deadline, await queue.get_job_counts()
        await asyncio.sleep(0.1)


# The fallback is reported as a warning in pytest's summary, not turned into an error.
@pytest.mark.filterwarnings("default:network namespaces unavailable:UserWarning")
async def test_workers_on_separate_hosts_share_the_rate_limit_and_the_concurrency(
    hosts: Hosts | None,
) -> None:
    gateways = [h.gateway for h in hosts.hosts] if hosts is not None else []
    extra = ["--bind", "127.0.0.1", *gateways, "--protected-mode", "no"]
    with RedisServer(extra_args=extra) as server:
        procs = _spawn(hosts, server)
        limited: Queue[Any] = Queue("limited", server.url, prefix=PREFIX)
        busy: Queue[Any] = Queue("busy", server.url, prefix=PREFIX)
        try:
            for name, proc in procs:
                line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
                assert line.strip() == "ready", f"worker {name}: {line!r} {proc.stderr.read()}"  # type: ignore[union-attr]
            if hosts is not None:
                # Each worker really talks from its own host's address.
                await _until_connected(server, {h.address for h in hosts.hosts})
            await limited.add_bulk([BulkJob({"n": n}) for n in range(LIMITED_JOBS)])
            await busy.add_bulk([BulkJob({"n": n}) for n in range(BUSY_JOBS)])
            await _run_to_completion(busy, BUSY_JOBS, procs)
            await _run_to_completion(limited, LIMITED_JOBS, procs)
            limited_jobs = await limited.get_jobs("completed")
            busy_jobs = await busy.get_jobs("completed")
        finally:
            _stop(procs)
            await limited.close()
            await busy.close()
    names = {name for name, _ in procs}
    _check_concurrency(busy_jobs, names)
    _check_rate_limit(limited_jobs)


async def _until_connected(server: RedisServer, addresses: set[str]) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while (seen := _client_addresses(server)) != addresses:
        assert asyncio.get_running_loop().time() < deadline, (seen, addresses)
        await asyncio.sleep(0.05)


def _client_addresses(server: RedisServer) -> set[str]:
    """Source IPs of the workers' blocking connections (named as Bull names them)."""
    worker_names = {QueueKeys(PREFIX, q).worker_client_name for q in ("limited", "busy")}
    with contextlib.closing(redis.Redis(port=server.port)) as c:
        return {
            str(entry["addr"]).rpartition(":")[0]
            for entry in c.client_list()
            if entry.get("name") in worker_names
        }


def _check_concurrency(jobs: list[Job[Any]], names: set[str]) -> None:
    assert len(jobs) == BUSY_JOBS
    assert all(j.attempts_made == 0 for j in jobs)  # no attempt failed or was retried
    by_host: dict[str, list[tuple[int, int]]] = {}
    for job in jobs:
        assert job.processed_on is not None
        assert job.finished_on is not None
        by_host.setdefault(job.return_value, []).append((job.processed_on, job.finished_on))
    assert set(by_host) == names, "every host took part"
    for host, spans in by_host.items():
        assert max_overlap(spans) <= CONCURRENCY, host
    everyone = [s for spans in by_host.values() for s in spans]
    most = max_overlap(everyone)
    print(f"busy: {len(jobs)} jobs on {len(by_host)} hosts; most running at once: {most} "
          f"(bound {HOSTS * CONCURRENCY}), per host: "
          f"{sorted(max_overlap(s) for s in by_host.values())} (bound {CONCURRENCY})")
    assert most <= HOSTS * CONCURRENCY
    # The hosts really worked side by side (else the bounds above prove nothing).
    assert most > CONCURRENCY


def _check_rate_limit(jobs: list[Job[Any]]) -> None:
    assert len(jobs) == LIMITED_JOBS
    starts = [j.processed_on for j in jobs if j.processed_on is not None]
    assert len(starts) == LIMITED_JOBS
    assert len({j.return_value for j in jobs}) > 1, "more than one host started jobs"
    # Bull's limiter counts in fixed windows of PER_MS, each opened by the first start
    # after the last one closed; any shorter interval touches at most two of them.
    most = most_in_window(starts, PER_MS - SLACK_MS)
    span = max(starts) - min(starts)
    print(f"limited: {len(starts)} starts over {span} ms from "
          f"{len({j.return_value for j in jobs})} hosts; most in any {PER_MS - SLACK_MS} ms: "
          f"{most} (bound {2 * LIMIT}); limiter {LIMIT} per {PER_MS} ms")
    assert most <= 2 * LIMIT
    # Over the whole run: the starts fit into the windows the span allows.
    windows = math.ceil((span + SLACK_MS) / PER_MS) + 1
    assert windows * LIMIT >= LIMITED_JOBS
