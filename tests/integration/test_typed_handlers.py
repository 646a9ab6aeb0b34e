"""A handler annotated ``Job[Model]`` or ``JobHandle[Model]`` gets its data as that model.

Issue 28, reproduction 1: under ``Worker("name", handler)`` (and ``pyqueue worker``, in
tests/tools/test_worker_settings.py) a typed handler got the stored dict, failed with
``'dict' object has no attribute 'to'`` and retried to exhaustion.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from tests.integration.conftest import FAST

from pyqueue import InvalidOptionsError, Job, JobFailedError, JobHandle, Queue, Worker

ROOT = Path(__file__).resolve().parents[2]


class Email(BaseModel):
    to: str


class Invoice(BaseModel):
    number: int


async def send(job: Job[Email]) -> str:
    assert isinstance(job.data, Email)
    return job.data.to


def send_sync(job: JobHandle[Email]) -> str:
    assert isinstance(job.data, Email)
    return job.data.to.upper()


def bill(job: JobHandle[Invoice]) -> int:
    return job.data.number * 2


@pytest.mark.parametrize("handler", [send, send_sync], ids=["async", "thread"])
async def test_worker_from_a_name_validates_the_annotated_model(
    redis_url: str, queue_name: str, handler: Any
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        good = await queue.add({"to": "a@b.c"}, attempts=3)
        bad = await queue.add({"too": "x"}, attempts=3)
        async with Worker(queue_name, handler, redis_url=redis_url, options=FAST) as worker:
            assert worker.queue.model is Email
            result = await good.finished(timeout=10)
            with pytest.raises(JobFailedError, match="invalid payload for Email"):
                await bad.finished(timeout=10)
        assert result in ("a@b.c", "A@B.C")
        stored = await queue.get_job(bad.id)
        assert stored is not None
        assert stored.attempts_made == 1  # not retried: the payload will never validate


async def test_a_given_queue_without_a_model_takes_the_handlers(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({"to": "x@y.z"})
        async with Worker(queue, send, options=FAST):
            assert await job.finished(timeout=10) == "x@y.z"


async def test_each_job_name_gets_its_handlers_model(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        mail = await queue.add({"to": "m@n.o"}, name="mail")
        invoice = await queue.add({"number": 21}, name="invoice")
        processor: Any = {"mail": send, "invoice": bill}
        async with Worker(queue, processor, options=FAST):
            assert await mail.finished(timeout=10) == "m@n.o"
            assert await invoice.finished(timeout=10) == 42


async def test_an_explicit_model_wins_and_a_conflicting_one_is_refused(
    redis_url: str, queue_name: str
) -> None:
    with pytest.raises(InvalidOptionsError, match=r"model: .*Invoice.*Email"):
        Worker(queue_name, send, redis_url=redis_url, model=Invoice)
    async with Queue(queue_name, redis_url, model=Invoice) as queue:
        with pytest.raises(InvalidOptionsError, match=r"Invoice.*Email"):
            Worker(queue, send)


async def test_an_unresolvable_annotation_is_named(redis_url: str, queue_name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(  # a module whose model exists only for the type checker
        "from __future__ import annotations\n"
        "async def handler(job: Job[Missing]) -> None: ...\n",
        namespace,
    )
    with pytest.raises(InvalidOptionsError, match=r"handler.*Job\[Missing\].*model="):
        Worker(queue_name, namespace["handler"], redis_url=redis_url)


async def test_a_sandboxed_handler_gets_its_model_too(
    redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration import sandbox_handlers as h

    monkeypatch.syspath_prepend(str(ROOT))
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({"to": "s@b.x"})
        async with Worker(queue, h.typed_handle, options=dataclasses.replace(FAST, sandbox=True)):
            assert await job.finished(timeout=20) == "Email:s@b.x"
