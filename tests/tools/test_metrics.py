"""Metrics and probes scraped over HTTP after a known workload, on real Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests.integration import sandbox_handlers

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.embedded import free_port
from pyqueue.tools.metrics import serve_worker

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PYQUEUE = Path(sys.executable).parent / "pyqueue"


def get(url: str) -> tuple[int, str, str]:
    try:
        with _OPENER.open(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def types(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


async def _until(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_worker_metrics_after_a_known_workload(redis_url: str, queue_name: str) -> None:
    async def handler(job: Any) -> str:
        await asyncio.sleep(0.02)
        if job.name == "bad":
            raise ValueError("bad")
        if job.name == "flaky" and job.attempts_made == 0:
            raise ValueError("first try fails")
        if job.name == "hopeless":
            job.discard()
            raise ValueError("discarded")
        return "ok"

    async with Queue(queue_name, redis_url) as queue:
        for n in range(3):
            await queue.add({"n": n}, name="good")
        await queue.add({}, name="bad")
        await queue.add({}, name="flaky", attempts=2)
        await queue.add({}, name="hopeless", attempts=5)
        worker = Worker(queue, handler, options=FAST)
        finished: list[str] = []
        worker.on("completed", lambda job, _: finished.append(job.id))
        worker.on("failed", lambda job, _: job.finished_on and finished.append(job.id))
        async with worker, serve_worker(worker, port=0) as server:
            base = f"http://127.0.0.1:{server.port}"
            status, _, body = await asyncio.to_thread(get, base + "/readyz")
            assert (status, body) == (200, "ready\n")
            await _until(lambda: len(finished) == 6)
            status, ctype, text = await asyncio.to_thread(get, base + "/metrics")
            assert status == 200
            assert ctype.startswith("text/plain")
            assert (await asyncio.to_thread(get, base + "/healthz"))[0] == 200
            assert (await asyncio.to_thread(get, base + "/nope"))[0] == 404
            await worker.close()
            status, _, body = await asyncio.to_thread(get, base + "/readyz")
            assert status == 503
            assert "not running" in body
    _check_workload(text, queue_name)


def _check_workload(text: str, queue_name: str) -> None:
    got = samples(text)
    kinds = types(text)
    assert kinds["pyqueue_jobs_processed"] == "counter"
    assert kinds["pyqueue_job_processing_seconds"] == "histogram"
    assert kinds["pyqueue_job_wait_seconds"] == "histogram"
    assert kinds["pyqueue_lock_renewal_failures"] == "counter"
    assert kinds["pyqueue_redis_errors"] == "counter"

    def processed(name: str, outcome: str) -> float:
        key = ("pyqueue_jobs_processed_total",
               (("job_name", name), ("outcome", outcome), ("queue", queue_name)))
        return got.get(key, 0.0)

    assert processed("good", "completed") == 3
    assert processed("bad", "failed") == 1
    assert processed("flaky", "retried") == 1
    assert processed("flaky", "completed") == 1
    assert processed("hopeless", "discarded") == 1
    assert processed("hopeless", "failed") == 0
    count = ("pyqueue_job_processing_seconds_count", (("job_name", "good"), ("queue", queue_name)))
    assert got[count] == 3
    total = ("pyqueue_job_processing_seconds_sum", (("job_name", "good"), ("queue", queue_name)))
    assert 3 * 0.02 <= got[total] < 10
    # Wait time is observed once per job (first attempt): flaky's retry is not a new wait.
    waits = ("pyqueue_job_wait_seconds_count", (("job_name", "flaky"), ("queue", queue_name)))
    assert got[waits] == 1
    assert got[("pyqueue_lock_renewal_failures_total", (("queue", queue_name),))] == 0


async def test_sandboxed_children_are_counted_once(redis_url: str, queue_name: str) -> None:
    options = WorkerOptions(concurrency=2, sandbox=True, drain_delay=1, guard_interval=200,
                            stalled_interval=0, shutdown_grace=5)
    async with Queue(queue_name, redis_url) as queue:
        for n in range(4):
            await queue.add({"x": n}, name="echo")
        await queue.add({"x": 9}, name="boom")
        worker = Worker(queue, {"echo": sandbox_handlers.echo, "boom": sandbox_handlers.boom},
                        options=options)
        done: list[str] = []
        worker.on("completed", lambda job, _: done.append(job.id))
        worker.on("failed", lambda job, _: done.append(job.id))
        async with worker, serve_worker(worker, port=0) as server:
            await _until(lambda: len(done) == 5, timeout=40)
            _, _, text = await asyncio.to_thread(get, f"http://127.0.0.1:{server.port}/metrics")
    got = samples(text)
    assert got[("pyqueue_jobs_processed_total",
                (("job_name", "echo"), ("outcome", "completed"), ("queue", queue_name)))] == 4
    assert got[("pyqueue_jobs_processed_total",
                (("job_name", "boom"), ("outcome", "failed"), ("queue", queue_name)))] == 1


def _start_exporter(redis_url: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(PYQUEUE), "exporter", "--port", str(port), "--interval", "0.5"],
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


async def test_exporter_serves_queue_figures(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        for n in range(3):
            await queue.add({"n": n})
        await queue.add({}, delay=3_600_000)
        await queue.pause()
    port = free_port()
    proc = _start_exporter(redis_url, port)
    try:
        assert proc.stdout is not None
        assert "serving" in await asyncio.to_thread(proc.stdout.readline)
        base = f"http://127.0.0.1:{port}"
        status, _, text = await asyncio.to_thread(get, base + "/metrics")
        assert status == 200
        got = samples(text)
        q = (("queue", queue_name),)
        assert got[("pyqueue_queue_jobs", (("queue", queue_name), ("state", "paused")))] == 3
        assert got[("pyqueue_queue_jobs", (("queue", queue_name), ("state", "delayed")))] == 1
        assert got[("pyqueue_queue_paused", q)] == 1
        assert got[("pyqueue_queue_workers", q)] == 0
        assert got[("pyqueue_queue_oldest_waiting_age_seconds", q)] >= 0
        assert got[("pyqueue_queue_up", ())] == 1
        assert types(text)["pyqueue_queue_jobs"] == "gauge"
        assert (await asyncio.to_thread(get, base + "/readyz"))[0] == 200
        # A worker connecting shows up within a refresh.
        async with Worker(queue_name, lambda job: None, redis_url=redis_url, options=FAST):
            async def workers() -> float:
                _, _, now = await asyncio.to_thread(get, base + "/metrics")
                return samples(now)[("pyqueue_queue_workers", q)]

            deadline = time.monotonic() + 10
            while await workers() < 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


async def test_lock_renewal_failure_is_counted(
    redis_url: str, queue_name: str, sync_redis: Any
) -> None:
    options = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0,
                            shutdown_grace=5, lock_duration=1000, lock_renew_time=200)
    release = asyncio.Event()

    async def handler(job: Any) -> None:
        await release.wait()

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        worker = Worker(queue, handler, options=options)
        lost = asyncio.Event()
        worker.on("lock-lost", lambda *_: lost.set())
        async with worker, serve_worker(worker, port=0) as server:
            await _until(lambda: sync_redis.exists(f"bull:{queue_name}:{job.id}:lock") == 1)
            # Another party takes the lock over: the next renewal must fail.
            sync_redis.set(f"bull:{queue_name}:{job.id}:lock", "someone-else", px=60_000)
            await asyncio.wait_for(lost.wait(), 10)
            _, _, text = await asyncio.to_thread(get, f"http://127.0.0.1:{server.port}/metrics")
            release.set()
    got = samples(text)
    assert got[("pyqueue_lock_renewal_failures_total", (("queue", queue_name),))] >= 1


async def test_readyz_fails_when_redis_goes_away(queue_name: str) -> None:
    from pyqueue.embedded import RedisServer

    with RedisServer() as server:
        async with Queue(queue_name, server.url) as queue:
            worker = Worker(queue, lambda job: None, options=FAST)
            await worker.start()
            try:
                async with serve_worker(worker, port=0) as probes:
                    base = f"http://127.0.0.1:{probes.port}"
                    assert (await asyncio.to_thread(get, base + "/readyz"))[0] == 200
                    server.stop()
                    status, _, body = await asyncio.to_thread(get, base + "/readyz")
                    assert status == 503, body
                    assert "redis unreachable" in body or "not running" in body
                    # Liveness is about this process's loop, not Redis: still 200.
                    assert (await asyncio.to_thread(get, base + "/healthz"))[0] == 200
                    # The worker's failed Redis calls are counted.
                    key = ("pyqueue_redis_errors_total", (("queue", queue_name),))
                    for _ in range(100):
                        _, _, text = await asyncio.to_thread(get, base + "/metrics")
                        if samples(text)[key] >= 1:
                            break
                        await asyncio.sleep(0.1)
                    assert samples(text)[key] >= 1
            finally:
                await worker.close(timeout=1)
