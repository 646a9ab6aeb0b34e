"""Exercise installed wheels as a user would: python wheel_smoke.py

Run by scripts/check_wheels with the interpreter of a fresh venv outside the
repository, from a scratch directory, after the pyqueue-bull and bookwish-jobs wheels
were installed with their extras. Imports only what the wheels installed; asserts that
it is not the repository's code; then, against a private redis-server:
  * ``pyqueue worker --burst`` processes a job and exits;
  * ``pyqueue dashboard`` serves its overview page and the CSS and JS it links;
  * ``python -m bookwish_jobs.worker --demo`` completes one job of each of its 4 queues.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import bookwish_jobs
import pyqueue
from pyqueue import Queue
from pyqueue.embedded import RedisServer, free_port

HERE = Path.cwd()
SETTINGS = '''
from pyqueue.tools.cli_worker import WorkerSettings

async def double(job):
    return job.data["n"] * 2

settings = WorkerSettings(queues={"smoke": double})
'''


def step(text: str) -> None:
    print(f"wheel_smoke: {text}", flush=True)


def check_installed() -> None:
    site = Path(sys.prefix).resolve()
    for module in (pyqueue, bookwish_jobs):
        where = Path(module.__file__ or "").resolve()
        assert site in where.parents, f"{module.__name__} comes from {where}, not the venv"
    step(f"pyqueue {pyqueue.__version__} and bookwish_jobs import from {site}")


async def add_job(url: str) -> str:
    async with Queue("smoke", url) as queue:
        job = await queue.add({"n": 21})
        return job.id


async def result_of(url: str, job_id: str) -> object:
    async with Queue("smoke", url) as queue:
        job = await queue.get_job(job_id)
        assert job is not None, "the job vanished"
        assert await job.is_completed(), f"job {job_id} did not complete"
        return job.return_value


def worker_burst(url: str) -> None:
    (HERE / "smoke_settings.py").write_text(SETTINGS)
    job_id = asyncio.run(add_job(url))
    subprocess.run(
        [str(Path(sys.executable).parent / "pyqueue"), "worker", "smoke_settings:settings",
         "--burst", "--redis-url", url],
        check=True, timeout=120, cwd=HERE, env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    result = asyncio.run(result_of(url, job_id))
    assert result == 42, result
    step("pyqueue worker --burst processed a job (21 * 2 = 42) and exited")


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("content-type", ""), response.read()


def dashboard(url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pyqueue"), "dashboard", "--redis-url", url,
         "--port", str(port)], cwd=HERE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, kind, page = fetch(base + "/")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert status == 200, status
        assert "text/html" in kind, kind
        html = page.decode()
        assets = re.findall(r'(?:href|src)="([^"]+\.(?:css|js))"', html)
        kinds = {a.rsplit(".", 1)[1] for a in assets}
        assert kinds == {"css", "js"}, f"the page links {assets}"
        for asset in assets:
            status, kind, body = fetch(base + asset if asset.startswith("/") else asset)
            assert status == 200, (asset, status)
            assert body, asset
            assert ("css" in kind) if asset.endswith(".css") else ("javascript" in kind), kind
        step(f"pyqueue dashboard served / and {', '.join(assets)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bookwish_demo() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    out = subprocess.run(
        [sys.executable, "-m", "bookwish_jobs.worker", "--demo"],
        check=False, cwd=HERE, env=env, timeout=300, capture_output=True, text=True,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    done = re.findall(r"^  \S+ +completed ", out.stdout, re.M)
    assert len(done) == 4, f"{len(done)} of 4 demo jobs completed:\n{text[-3000:]}"
    assert "all four jobs completed" in out.stdout, text[-3000:]
    step("python -m bookwish_jobs.worker --demo completed its 4 jobs")


def main() -> None:
    check_installed()
    with RedisServer() as server:
        worker_burst(server.url)
        dashboard(server.url)
    bookwish_demo()


if __name__ == "__main__":
    main()
