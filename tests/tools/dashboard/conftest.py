"""Fixtures for the dashboard tests: a served dashboard and a real headless Chromium.

* ``bg``: an asyncio loop in a thread. uvicorn, pyqueue workers and queue calls
  run there, so the (synchronous) Playwright tests can drive the browser while
  the server answers.
* ``prefix``: a fresh Bull prefix per test, so each dashboard sees only its own
  queues on the shared private redis-server.
* ``serve_dashboard(**create_app_options)``: starts uvicorn on a free port and
  returns the base URL.
* ``page``: a Playwright page in a fresh browser context of Debian's
  ``/usr/bin/chromium`` (Playwright's own browser downloads cannot work here).

Screenshots go to ``$PYQUEUE_SCREENSHOTS`` when set (``docs/images`` refreshes
the README's), else to the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.tools.dashboard import create_app

T = TypeVar("T")
CHROMIUM = os.environ.get("PYQUEUE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium chromium-driver"


class BackgroundLoop:
    """An event loop in a daemon thread; ``run`` blocks on a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def bg() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def prefix() -> str:
    return f"dash{uuid.uuid4().hex[:10]}"


class Harness:
    """What a test needs besides the browser: queues, workers and the server, on ``bg``."""

    def __init__(self, bg: BackgroundLoop, redis_url: str, prefix: str) -> None:
        self.bg = bg
        self.redis_url = redis_url
        self.prefix = prefix
        self._queues: dict[str, Queue[Any]] = {}
        self._workers: list[Worker] = []
        self._servers: list[tuple[uvicorn.Server, asyncio.Future[None], Any]] = []

    def queue(self, name: str) -> Queue[Any]:
        if name not in self._queues:
            self._queues[name] = Queue(name, self.redis_url, prefix=self.prefix)
        return self._queues[name]

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.bg.run(coro, timeout)

    def add(self, queue: str, data: Any, **options: Any) -> str:
        return self.run(self.queue(queue).add(data, **options)).id

    def counts(self, queue: str) -> dict[str, int]:
        return self.run(self.queue(queue).get_job_counts())

    def state(self, queue: str, job_id: str) -> str:
        return self.run(self.queue(queue).get_job_state(job_id))

    def start_worker(
        self, queue: str, handler: Callable[[Any], Any], options: WorkerOptions = FAST
    ) -> Worker:
        async def start() -> Worker:
            worker = Worker(queue, handler, redis_url=self.redis_url, prefix=self.prefix,
                            options=options)
            await worker.start()
            return worker

        worker = self.run(start())
        self._workers.append(worker)
        return worker

    def stop_worker(self, worker: Worker) -> None:
        self.run(worker.close())
        self._workers.remove(worker)

    def wait_counts(self, queue: str, timeout: float = 15.0, **want: int) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts(queue)
            if all(counts[k] == v for k, v in want.items()):
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"counts of {queue}: want {want}, have {counts}")
            time.sleep(0.05)

    def serve(self, app: Any = None, **options: Any) -> str:
        """Serve ``app`` (default: ``create_app`` with ``options``); return its base URL."""
        if app is None:
            app = create_app(self.redis_url, self.prefix, **options)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_level="warning")
        server = uvicorn.Server(config)

        async def start() -> asyncio.Future[None]:
            task = asyncio.ensure_future(server.serve(sockets=[sock]))
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            return task

        self._servers.append((server, self.run(start()), app))
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for server, task, app in self._servers:
            server.should_exit = True
            self.run(asyncio.wait_for(task, 10))
            if hasattr(app, "aclose"):
                self.run(app.aclose())
        for worker in self._workers:
            self.run(worker.close())
        for queue in self._queues.values():
            self.run(queue.close())


@pytest.fixture
def harness(bg: BackgroundLoop, redis_url: str, prefix: str) -> Iterator[Harness]:
    h = Harness(bg, redis_url, prefix)
    try:
        yield h
    finally:
        h.close()


# Module scope, not session: sync Playwright keeps an event loop marked running in this
# thread while it is started, which the async tests of other modules cannot share.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"the dashboard's browser tests need Chromium at {CHROMIUM}: {INSTALL_HINT}",
                    pytrace=False)
    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary user-data dir.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the dashboard's pages: {errors}"


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[..., Path]:
    target = Path(os.environ.get("PYQUEUE_SCREENSHOTS") or tmp_path)

    def shoot(page: Page, name: str, *, full_page: bool = False) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return shoot
