"""Trace context from producer to processor through Redis, with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tests.interop.bull import NodeBull

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.tools.otel import TRACE_KEY, add_traced, traced

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)


@pytest.fixture
def spans() -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _by_kind(found: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in found if s.kind == kind]


@pytest.mark.parametrize("sync_handler", [False, True])
async def test_context_travels_and_retries_continue_the_trace(
    redis_url: str, queue_name: str, spans: Any, sync_handler: bool
) -> None:
    provider, exporter = spans
    calls: list[int] = []

    def body(job: Any) -> str:
        calls.append(job.attempts_made)
        if job.attempts_made == 0:
            raise RuntimeError("first attempt fails")
        return "done"

    async def async_body(job: Any) -> str:
        return body(job)

    handler = traced(body if sync_handler else async_body, tracer_provider=provider)
    async with Queue(queue_name, redis_url) as queue:
        job = await add_traced(queue, {"order": 1}, name="charge", attempts=2,
                               tracer_provider=provider)
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert stored.raw_opts[TRACE_KEY]["traceparent"].startswith("00-")
        assert stored.opts.attempts == 2
        worker = Worker(queue, handler, options=FAST)
        done = asyncio.Event()
        worker.on("completed", lambda *_: done.set())
        async with worker:
            await asyncio.wait_for(done.wait(), 20)
    assert calls == [0, 1]
    found = exporter.get_finished_spans()
    (producer,) = _by_kind(found, SpanKind.PRODUCER)
    consumers = sorted(_by_kind(found, SpanKind.CONSUMER),
                       key=lambda s: s.attributes["pyqueue.job.attempt"])
    assert len(consumers) == 2
    assert producer.name == f"send {queue_name}"
    assert producer.attributes["messaging.system"] == "bull"
    assert producer.attributes["messaging.destination.name"] == queue_name
    assert producer.attributes["messaging.operation"] == "publish"
    assert producer.attributes["messaging.message.id"] == job.id
    for attempt, span in enumerate(consumers, start=1):
        assert span.name == f"process {queue_name}"
        assert span.attributes["messaging.operation"] == "process"
        assert span.attributes["messaging.destination.name"] == queue_name
        assert span.attributes["messaging.message.id"] == job.id
        assert span.attributes["pyqueue.job.attempt"] == attempt
        # Both attempts are children of the producer span: one trace.
        assert span.context.trace_id == producer.context.trace_id
        assert span.parent is not None
        assert span.parent.span_id == producer.context.span_id
    assert consumers[0].status.status_code == StatusCode.ERROR
    assert consumers[0].events[0].name == "exception"
    assert consumers[1].status.status_code != StatusCode.ERROR


async def test_node_made_job_without_the_key(
    node_bull: NodeBull, redis_url: str, queue_name: str, spans: Any
) -> None:
    provider, exporter = spans
    (node_id,) = node_bull.add(queue_name, [{"name": "ship", "data": {"n": 1}}])

    async def handler(job: Any) -> dict[str, Any]:
        return {"seen": job.data}

    async with Queue(queue_name, redis_url) as queue:
        worker = Worker(queue, traced(handler, tracer_provider=provider), options=FAST)
        done = asyncio.Event()
        worker.on("completed", lambda *_: done.set())
        async with worker:
            await asyncio.wait_for(done.wait(), 20)
        finished = await queue.get_job(node_id)
        assert finished is not None
        assert finished.return_value == {"seen": {"n": 1}}
    (span,) = exporter.get_finished_spans()
    assert span.kind == SpanKind.CONSUMER
    assert span.parent is None  # a new trace: nothing to continue
    assert span.attributes["messaging.message.id"] == node_id


async def test_node_bull_keeps_the_key(
    node_bull: NodeBull, redis_url: str, queue_name: str, spans: Any
) -> None:
    provider, _ = spans
    async with Queue(queue_name, redis_url) as queue:
        job = await add_traced(queue, {"n": 2}, name="ship", attempts=3, tracer_provider=provider)
        sent = (await queue.get_job(job.id)).raw_opts[TRACE_KEY]  # type: ignore[union-attr]
        events = await node_bull.arun({
            "queue": queue_name, "action": "process", "until": 1,
            "behaviour": {"*": {"failTimes": 1}},
            "settings": {"stalledInterval": 5000, "guardInterval": 200, "drainDelay": 1},
        })
        seen = [e["opts"].get(TRACE_KEY) for e in events if e["event"] == "processing"]
        assert seen == [sent, sent]  # both of Node's attempts saw it
        after = await queue.get_job(job.id)
        assert after is not None
        assert after.raw_opts[TRACE_KEY] == sent
