"""QueueEvents hears every global event the real Queue and Worker publish."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from pyqueue import (
    Event,
    InvalidOptionsError,
    Job,
    Queue,
    QueueEvents,
    Worker,
    WorkerOptions,
)
from pyqueue._protocol.bull.keys import QueueKeys

# A long guard interval keeps the worker's delayed promoter asleep until close.
FAST = WorkerOptions(
    drain_delay=0.2, stalled_interval=0, shutdown_grace=2, guard_interval=60_000
)


class Recorder:
    """Every event a QueueEvents emits, in order, with a way to wait for one."""

    def __init__(self, events: QueueEvents) -> None:
        self.seen: list[Event] = []
        self._changed = asyncio.Event()
        events.on("*", self._add)

    def _add(self, event: Event) -> None:
        self.seen.append(event)
        self._changed.set()

    def find(self, name: str, *args: Any) -> Event | None:
        for event in self.seen:
            if event.name == name and event.args[: len(args)] == args:
                return event
        return None

    async def wait_for(self, name: str, *args: Any, timeout: float = 5.0) -> Event:
        """The first event called ``name`` whose arguments start with ``args``."""
        async with asyncio.timeout(timeout):
            while (found := self.find(name, *args)) is None:
                self._changed.clear()
                await self._changed.wait()
        return found

    def index(self, name: str, *args: Any) -> int:
        found = self.find(name, *args)
        assert found is not None, (name, args, self.seen)
        return self.seen.index(found)


@pytest.fixture
async def queue(redis_url: str, queue_name: str) -> AsyncIterator[Queue[Any]]:
    async with Queue[Any](queue_name, redis_url) as q:
        yield q


@pytest.fixture
async def events(redis_url: str, queue_name: str) -> AsyncIterator[QueueEvents]:
    async with QueueEvents(queue_name, redis_url) as ev:
        yield ev


@pytest.fixture
def recorder(events: QueueEvents) -> Recorder:
    return Recorder(events)


async def _wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll Redis-side state (nothing to subscribe to) until ``check()`` is true."""
    for _ in range(int(timeout / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError


@contextlib.asynccontextmanager
async def running_worker(
    redis_url: str, queue_name: str, handler: Any, options: WorkerOptions = FAST
) -> AsyncIterator[Worker]:
    """A started worker whose background tasks have settled.

    Closing a Worker right after it starts can hang (see the report on
    DelayedPromoter: a cancel that coincides with its first wake-up is lost),
    so wait until its ``delayed`` subscription is live and the wake-up handled.
    """
    client = aioredis.Redis.from_url(redis_url)
    channel = QueueKeys("bull", queue_name).channel("delayed")

    async def subscribers() -> int:
        return int(dict(await client.pubsub_numsub(channel))[channel.encode()])

    try:
        before = await subscribers()
        async with Worker(queue_name, handler, redis_url=redis_url, options=options) as worker:
            async def subscribed() -> bool:
                return await subscribers() > before

            await _wait_until(subscribed)
            await asyncio.sleep(0.05)
            yield worker
    finally:
        await client.aclose()


async def test_worker_lifecycle(
    redis_url: str, queue_name: str, queue: Queue[Any], recorder: Recorder
) -> None:
    async def double(job: Job[Any]) -> dict[str, int]:
        return {"doubled": job.data["n"] * 2}

    async with running_worker(redis_url, queue_name, double):
        job = await queue.add({"n": 2})
        done = await recorder.wait_for("completed", job.id)
        await recorder.wait_for("drained")
    assert done.args == (job.id, {"doubled": 4}, "active")
    assert recorder.find("active", job.id).args == (job.id, "waiting")  # type: ignore[union-attr]
    assert recorder.find("waiting", job.id).args == (job.id,)  # type: ignore[union-attr]
    order = [recorder.index(n, job.id) for n in ("waiting", "active", "completed")]
    assert order == sorted(order)
    assert recorder.index("drained") > order[-1]


async def test_failed(
    redis_url: str, queue_name: str, queue: Queue[Any], recorder: Recorder
) -> None:
    def boom(job: Job[Any]) -> None:
        raise ValueError(f"boom {job.id}")

    async with running_worker(redis_url, queue_name, boom):
        job = await queue.add({}, attempts=1)
        failed = await recorder.wait_for("failed", job.id)
    assert failed.args == (job.id, f"boom {job.id}", "active")
    assert recorder.find("completed") is None


@pytest.mark.parametrize("value", ["text", None, [1, "two", {"three": 3.5}], 0, False])
async def test_completed_value_is_parsed(
    redis_url: str, queue_name: str, queue: Queue[Any], recorder: Recorder, value: Any
) -> None:
    async with running_worker(redis_url, queue_name, lambda job: value):
        job = await queue.add(None)
        done = await recorder.wait_for("completed", job.id)
    assert done.args == (job.id, value, "active")


async def test_completed_payload_variants(
    raw_redis: aioredis.Redis, queue_name: str, recorder: Recorder
) -> None:
    channel = QueueKeys("bull", queue_name).channel("completed")
    await raw_redis.publish(channel, '{"jobId":"1"}')  # Node: return value undefined
    await raw_redis.publish(channel, '{"jobId":"2","val":"not json"}')
    await raw_redis.publish(channel, '{"jobId":"3","val":"{\\"a\\":[1]}"}')
    assert (await recorder.wait_for("completed", "1")).args == ("1", None, "active")
    assert (await recorder.wait_for("completed", "2")).args == ("2", "not json", "active")
    assert (await recorder.wait_for("completed", "3")).args == ("3", {"a": [1]}, "active")


async def test_progress(
    redis_url: str, queue_name: str, queue: Queue[Any], recorder: Recorder,
    raw_redis: aioredis.Redis,
) -> None:
    async def report(job: Job[Any]) -> None:
        await job.progress(42)
        await job.progress({"step": "two", "pct": 50.5})

    async with running_worker(redis_url, queue_name, report):
        job = await queue.add({})
        await recorder.wait_for("completed", job.id)
    progress = [e.args for e in recorder.seen if e.name == "progress"]
    assert progress == [(job.id, 42), (job.id, {"step": "two", "pct": 50.5})]

    # Bull's legacy "<id>,<json>" form.
    await raw_redis.publish(QueueKeys("bull", queue_name).channel("progress"), '77,{"a":1}')
    assert (await recorder.wait_for("progress", "77")).args == ("77", {"a": 1})


async def test_paused_and_resumed(queue: Queue[Any], recorder: Recorder) -> None:
    await queue.pause()
    await recorder.wait_for("paused")
    await queue.resume()
    await recorder.wait_for("resumed")
    assert [e.name for e in recorder.seen] == ["paused", "resumed"]
    assert recorder.seen[0].args == ()


async def test_delayed(queue: Queue[Any], recorder: Recorder) -> None:
    job = await queue.add({}, delay=5_000)
    event = await recorder.wait_for("delayed")
    (due,) = event.args
    assert isinstance(due, float)
    assert due == job.timestamp + 5_000
    assert recorder.find("waiting") is None


async def test_duplicated(queue: Queue[Any], recorder: Recorder) -> None:
    await queue.add({}, job_id="same")
    await queue.add({}, job_id="same")
    assert (await recorder.wait_for("duplicated")).args == ("same",)
    assert [e.args for e in recorder.seen if e.name == "waiting"] == [("same",)]


async def test_waiting_needs_a_token(
    raw_redis: aioredis.Redis, queue_name: str, recorder: Recorder
) -> None:
    keys = QueueKeys("bull", queue_name)
    await raw_redis.publish(keys.waiting_channel(""), "1")
    await raw_redis.publish(keys.waiting_channel("some-token"), "2")
    await recorder.wait_for("waiting", "2")
    assert recorder.find("waiting", "1") is None


async def test_stalled(
    redis_url: str, queue_name: str, queue: Queue[Any], recorder: Recorder,
    raw_redis: aioredis.Redis,
) -> None:
    job = await queue.add({"x": 1})
    # A worker that took the job and died: in active, with no lock.
    await raw_redis.lmove(queue.keys.wait, queue.keys.active, "RIGHT", "LEFT")
    options = WorkerOptions(
        stalled_interval=150, lock_duration=1_000, drain_delay=0.2, shutdown_grace=2,
        guard_interval=60_000,
    )
    async with running_worker(redis_url, queue_name, lambda job: "ok", options):
        assert (await recorder.wait_for("stalled", job.id)).args == (job.id,)
        await recorder.wait_for("completed", job.id, "ok")
    assert recorder.index("stalled", job.id) < recorder.index("active", job.id)


async def test_async_iterator(
    redis_url: str, queue_name: str, queue: Queue[Any], events: QueueEvents
) -> None:
    received: list[Event] = []

    async def collect() -> None:
        async for event in events.events("completed", "failed"):
            received.append(event)
            if len(received) == 2:
                return

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0)  # let the iterator register its listeners

    async def handler(job: Job[Any]) -> int:
        if job.data == "bad":
            raise RuntimeError("nope")
        return 7

    async with running_worker(redis_url, queue_name, handler):
        good = await queue.add("good")
        bad = await queue.add("bad")
        await asyncio.wait_for(collector, 5)
    assert sorted(received, key=lambda e: e.name) == [
        Event("completed", (good.id, 7, "active")),
        Event("failed", (bad.id, "nope", "active")),
    ]


async def test_async_callbacks(queue: Queue[Any], events: QueueEvents) -> None:
    got: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    async def on_waiting(*args: Any) -> None:
        await asyncio.sleep(0)
        got.set_result(args)

    events.on("waiting", on_waiting)
    job = await queue.add({})
    assert await asyncio.wait_for(got, 5) == (job.id,)


async def test_reconnects_after_a_dropped_connection(
    queue: Queue[Any], events: QueueEvents, recorder: Recorder, raw_redis: aioredis.Redis
) -> None:
    killed = await raw_redis.client_kill_filter(_type="pubsub")
    assert killed >= 1
    error = await recorder.wait_for("error")
    assert isinstance(error.args[0], RedisConnectionError)

    paused = queue.keys.channel("paused")

    async def resubscribed() -> bool:
        counts = dict(await raw_redis.pubsub_numsub(paused))
        return counts[paused.encode()] >= 1 and await raw_redis.pubsub_numpat() >= 4

    await _wait_until(resubscribed)
    await queue.pause()
    await recorder.wait_for("paused")
    job = await queue.add({})
    await recorder.wait_for("waiting", job.id)


async def test_unreadable_payload_is_an_error(
    raw_redis: aioredis.Redis, queue_name: str, recorder: Recorder
) -> None:
    keys = QueueKeys("bull", queue_name)
    await raw_redis.publish(keys.channel("completed"), "garbage")
    await raw_redis.publish(keys.channel("delayed"), "soon")
    await raw_redis.publish(keys.channel("paused"), "paused")
    await recorder.wait_for("paused")
    errors = [e.args[0] for e in recorder.seen if e.name == "error"]
    assert len(errors) == 2
    assert all(isinstance(e, ValueError) for e in errors)
    assert "completed" in str(errors[0])


async def test_glob_characters_in_the_name_are_literal(
    redis_url: str, queue_name: str, raw_redis: aioredis.Redis
) -> None:
    async with QueueEvents(queue_name + "*", redis_url) as starred:
        rec = Recorder(starred)
        other = QueueKeys("bull", queue_name + "x")
        mine = QueueKeys("bull", queue_name + "*")
        await raw_redis.publish(other.active_channel("t"), "1")
        await raw_redis.publish(mine.active_channel("t"), "2")
        await rec.wait_for("active", "2")
    assert rec.find("active", "1") is None


async def test_custom_prefix(redis_url: str, queue_name: str, recorder: Recorder) -> None:
    async with (
        QueueEvents(queue_name, redis_url, prefix="{app}") as prefixed,
        Queue[Any](queue_name, redis_url, prefix="{app}") as q,
    ):
        rec = Recorder(prefixed)
        job = await q.add({})
        await rec.wait_for("waiting", job.id)
    assert recorder.find("waiting") is None  # the default-prefix listener heard nothing


async def test_start_raises_when_redis_is_unreachable(queue_name: str) -> None:
    events = QueueEvents(queue_name, "redis://127.0.0.1:1/0")
    with pytest.raises(RedisConnectionError):
        await events.start()
    await events.close()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("",), {}),
        (("a@b",), {}),
        (("q",), {"prefix": "p@"}),
        (("q", "http://localhost"), {}),
        (("q",), {"reconnect_delay": (0, 1)}),
    ],
)
def test_invalid_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptionsError):
        QueueEvents(*args, **kwargs)


async def test_close_is_idempotent(redis_url: str, queue_name: str) -> None:
    events = QueueEvents(queue_name, redis_url)
    await events.start()
    await events.start()
    await events.close()
    await events.close()
