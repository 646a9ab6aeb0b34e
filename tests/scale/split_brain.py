"""Split brain on Sentinel: two masters at once, and what acknowledged jobs it costs.

Killing a master is the easy failover: it stops taking writes. The hard ones
leave it running while another server is promoted, so for a while there are two
masters, and whatever the old one acknowledged is discarded when it rejoins as
a replica (Jepsen's analysis of Redis Sentinel: without synchronous replication
acknowledged writes are lost in a partition; ``WAIT`` narrows it). Two faults:

- **double failover**: ``SENTINEL FAILOVER``, then another while the first
  promoted server is still master;
- **partition**: the master is cut from the Sentinels and the replicas (a
  :class:`PartitionProxy` in front of it drops their traffic) while clients
  still reach it; Sentinel promotes a replica; then the partition heals.

:func:`run_split_brain` runs producers and workers through one fault and counts
**vanished** jobs: acknowledged (``add`` returned), and whose hash is gone at the
end, executed or not. That is what split brain costs: records discarded at the
resync, not only jobs that never ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError
from tests.scale.servers import SentinelProcess, _wait_link_up

from pyqueue import Queue, ReplicationError, Worker, WorkerOptions
from pyqueue.embedded import RedisServer, find_redis_server

OPTIONS = WorkerOptions(
    lock_duration=2000, stalled_interval=1000, guard_interval=500, drain_delay=0.5,
    shutdown_grace=2.0, concurrency=5,
)


@dataclass
class SplitFigures:
    acked: int
    vanished: int  # acknowledged, and no hash at the end (executed or not)
    never_ran: int  # of those, never executed at all
    stuck: int  # acknowledged, still in Redis, never executed (a stall: must be 0)
    run_twice: int
    refused: int  # adds that raised (ReplicationError, connection errors) and were retried
    fault_s: float
    adds_per_s: float  # acknowledged adds per second over the whole run (the exposure)

    def row(self, label: str) -> str:
        return (
            f"| {label} | {self.acked} | {self.vanished} | {self.never_ran} | {self.stuck} | "
            f"{self.run_twice} | {self.refused} | {self.fault_s:.1f} | {self.adds_per_s:.0f} |"
        )


async def run_split_brain(
    url: str,
    name: str,
    fault: Callable[[], None],
    *,
    jobs: int = 1500,
    producers: int = 2,
    workers: int = 2,
    handler_ms: float = 5,
    queue_kwargs: dict[str, Any] | None = None,
) -> SplitFigures:
    """Producers add ``jobs`` with their own ids while ``fault`` runs (in a thread)."""
    runs: Counter[str] = Counter()
    acked: list[str] = []
    refused = 0

    async def handler(job: Any) -> None:
        runs[job.id] += 1
        await asyncio.sleep(handler_ms / 1000)

    queues = [Queue(name, url, **(queue_kwargs or {})) for _ in range(producers)]
    fleet = [Worker(Queue(name, url), handler, options=OPTIONS) for _ in range(workers)]
    for worker in fleet:
        await worker.start()

    async def produce(p: int, queue: Queue[Any]) -> None:
        nonlocal refused
        for n in range(jobs // producers):
            job_id = f"p{p}-{n}"
            while True:
                try:
                    await queue.add({"n": n}, job_id=job_id)
                    break
                except (RedisError, OSError, ReplicationError):
                    refused += 1  # not acknowledged: retried, as an application would
                    await asyncio.sleep(0.02)
            acked.append(job_id)
            await asyncio.sleep(0.004)

    began = time.monotonic()
    tasks = [asyncio.create_task(produce(p, q)) for p, q in enumerate(queues)]
    try:
        while len(acked) < jobs // 5:  # noqa: ASYNC110 - a count, no event to wait on
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await asyncio.to_thread(fault)
        fault_s = time.monotonic() - started
        await asyncio.gather(*tasks)
        adds_per_s = len(acked) / (time.monotonic() - began)
        await _settle(acked, runs)
        vanished = await _vanished(queues[0], acked)
    finally:
        for task in tasks:
            task.cancel()
        for worker in fleet:
            await worker.close()
            await worker.queue.close()
        for queue in queues:
            await queue.close()
    return SplitFigures(
        acked=len(acked), vanished=len(vanished),
        never_ran=sum(1 for job_id in vanished if job_id not in runs),
        stuck=len(set(acked) - set(runs) - set(vanished)),
        run_twice=sum(1 for n in runs.values() if n > 1), refused=refused, fault_s=fault_s,
        adds_per_s=adds_per_s,
    )


async def _settle(acked: list[str], runs: Counter[str]) -> None:
    """Until every acknowledged job ran, or nothing ran for 5 s."""
    last, seen = time.monotonic(), sum(runs.values())
    while time.monotonic() - last < 5 and not set(acked) <= set(runs):
        await asyncio.sleep(0.1)
        if sum(runs.values()) != seen:
            last, seen = time.monotonic(), sum(runs.values())


async def _vanished(queue: Queue[Any], acked: list[str]) -> list[str]:
    gone = []
    for job_id in acked:
        for attempt in range(50):
            try:
                if await queue.get_job(job_id) is None:
                    gone.append(job_id)
                break
            except RedisError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
    return gone


class _Pair:
    def __init__(self, source: str, client: asyncio.StreamWriter,
                 upstream: asyncio.StreamWriter) -> None:
        self.source = source
        self.client = client
        self.upstream = upstream

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class PartitionProxy:
    """A TCP proxy in front of one server that can drop the traffic of chosen source addresses.

    Everyone reaches the server through it (Sentinel then names the proxy's
    address as the master's). :meth:`partition` black-holes the connections of
    the given peer addresses, open and new, both ways: nothing is closed, bytes
    are just not forwarded, as when packets are dropped. Clients on other source
    addresses (127.0.0.1) go on as before. :meth:`heal` closes the black-holed
    connections (their peers reconnect) and forwards again.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cut_sources: frozenset[str] = frozenset()
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.close()
        self._pairs.clear()

    def partition(self, sources: set[str]) -> None:
        """Drop all traffic from and to these peer addresses (call on the proxy's loop)."""
        self.cut_sources = frozenset(sources)

    def heal(self) -> None:
        cut, self.cut_sources = self.cut_sources, frozenset()
        for pair in [p for p in self._pairs if p.source in cut]:
            pair.close()
            self._pairs.discard(pair)

    def call(self, method: Callable[..., None], *args: Any) -> None:
        """Run ``method`` on the proxy's loop, from another thread (a fault runs in one)."""
        assert self._loop is not None
        done = asyncio.run_coroutine_threadsafe(_call(method, *args), self._loop)
        done.result(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = str(writer.get_extra_info("peername")[0])
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(source, writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(pair, reader, up_writer),
                                 self._pipe(pair, up_reader, writer))
        finally:
            pair.close()
            self._pairs.discard(pair)

    async def _pipe(self, pair: _Pair, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if pair.source in self.cut_sources:
                    continue  # dropped: the peer hears nothing, and nothing is closed
                writer.write(data)
                await writer.drain()
        pair.close()


async def _call(method: Callable[..., None], *args: Any) -> None:
    method(*args)


class PartitionableSentinel:
    """A master behind a :class:`PartitionProxy`, ``replicas`` replicas and three Sentinels.

    Replicas and Sentinels bind 127.0.0.2 first, so their connections to the
    master come from that address (Sentinel connects out from its first bind
    address; replicas too on Redis 6.2, and from ``bind-source-addr`` on 7.0+),
    while clients come from 127.0.0.1. Cutting 127.0.0.2 at the proxy partitions
    the master from the Sentinels and replicas and leaves the clients with it.
    """

    SERVICE = "pyqueue-partition"
    CUT = "127.0.0.2"

    def __init__(self, replicas: int = 1, extra_args: list[str] | None = None) -> None:
        # protected-mode refuses peers other than exactly 127.0.0.1 on a server
        # without a password: 127.0.0.2 must get in (all of it is loopback).
        args = ["--repl-diskless-sync-delay", "0", "--protected-mode", "no", *(extra_args or [])]
        self.master = RedisServer(extra_args=list(args))
        side = ["--bind", self.CUT, "127.0.0.1"]
        if _version_at_least(7):
            side += ["--bind-source-addr", self.CUT]
        self.replicas = [RedisServer(extra_args=args + side) for _ in range(replicas)]
        self.proxy: PartitionProxy | None = None
        self.sentinels: list[SentinelProcess] = []

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, *self.replicas]

    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0"

    async def start(self) -> None:
        self.master.start()
        self.proxy = PartitionProxy(self.master.port)
        await self.proxy.start()
        for replica in self.replicas:
            replica.start()
            with redis.Redis(port=replica.port) as client:
                client.execute_command("REPLICAOF", "127.0.0.1", self.proxy.port)
        for replica in self.replicas:
            await asyncio.to_thread(_wait_link_up, replica.port)
        source = "protected-mode no\n" + (
            f"bind-source-addr {self.CUT}\n" if _version_at_least(7) else "")
        self.sentinels = [
            # down-after 2 s: with 1 s a loaded machine made Sentinels think the new
            # master down right after the failover, and fail back to the old one.
            SentinelProcess(self.SERVICE, self.proxy.port, bind=f"{self.CUT} 127.0.0.1",
                            extra_conf=source, down_after_ms=2000)
            for _ in range(3)
        ]
        for sentinel in self.sentinels:
            await asyncio.to_thread(sentinel.start)
        await asyncio.to_thread(self._wait_known)

    def _wait_known(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ok = True
            for s in self.sentinels:
                with redis.Redis(port=s.port) as c:
                    fields = c.sentinel_master(self.SERVICE)
                    ok = ok and int(fields["num-other-sentinels"]) >= 2 and int(
                        fields["num-slaves"]) >= len(self.replicas)
            if ok:
                return
            time.sleep(0.1)
        raise TimeoutError("sentinels did not discover each other and the replicas")

    def master_port(self) -> int:
        for s in self.sentinels:
            with contextlib.suppress(RedisError), redis.Redis(port=s.port) as c:
                _, port = c.sentinel_get_master_addr_by_name(self.SERVICE)
                return int(port)
        raise RuntimeError("no Sentinel answered")

    async def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        if self.proxy is not None:
            await self.proxy.close()
        for server in self.servers:
            server.close()


def _version_at_least(major: int) -> bool:
    out = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True,
                         check=True).stdout
    version = out.split("v=", 1)[1].split()[0]
    return int(version.split(".")[0]) >= major


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> float:
    """Poll ``check`` until true; returns the seconds it took. Raises TimeoutError."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


def role_of(port: int) -> tuple[str, int | None]:
    """``("master", None)``, ``("slave", <master port>)`` or ``("down", None)``."""
    try:
        with redis.Redis(port=port, socket_timeout=1) as client:
            info = client.info("replication")
    except RedisError:
        return "down", None
    if info["role"] == "master":
        return "master", None
    up = info.get("master_link_status") == "up"
    return "slave", int(info["master_port"]) if up else None
