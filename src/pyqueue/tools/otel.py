"""OpenTelemetry tracing through jobs: ``pip install 'pyqueue-bull[otel]'``.

The producer's trace context (W3C ``traceparent``/``tracestate``, through the
configured propagator) travels inside the job's Bull ``opts`` under
:data:`TRACE_KEY`. Node Bull copies ``opts`` as a whole and never looks at keys it
does not know, so the context survives Node producers, workers and retries.

* :func:`add_traced` adds a job inside a ``send <queue>`` PRODUCER span and stores
  the context.
* :func:`traced` wraps a handler: each attempt runs inside a ``process <queue>``
  CONSUMER span whose parent is the stored context, so every attempt, retries
  included, continues the producer's trace. A job without the key (made by Node,
  or before tracing was on) gets a new trace and runs exactly as before.

Spans follow the messaging conventions: ``messaging.system``,
``messaging.destination.name``, ``messaging.operation`` (and the newer
``messaging.operation.type``/``.name``), ``messaging.message.id``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from pyqueue import BulkJob, Job, JobOptions, Queue

TRACE_KEY = "pyqueueTraceContext"
MESSAGING_SYSTEM = "bull"  # the wire protocol and broker semantics are Bull's
_SCOPE = "pyqueue.tools.otel"

R = TypeVar("R")


def _tracer(provider: TracerProvider | None) -> trace.Tracer:
    return trace.get_tracer(_SCOPE, tracer_provider=provider)


def _attributes(queue: str, operation: str, kind: str, job_id: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.destination.name": queue,
        "messaging.operation": operation,
        "messaging.operation.type": kind,
        "messaging.operation.name": operation,
    }
    if job_id is not None:
        attrs["messaging.message.id"] = job_id
    return attrs


async def add_traced(
    queue: Queue[Any],
    data: Any,
    *,
    name: str | None = None,
    tracer_provider: TracerProvider | None = None,
    **options: Any,
) -> Job[Any]:
    """``queue.add(data, name=..., **options)`` inside a PRODUCER span, carrying its context.

    Takes the same job options as :meth:`pyqueue.Queue.add` except ``repeat``.
    """
    job_options = JobOptions.from_kwargs(options)
    with _tracer(tracer_provider).start_as_current_span(
        f"send {queue.name}", kind=SpanKind.PRODUCER,
        attributes=_attributes(queue.name, "publish", "send", None),
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        extra = {**job_options.extra, TRACE_KEY: carrier}
        # add_bulk is the public way to pass raw opts keys; one entry is one add.
        (job,) = await queue.add_bulk([BulkJob(data, name, replace(job_options, extra=extra))])
        span.set_attribute("messaging.message.id", job.id)
        span.set_attribute("pyqueue.job.name", job.name)
        return job


def context_of(job: Job[Any]) -> otel_context.Context | None:
    """The producer's context stored in the job, or None when there is none (or it is bad)."""
    carrier = job.raw_opts.get(TRACE_KEY)
    if not isinstance(carrier, Mapping):
        return None
    clean = {str(k): str(v) for k, v in carrier.items() if isinstance(v, str)}
    found = propagate.extract(clean)
    span = trace.get_current_span(found)
    return found if span.get_span_context().is_valid else None


def _start_process_span(job: Job[Any], provider: TracerProvider | None) -> trace.Span:
    queue = job.queue.name
    attrs = _attributes(queue, "process", "process", job.id)
    attrs["pyqueue.job.name"] = job.name
    attrs["pyqueue.job.attempt"] = job.attempts_made + 1
    return _tracer(provider).start_span(
        f"process {queue}", context=context_of(job), kind=SpanKind.CONSUMER, attributes=attrs,
    )


def _failed(span: trace.Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)))


def traced(
    handler: Callable[[Job[Any]], R], *, tracer_provider: TracerProvider | None = None
) -> Callable[[Job[Any]], R]:
    """Wrap a handler (``async def`` or plain) so each attempt runs in a CONSUMER span.

    The wrapper is of the same kind as the handler, so the worker still runs a
    plain function in its thread pool.
    """
    if inspect.iscoroutinefunction(handler):
        async_handler = cast("Callable[[Job[Any]], Awaitable[Any]]", handler)

        @functools.wraps(handler)
        async def run_async(job: Job[Any]) -> Any:
            span = _start_process_span(job, tracer_provider)
            with trace.use_span(span, end_on_exit=True, record_exception=False,
                                set_status_on_exception=False):
                try:
                    return await async_handler(job)
                except BaseException as exc:
                    _failed(span, exc)
                    raise

        return cast("Callable[[Job[Any]], R]", run_async)

    @functools.wraps(handler)
    def run_sync(job: Job[Any]) -> R:
        span = _start_process_span(job, tracer_provider)
        with trace.use_span(span, end_on_exit=True, record_exception=False,
                            set_status_on_exception=False):
            try:
                return handler(job)
            except BaseException as exc:
                _failed(span, exc)
                raise

    return run_sync
