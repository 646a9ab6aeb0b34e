"""A queue outlives the process or event loop it was made in.

* A :class:`SyncQueue` made before ``fork()`` (gunicorn ``--preload``,
  multiprocessing) reconnects in the child instead of waiting for ever on the
  parent's loop thread, which does not exist there; its jobs work there too.
* A :class:`SyncJob` goes through its queue's closed check.
* A :class:`Queue` first used on one event loop works on a new one once the first
  is closed, and refuses, with an error that says so, while the first is open.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest

from pyqueue import Queue, QueueClosedError, SyncJob, SyncQueue, WrongEventLoopError

# Python 3.12+ warns about fork() in a threaded process: it is exactly the case under test.
FORK_WARNING = "ignore:This process .* is multi-threaded:DeprecationWarning"


def _run_forked(target: Callable[..., None], *args: Any) -> int | None:
    """Run ``target(*args)`` in a forked child; its exit code, or None if it hung."""
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    child.join(20)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return child.exitcode


def _child_uses_the_parents_queue(queue: SyncQueue[Any], parent_job: SyncJob[Any]) -> None:
    for n in range(30):
        assert queue.add({"who": "child", "n": n}).data == {"who": "child", "n": n}
    # A job the parent made, used in the child.
    assert parent_job.get_state() == "waiting"
    parent_job.update({"who": "parent", "seen_by_child": True})
    assert queue.get_job(parent_job.id) is not None
    queue.close()


@pytest.mark.filterwarnings(FORK_WARNING)
def test_sync_queue_reconnects_in_a_forked_child(redis_url: str, queue_name: str) -> None:
    """Bug: the child waited for ever on the parent's loop thread (dead after fork)."""
    queue: SyncQueue[Any] = SyncQueue(queue_name, redis_url)
    try:
        parent_job = queue.add({"who": "parent"})  # loop thread and connections are up
        stop = threading.Event()
        parent_adds: list[str] = []

        def keep_adding() -> None:
            # The parent goes on using its connections while the child uses its own.
            while not stop.is_set():
                parent_adds.append(queue.add({"who": "parent-meanwhile"}).id)

        adder = threading.Thread(target=keep_adding)
        adder.start()
        try:
            code = _run_forked(_child_uses_the_parents_queue, queue, parent_job)
        finally:
            stop.set()
            adder.join()
        assert code is not None, "the forked child hung on the inherited SyncQueue"
        assert code == 0
        assert parent_adds
        jobs = queue.get_jobs("waiting", 0, -1)
        children = sorted(j.data["n"] for j in jobs if j.data.get("who") == "child")
        assert children == list(range(30))
        assert len(jobs) == 1 + 30 + len(parent_adds)
        # Every id is unique: the two processes did not share a socket.
        assert len({j.id for j in jobs}) == len(jobs)
        reloaded = queue.get_job(parent_job.id)
        assert reloaded is not None
        assert reloaded.data == {"who": "parent", "seen_by_child": True}
    finally:
        queue.close()


def _child_closes(queue: SyncQueue[Any]) -> None:
    queue.add({"who": "child"})
    queue.close()
    try:
        queue.add({"who": "child-after-close"})
    except QueueClosedError:
        return
    raise AssertionError("add after close did not raise")


@pytest.mark.filterwarnings(FORK_WARNING)
def test_sync_queue_closed_in_the_child_stays_open_in_the_parent(
    redis_url: str, queue_name: str
) -> None:
    queue: SyncQueue[Any] = SyncQueue(queue_name, redis_url)
    try:
        queue.add({"who": "parent"})
        assert _run_forked(_child_closes, queue) == 0
        queue.add({"who": "parent-after"})
        assert queue.get_waiting_count() == 3
    finally:
        queue.close()


def test_sync_job_after_close_raises_and_starts_no_thread(redis_url: str, queue_name: str) -> None:
    """Bug: SyncJob methods skipped the closed check and restarted the loop thread."""
    queue: SyncQueue[Any] = SyncQueue(queue_name, redis_url)
    job = queue.add({"n": 1})
    queue.close()
    calls: list[Callable[[], object]] = [
        job.get_state, job.reload, job.remove, job.retry, job.promote, job.is_completed,
        job.is_failed, lambda: job.progress(5), lambda: job.log("x"),
        lambda: job.update({"n": 2}), lambda: job.finished(0.1),
    ]
    for call in calls:
        with pytest.raises(QueueClosedError, match="closed"):
            call()
    assert not [t for t in threading.enumerate() if t.name.startswith("pyqueue-sync-")]


# The first loop is closed with the queue's connections open (the case under test):
# the collector closes those sockets, with the ResourceWarning of an unclosed transport.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_queue_works_on_a_new_loop_once_the_first_is_closed(
    redis_url: str, queue_name: str
) -> None:
    """Bug: the second asyncio.run() hung on connections of the first, closed loop."""
    queue: Queue[Any] = Queue(queue_name, redis_url)
    first = asyncio.run(queue.add({"n": 1}))

    async def second() -> tuple[str, int, Any]:
        async with asyncio.timeout(10):
            job = await queue.add({"n": 2})
            again = await queue.get_job(first.id)
            assert again is not None
            await again.progress(50)
            return job.id, await queue.count(), (await queue.get_job(first.id)).progress_value

    assert asyncio.run(second()) == ("2", 2, 50)

    async def third() -> int:
        async with asyncio.timeout(10):
            count = await queue.count()
            await queue.close()
            return count

    assert asyncio.run(third()) == 2
    gc.collect()  # here, under this test's filter, not in a later test


def test_queue_on_a_second_live_loop_is_refused(redis_url: str, queue_name: str) -> None:
    """Bug: a Queue used from a second event loop hung (its connections belong to the first)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    queue: Queue[Any] = Queue(queue_name, redis_url)
    try:
        asyncio.run_coroutine_threadsafe(queue.add({"n": 1}), loop).result(10)

        async def elsewhere() -> None:
            async with asyncio.timeout(5):
                await queue.add({"n": 2})

        with pytest.raises(WrongEventLoopError, match="event loop"):
            asyncio.run(elsewhere())

        async def reads_elsewhere() -> None:
            async with asyncio.timeout(5):
                await queue.count()

        with pytest.raises(WrongEventLoopError, match="one Queue per event loop"):
            asyncio.run(reads_elsewhere())
        # The first loop still owns a working queue.
        assert asyncio.run_coroutine_threadsafe(queue.count(), loop).result(10) == 1
    finally:
        asyncio.run_coroutine_threadsafe(queue.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
