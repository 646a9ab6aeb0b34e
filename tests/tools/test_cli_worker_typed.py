"""``pyqueue worker`` with typed settings, ``--burst``, and its failure logs.

Issue 28, reproductions 1 and 12, and issue 26 item 8:

* typed handlers got dicts under ``pyqueue worker``;
* a final failure was logged at INFO, without the exception type or a traceback;
* a non-callable handler printed a 32-line traceback;
* ``--burst`` never exited while a queue held a delayed job due later.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from tests.tools.test_cli_worker import run_worker

from pyqueue import Queue


@pytest.fixture
def prefix() -> str:
    return f"p{uuid.uuid4().hex[:10]}"


async def test_typed_handlers_get_their_model(redis_url: str, prefix: str) -> None:
    async with Queue("emails", redis_url, prefix=prefix) as emails, \
            Queue("shouts", redis_url, prefix=prefix) as shouts:
        mail = await emails.add({"to": "a@b.c"}, attempts=3)
        shout = await shouts.add({"to": "d@e.f"}, attempts=3)
        done = await asyncio.to_thread(run_worker, redis_url,
                                       "tests.tools.typed_settings:settings", "--burst",
                                       "--prefix", prefix)
        assert done.returncode == 0, done.stdout + done.stderr
        await mail.reload()
        await shout.reload()
        assert (mail.return_value, mail.attempts_made) == ("a@b.c", 0)
        assert (shout.return_value, shout.attempts_made) == ("D@E.F", 0)


async def test_a_final_failure_is_logged_once_with_its_traceback(
    redis_url: str, prefix: str
) -> None:
    async with Queue("fails", redis_url, prefix=prefix) as fails:
        await fails.add({"to": "x@y"}, attempts=2)
        done = await asyncio.to_thread(run_worker, redis_url,
                                       "tests.tools.typed_settings:entries", "--burst",
                                       "--prefix", prefix, "--log-format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failed = [e for e in events if e.get("event") == "failed"]
    assert [(e["level"], e["final"]) for e in failed] == [("info", False), ("error", True)]
    final = failed[1]
    assert final["error_type"] == "KeyError"
    assert "Traceback (most recent call last)" in final["exc"]
    assert "no mailbox for x@y" in final["exc"]
    assert "explode" in final["exc"]
    # Once: no other logger repeats it.
    mentions = [line for line in done.stdout.splitlines() if "no mailbox for x@y" in line]
    assert len(mentions) == 2  # the retry's info line and the final error


def test_a_non_callable_handler_is_one_line(redis_url: str) -> None:
    done = run_worker(redis_url, "tests.tools.typed_settings:not_callable")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "queues['emails']: handler must be callable, got 'send'" in lines[0]


async def test_burst_exits_once_nothing_waits_or_runs(redis_url: str, prefix: str) -> None:
    async with Queue("emails", redis_url, prefix=prefix) as emails:
        later = await emails.add({"to": "later@x"}, delay=3_600_000)
        now = await emails.add({"to": "now@x"})
        done = await asyncio.to_thread(run_worker, redis_url,
                                       "tests.tools.typed_settings:settings", "--burst",
                                       "--prefix", prefix, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert await emails.get_job_state(now.id) == "completed"
        assert await emails.get_job_state(later.id) == "delayed"


async def test_burst_runs_what_is_due_and_leaves_a_retry_due_later(
    redis_url: str, prefix: str
) -> None:
    async with Queue("fails", redis_url, prefix=prefix) as fails, \
            Queue("emails", redis_url, prefix=prefix) as emails:
        retried = await fails.add({"to": "r@x"}, attempts=3, backoff=3_600_000)
        overdue = await emails.add({"to": "due@x"}, delay=1)  # due before the worker starts
        await asyncio.sleep(0.05)
        done = await asyncio.to_thread(run_worker, redis_url,
                                       "tests.tools.typed_settings:entries", "--burst",
                                       "--prefix", prefix, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        await retried.reload()
        assert (await retried.get_state(), retried.attempts_made) == ("delayed", 1)
        assert await emails.get_job_state(overdue.id) == "completed"
