"""The public types say what pyqueue does: mypy accepts right code and rejects wrong code.

Each wrong snippet must fail type checking with the error it is about, so a
signature that silently went back to ``Any`` fails this test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

HEADER = """
from typing import Any
from pydantic import BaseModel
from pyqueue import Job, Queue, Worker

class Email(BaseModel):
    to: str

queue = Queue("emails", model=Email)
plain = Queue("anything")

async def send(job: Job[Email]) -> str:
    return job.data.to
"""

GOOD = """
async def main() -> None:
    await queue.add(Email(to="a@b"))
    await queue.add({"to": "a@b"})
    await plain.add([1, 2, 3])
    worker = Worker(queue, send)
    reveal_type(worker)

    def on_failed(job: Job[Email], exc: BaseException, final: bool) -> None: ...
    worker.on("failed", on_failed)
    worker.on("failed", lambda job, exc: None)
    worker.on("stalled", lambda job_id: None)
    worker.on("drained", lambda: None)
    queue.on("failed", on_failed)
    queue.on("*", lambda ev: print(ev.name, ev.final, ev.job))
    await worker.pause()
    await worker.resume()
    worker.resume()
    await queue.clean(0, "waiting")
    await queue.clean(0, "wait")
    await queue.get_jobs("wait")
"""

BAD = {
    "a payload that is neither the model nor a dict": (
        "async def f() -> None:\n    await queue.add(3)", 'No overload variant of "add"'),
    "a handler for another payload": (
        "async def h(job: Job[int]) -> None: ...\nWorker(queue, h)", 'Argument 2 to "Worker"'),
    "final is a bool": (
        "def f(job: Job[Email], exc: BaseException, final: str) -> None: ...\n"
        "Worker(queue, send).on('failed', f)", "No overload variant"),
    "a misspelt event": (
        "Worker(queue, send).on('complete', lambda job, r: None)", "No overload variant"),
    "a misspelt event on a queue": (
        "queue.on('complete', lambda job, r: None)", "No overload variant"),
    "a queue's job is typed": (
        "def f(job: Job[int]) -> None: ...\nqueue.on('active', f)", "No overload variant"),
    "a misspelt state": (
        "async def f() -> None:\n    await queue.clean(0, 'queued')", 'Argument 2 to "clean"'),
}


def _mypy(tmp_path: Path, body: str) -> tuple[int, str]:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(HEADER) + "\n" + body + "\n")
    out, err, status = api.run(["--strict", "--no-error-summary", "--python-version", "3.11",
                                "--config-file", "", str(path)])
    return status, out + err


def test_right_code_type_checks(tmp_path: Path) -> None:
    status, out = _mypy(tmp_path, GOOD)
    assert 'Revealed type is "pyqueue.worker.Worker[snippet.Email]"' in out, out
    assert status == 0, out
    assert "error:" not in out, out


@pytest.mark.parametrize("case", sorted(BAD))
def test_wrong_code_is_rejected(tmp_path: Path, case: str) -> None:
    body, expected = BAD[case]
    status, out = _mypy(tmp_path, body)
    assert status == 1, out
    assert expected in out, out
