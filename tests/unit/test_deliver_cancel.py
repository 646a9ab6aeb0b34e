"""deliver_cancel raises a cancel that the awaited call swallowed, as Python 3.11's
asyncio.wait_for does inside redis-py (see pyqueue._protocol.pubsub)."""

from __future__ import annotations

import asyncio

import pytest

from pyqueue._protocol.pubsub import deliver_cancel


async def _swallows_cancel(started: asyncio.Event) -> str:
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        return "swallowed"  # what a buggy library call does
    return "never"


async def _run_swallowing(wrap: bool) -> asyncio.Task[str]:
    started = asyncio.Event()
    call = _swallows_cancel(started)
    task = asyncio.create_task(deliver_cancel(call) if wrap else call)
    await started.wait()
    task.cancel()
    await asyncio.wait({task})
    return task


async def test_a_swallowed_cancel_is_raised() -> None:
    assert (await _run_swallowing(wrap=False)).result() == "swallowed"  # the bug itself
    assert (await _run_swallowing(wrap=True)).cancelled()


async def test_a_timeout_around_it_still_becomes_timeout_error() -> None:
    started = asyncio.Event()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await deliver_cancel(_swallows_cancel(started))
    # The task itself is not left cancelled: it goes on after the timeout.
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0
    await asyncio.sleep(0)


async def test_no_cancel_passes_the_result_through() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await deliver_cancel(answer()) == 42
