"""`pyqueue watch` in a real pseudo-terminal: live figures, in place, and a clean Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pyqueue import BulkJob, Queue, Worker, WorkerOptions

PYQUEUE = Path(sys.executable).parent / "pyqueue"
FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A child process on a pty (160x40 unless told), with everything it wrote kept."""

    def __init__(self, argv: list[str], env: dict[str, str], columns: int = 160) -> None:
        self.master, slave = pty.openpty()
        # 160 columns by default: wide enough that rich does not shorten the headers.
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        env = {**env, "COLUMNS": str(columns)}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.output = b""

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    return
                if not chunk:
                    return
                self.output += chunk

    def wait_for(self, pattern: bytes, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while pattern not in ANSI.sub(b"", self.output):
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never shown; screen so far: {self.output!r}")
            self.read_for(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.master)


async def test_watch_refreshes_in_place_and_ctrl_c_restores(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add_bulk(BulkJob({"n": n}) for n in range(6000))
        await queue.add({"late": True}, delay=3_600_000)
        env = {**os.environ, "REDIS_URL": redis_url, "TERM": "xterm-256color",
               "COLUMNS": "160", "LINES": "40"}
        term = Terminal([str(PYQUEUE), "watch", queue_name, "--interval", "0.3"], env)
        try:
            term.wait_for(queue_name.encode())
            # The first frame: 6000 waiting, 1 delayed, no throughput yet.
            term.wait_for(b"6000")
            assert b"\x1b[?1049h" in term.output  # on the alternate screen
            processed = asyncio.Event()

            async def quick(job: Any) -> None:
                await asyncio.sleep(0.001)

            async with Worker(queue, quick, options=FAST, concurrency=20) as worker:
                worker.on("drained", lambda *_: processed.set())
                # While a busy queue streams completion events, frames keep coming.
                frames_before = term.output.count(b"pyqueue watch")
                await asyncio.to_thread(term.read_for, 1.5)
                assert term.output.count(b"pyqueue watch") >= frames_before + 2
                await asyncio.wait_for(processed.wait(), 60)
                # The worker is shown while it runs (no "no workers" flag), and the counts moved.
                await asyncio.to_thread(term.wait_for, b" ok")
            text = ANSI.sub(b"", term.output).decode("utf-8", "replace")
            # Columns: queue, fmt, wait, act, delay, fail, done, psd, /s, wkr, oldest, flags.
            rows = [line.split() for line in text.splitlines()
                    if line.strip().startswith(queue_name)]
            rates = [float(r[8]) for r in rows if len(r) > 8 and re.fullmatch(r"\d+\.\d", r[8])]
            assert any(r > 0 for r in rates), text[-3000:]
            # Ctrl-C as a terminal sends it: the SIGINT of the foreground process group.
            os.killpg(term.proc.pid, signal.SIGINT)
            await asyncio.to_thread(term.read_for, 3)
            assert term.proc.wait(10) == 0
            tail = term.output[term.output.rfind(b"\x1b[?1049h"):]
            assert b"\x1b[?1049l" in tail  # left the alternate screen
            assert b"\x1b[?25h" in tail  # cursor shown again
            assert b"Traceback" not in term.output
        finally:
            term.close()


async def test_throughput_counts_every_finished_job(redis_url: str, queue_name: str) -> None:
    """A burst of completions arriving in one socket read is counted whole, not in part."""
    import redis.asyncio as aioredis

    from pyqueue.tools.cli_watch import _Finished

    client = aioredis.Redis.from_url(redis_url)
    finished = _Finished(client, "bull")
    try:
        await finished.start()
        async with client.pipeline(transaction=False) as pipe:
            for n in range(500):
                pipe.publish(f"bull:{queue_name}:completed", f'{{"jobId":"{n}"}}')
            for n in range(20):
                pipe.publish(f"bull:{queue_name}:failed", f'{{"jobId":"f{n}"}}')
            await pipe.execute()
        for _ in range(100):
            if finished.counts[queue_name] == 520:
                break
            await asyncio.sleep(0.05)
        assert finished.counts[queue_name] == 520
    finally:
        await finished.close()
        await client.aclose()


async def test_watch_outlives_a_redis_outage(queue_name: str) -> None:
    """Redis goes away: the view stays, says since when, and recovers when Redis is back."""
    from pyqueue.embedded import RedisServer

    with RedisServer(appendonly=True) as server:
        async with Queue(queue_name, server.url) as queue:
            await queue.add({"n": 1})
        env = {**os.environ, "REDIS_URL": server.url, "TERM": "xterm-256color"}
        term = Terminal([str(PYQUEUE), "watch", queue_name, "--interval", "0.3"], env)
        try:
            term.wait_for(queue_name.encode())
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(term.wait_for, b"Redis unreachable since")
            assert term.proc.poll() is None  # still running, not exit code 4
            mark = len(term.output)
            await asyncio.to_thread(server.start)
            async with Queue(queue_name, server.url) as queue:
                await queue.add({"n": 2})

            def latest_frame() -> bytes:
                text = ANSI.sub(b"", term.output[mark:])
                return text[text.rfind(b"pyqueue watch"):]

            def recovered() -> bool:
                frame = latest_frame()
                return b"unreachable" not in frame and queue_name.encode() in frame

            deadline = time.monotonic() + 20
            while not recovered():
                assert time.monotonic() < deadline, latest_frame()[-2000:]
                await asyncio.to_thread(term.read_for, 0.2)
            assert term.proc.poll() is None
            os.killpg(term.proc.pid, signal.SIGINT)
            await asyncio.to_thread(term.read_for, 2)
            assert term.proc.wait(10) == 0
            assert b"Traceback" not in term.output
        finally:
            term.close()
