"""Separate "hosts" on one machine: Linux network namespaces joined by veth pairs.

Each host gets its own namespace with one veth end, ``10.<a>.<b>.2/30``; the other
end stays in the test's namespace as ``10.<a>.<b>.1``, where Redis also listens.
A process started with :meth:`Hosts.command` then has its own network stack, IP
address and routing, as a worker on another machine would. Everything made is
removed by :meth:`Hosts.close`, also after a failed start.

Needs root (or CAP_NET_ADMIN) and ``ip``; :func:`namespaces_unavailable` says why
not, so the caller can fall back to plain processes on loopback and say so.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from dataclasses import dataclass

from tests.scale.servers import Started


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if shutil.which("ip") is None:
        return "the ip command is missing"
    probe = f"pyqprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"ip netns add failed: {exc.stderr.decode(errors='replace').strip()}"
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", probe)
    return None


@dataclass(frozen=True, slots=True)
class Host:
    name: str  # the namespace
    address: str  # this host's own address
    gateway: str  # the test namespace's end of the link (where Redis listens)


class Hosts(Started):
    def __init__(self, count: int) -> None:
        tag = f"{os.getpid() % 100000}"
        # A random /16 in 10/8, so parallel runs on a shared machine do not clash.
        net = f"10.{random.randint(64, 250)}"
        self.hosts = [
            Host(f"pyq{tag}n{i}", f"{net}.{i}.2", f"{net}.{i}.1") for i in range(count)
        ]
        self._veths = [f"pq{tag}v{i}" for i in range(count)]
        self._made: list[str] = []

    def start(self) -> None:
        for host, veth in zip(self.hosts, self._veths, strict=True):
            _ip("netns", "add", host.name)
            self._made.append(host.name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            self._made.append(veth)
            _ip("link", "set", f"{veth}p", "netns", host.name)
            _ip("addr", "add", f"{host.gateway}/30", "dev", veth)
            _ip("link", "set", veth, "up")
            inside = ("netns", "exec", host.name, "ip")
            _ip(*inside, "addr", "add", f"{host.address}/30", "dev", f"{veth}p")
            _ip(*inside, "link", "set", f"{veth}p", "up")
            _ip(*inside, "link", "set", "lo", "up")

    def command(self, host: Host, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", host.name, *argv]

    def close(self) -> None:
        # Deleting one end of a veth pair deletes both; deleting a namespace
        # deletes what is inside it.
        for made in reversed(self._made):
            args = ("netns", "del", made) if made.startswith("pyq") else ("link", "del", made)
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip(*args)
        self._made.clear()

    def leftovers(self) -> list[str]:
        """Namespaces of ours still present (the test checks the clean-up)."""
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        names = {h.name for h in self.hosts}
        return [line.split()[0] for line in listed.splitlines() if line.split()[0] in names]
