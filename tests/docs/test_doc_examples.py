"""Every Python block of the README and of docs/ runs, as written, against a real Redis.

Each chain (a block and the ``test="continue"`` blocks after it, see ``blocks.py``) is
written to a file and run as ``python -W error example.py`` in a fresh process, in an
empty folder, with ``REDIS_URL`` pointing at a private redis-server that is flushed
before each chain. ``test="pytest"`` chains run under ``python -m pytest``. Every chain,
skipped ones included, must also compile and pass ruff's pyflakes rules (undefined
names, unused imports), so a block that is not run still cannot name what it never
imported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests.docs.blocks import ROOT, BlockError, Chain, chains, documents

from pyqueue.embedded import RedisServer

# Generous: several blocks start workers, and the machine is shared.
RUN_TIMEOUT = 50


def _all_chains() -> list[Chain]:
    found: list[Chain] = []
    for path in documents():
        try:
            found.extend(chains(path))
        except BlockError:
            continue  # reported by test_every_fence_follows_the_conventions
    return found


CHAINS = _all_chains()
RUNNABLE = [c for c in CHAINS if c.mode != "skip"]


@pytest.fixture(scope="module")
def docs_redis() -> Iterator[str]:
    """A redis-server of this module's own, so flushing it disturbs no other test."""
    with RedisServer() as server:
        yield server.url


def _explain(chain: Chain, output: str) -> str:
    """Point traceback lines at the Markdown line they came from."""
    return re.sub(
        r'File "[^"]*example\.py", line (\d+)',
        lambda m: f"{m.group(0)} [{chain.line_of(int(m.group(1)))}]",
        output,
    )


def test_every_fence_follows_the_conventions() -> None:
    problems = []
    for path in documents():
        try:
            chains(path)
        except BlockError as exc:
            problems.append(str(exc))
    assert problems == []


def test_there_are_examples_to_run() -> None:
    # A parser that silently found nothing would make every other test here vacuous.
    assert len(RUNNABLE) >= 20, [c.where for c in CHAINS]


@pytest.mark.parametrize("chain", CHAINS, ids=[c.where for c in CHAINS])
def test_block_compiles_and_names_only_what_it_defines(chain: Chain, tmp_path: Path) -> None:
    script = chain.script()
    compile(script, chain.where, "exec")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "F",
         "--output-format", "concise", "--stdin-filename", "example.py", "-"],
        input=script, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        cwd=tmp_path,
    )
    report = re.sub(r"example\.py:(\d+)", lambda m: chain.line_of(int(m.group(1))), done.stdout)
    assert done.returncode == 0, report + done.stderr


@pytest.mark.parametrize("chain", RUNNABLE, ids=[c.where for c in RUNNABLE])
def test_block_runs(chain: Chain, docs_redis: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(docs_redis)
    try:
        client.flushall()
    finally:
        client.close()
    name = "test_example.py" if chain.mode == "pytest" else "example.py"
    (tmp_path / name).write_text(chain.script(), encoding="utf-8")
    if chain.mode == "pytest":
        # The configuration the testing guide tells readers to use, so it is tested too.
        shutil.copy(ROOT / "examples" / "pytest.ini", tmp_path / "pytest.ini")
        command = [sys.executable, "-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   name]
    else:
        command = [sys.executable, "-W", "error", name]
    env = {**os.environ, "REDIS_URL": docs_redis, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)
    output = _explain(chain, done.stdout + done.stderr)
    print(f"--- {chain.where}\n{output}")  # shown with -s
    assert done.returncode == 0, f"{chain.where} failed:\n{output}"
    # An exception swallowed at exit (an unclosed client, a task destroyed while
    # pending) still means the example leaks what a reader would copy.
    assert "Exception ignored" not in done.stderr, output
    assert "Task was destroyed" not in done.stderr, output

