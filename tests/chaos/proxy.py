"""A small asyncio TCP proxy that misbehaves on command, for the chaos tests.

Clients connect to ``proxy.port``; each connection is piped to the upstream
Redis. Faults:

* :meth:`cut_all` closes every open connection at once (a RST-like drop).
* :meth:`cut_random` closes one random connection.
* :meth:`blackhole` silently drops all traffic, on open connections and on new
  ones, for a while. Connections black-holed this way stay open and silent
  afterwards (half-open sockets, as after a NAT timeout or a peer reboot): only
  a client-side timeout gets the client out of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random


class _Pair:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = False  # black-holed: never forwards again

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class ChaosProxy:
    """Proxy 127.0.0.1:<port> to ``upstream_host:upstream_port``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.pairs: set[_Pair] = set()
        self.dropping = False
        self.cuts = 0
        self.blackholes = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self.pairs):
            pair.close()
        self.pairs.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        pair.dead = self.dropping
        self.pairs.add(pair)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, pair), self._pipe(up_reader, writer, pair)
            )
        finally:
            self.pairs.discard(pair)
            pair.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair
    ) -> None:
        with contextlib.suppress(Exception):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if pair.dead or self.dropping:
                    pair.dead = True
                    continue
                writer.write(data)
                await writer.drain()
        pair.close()

    def cut_all(self) -> None:
        self.cuts += len(self.pairs)
        for pair in list(self.pairs):
            pair.close()

    def cut_random(self, rng: random.Random) -> None:
        live = [p for p in self.pairs if not p.dead]
        if live:
            rng.choice(live).close()
            self.cuts += 1

    async def blackhole(self, seconds: float) -> None:
        """Drop all traffic for ``seconds``; connections touched stay dead."""
        self.blackholes += 1
        self.dropping = True
        for pair in self.pairs:
            pair.dead = True
        try:
            await asyncio.sleep(seconds)
        finally:
            self.dropping = False
