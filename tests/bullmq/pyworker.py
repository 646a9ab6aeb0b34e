"""A worker made of pyqueue's BullMQ-mode script calls, run the way Node's Worker runs.

Phase 1 has no engine wired to BullMQ mode yet; :func:`work` drives the
protocol directly, with Node's sequence of calls at concurrency 1: fetch,
run the job's behaviour, finish with fetch-next (complete; fail for good;
a delayed retry) or retry at once and fetch again, and wait for delayed jobs
when the fetch says so. Tests compare what it leaves in Redis with what a
Node BullMQ Worker leaves for the same jobs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyqueue._protocol.bullmq import wire
from pyqueue._protocol.bullmq.backoff import builtin_delay, normalize
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.interface import Attempt, Idle, JobReply, WorkerSpec

# One behaviour per job name: {"return": value} | {"fail": reason} |
# {"failTimes": n} (fail the first n attempts) | {"progress": [...], "log": [...]}.
Behaviour = Mapping[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Outcome:
    """What the worker did, for the test's own asserts."""

    processed: list[tuple[str, int]] = field(default_factory=list)  # (id, attemptsMade)
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # for good
    retried: list[str] = field(default_factory=list)


def _keep(raw_opts: Mapping[str, Any], name: str) -> Any:
    return wire.keep_spec(raw_opts.get(name))


async def _run(proto: BullMQProtocol, job_id: str, record: wire.BullMQRecord,
               b: Behaviour) -> tuple[bool, Any, str]:
    for p in b.get("progress", []):
        await proto.update_progress(job_id, wire.dumps(p))
    for line in b.get("log", []):
        await proto.add_log(job_id, line)
    if record.deferred_failure:
        return False, None, record.deferred_failure
    if "fail" in b:
        return False, None, str(b["fail"])
    if "failTimes" in b and record.attempts_made < b["failTimes"]:
        return False, None, f"fail {record.attempts_made + 1}"
    return True, b.get("return"), ""


async def work(
    proto: BullMQProtocol,
    behaviours: Mapping[str, Behaviour],
    *,
    until: int,
    worker: WorkerSpec | None = None,
    token: str = "py-worker:0",
    timeout: float = 20.0,
    clock: Callable[[], int] = now_ms,
    until_idle: bool = False,
) -> Outcome:
    """Process jobs until ``until`` of them completed or failed for good (or, with
    ``until_idle``, until a fetch finds nothing at all to do)."""
    spec = worker or WorkerSpec(lock_duration=30_000)
    out = Outcome()
    deadline = time.monotonic() + timeout
    reply: JobReply | Idle | None = await proto.move_to_active(token=token, worker=spec,
                                                               now=clock())
    while len(out.completed) + len(out.failed) < until:
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker: {out} after {timeout}s")
        if reply is None or isinstance(reply, Idle):
            if until_idle and (reply is None or reply == Idle(0, 0)):
                return out
            wait = 0.05
            if isinstance(reply, Idle) and reply.next_due:
                wait = max(reply.next_due - clock(), 0) / 1000 + 0.005
            elif isinstance(reply, Idle) and reply.rate_limited_ms:
                wait = reply.rate_limited_ms / 1000
            await asyncio.sleep(min(wait, 1.0))
            reply = await proto.move_to_active(token=token, worker=spec, now=clock())
            continue
        raw, job_id = reply
        record = proto.decode_job(job_id, raw)
        if record.repeat_job_key:
            # As a Node Worker does when it takes a job scheduler's iteration.
            await proto.schedule_next(job_id, record.raw_opts, record.repeat_job_key,
                                      now=clock())
        out.processed.append((job_id, record.attempts_made))
        ok, value, reason = await _run(proto, job_id, record,
                                       behaviours.get(record.name) or behaviours.get("*", {}))
        opts = record.raw_opts
        if ok:
            reply = await proto.complete(
                job_id, token=token, result_json=wire.encode_result(value),
                finished_on=clock(), keep=_keep(opts, "removeOnComplete"), worker=spec,
                fetch_next=True, max_attempts=int(opts.get("attempts") or 0))
            out.completed.append(job_id)
            continue
        made = record.attempts_made + 1
        attempt = Attempt(made, reason, wire.dumps([*record.stacktrace, f"Error: {reason}"]))
        attempts = int(opts.get("attempts") or 0)
        if made < attempts and not record.deferred_failure:
            backoff = normalize(opts.get("backoff"))
            delay = builtin_delay(backoff, made) if backoff else None
            out.retried.append(job_id)
            reply = await proto.retry(job_id, attempt, token=token, delay=int(delay or 0),
                                      lifo=bool(opts.get("lifo")), now=clock(), worker=spec,
                                      fetch_next=True)
            if reply is None:
                reply = await proto.move_to_active(token=token, worker=spec, now=clock())
            continue
        reply = await proto.fail(
            job_id, attempt, token=token, finished_on=clock(), keep=_keep(opts, "removeOnFail"),
            worker=spec, max_attempts=attempts, fetch_next=True)
        out.failed.append(job_id)
    return out
