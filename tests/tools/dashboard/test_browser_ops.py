"""The dashboard in an incident, in headless Chromium: a stuck queue flagged with its cause,
workers by name, durations, acting on a search, readable lists at any width, dark mode."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.interop.bull import NodeBull
from tests.tools.dashboard.conftest import Harness

from pyqueue import WorkerOptions

Shoot = Callable[..., Path]
NODE_SETTINGS = {"stalledInterval": 2000, "lockDuration": 3000, "drainDelay": 1}


@pytest.fixture
def node(node_available: None, redis_url: str, prefix: str) -> NodeBull:
    return NodeBull("bull", redis_url, prefix=prefix)


def _wait(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.1)
    return value


def test_a_stuck_queue_is_flagged_with_its_cause_and_the_workers_change(
    node: NodeBull, harness: Harness, page: Page, screenshot: Shoot
) -> None:
    node.add("orders", [{"name": "ship", "data": {"order": n}} for n in range(5)])
    url = harness.serve()
    with node.start({"queue": "orders", "action": "process", "concurrency": 3,
                     "behaviour": {"*": {"hang": True}}, "settings": NODE_SETTINGS,
                     "timeoutMs": 120_000}) as proc:
        _wait(lambda: len(proc.named("processing")) == 3)
        page.goto(url + "/queue?name=orders&state=active")
        expect(page.locator("#workers-list tr[data-kind=node]")).to_have_count(1)
        expect(page.locator("#all-clear")).to_be_visible()
        # A Node worker is the only one: the jobs its lock token holds are shown as its.
        held = page.locator("#workers-list tr[data-kind=node] td.ids").inner_text()
        assert sorted(held.split(", ")) == ["1", "2", "3"]
        proc.kill()
    # The page follows by itself: the worker leaves the list, the cause shows.
    expect(page.locator("#no-workers")).to_be_visible(timeout=15_000)
    expect(page.locator('#findings [data-flag="no-workers"]')).to_be_visible()
    stuck = page.locator('#findings [data-flag="stuck-active"]')
    expect(stuck).to_contain_text("3 active job(s) no live worker will finish")
    screenshot(page, "dashboard-stuck-queue", full_page=True)
    page.goto(url + "/")
    row = page.locator('tr[data-queue="orders"]')
    expect(row.locator('[data-flag="no-workers"]')).to_be_visible()
    expect(row.locator('[data-flag="stuck-active"]')).to_be_visible()
    expect(page.locator('#stuck [data-queue="orders"][data-flag="no-workers"]')).to_contain_text(
        "no live worker, with 3 active and 2 waiting jobs")
    assert row.locator('[data-field="workers"]').inner_text() == "0"
    # Once the dead worker's locks lapse (3 s), the cause says so.
    page.goto(url + "/queue?name=orders&state=active")
    expect(page.locator('#findings [data-flag="stuck-active"]')).to_contain_text(
        "3 have no lock", timeout=15_000)
    fix = page.locator('#findings [data-flag="no-workers"] .fix')
    expect(fix).to_contain_text("start a worker for this queue")

    # A pyqueue worker comes: listed by host and pid, and the queue moves again.
    options = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=500,
                            lock_duration=3000, shutdown_grace=2)
    worker = harness.start_worker("orders", lambda job: "shipped", options)
    me = f"{socket.gethostname()}:{os.getpid()}"
    expect(page.locator(f'#workers-list tr[data-kind=pyqueue][data-worker="{me}"]')).to_be_visible(
        timeout=15_000)
    harness.wait_counts("orders", completed=5, timeout=30)
    page.goto(url + "/job?queue=orders&id=1")
    expect(page.locator("#job-worker")).to_contain_text(me)
    expect(page.locator("#job-waited")).not_to_have_text("—")
    expect(page.locator("#job-ran")).to_contain_text("ms")
    harness.stop_worker(worker)


def _row_heights(page: Page) -> list[float]:
    heights: list[float] = page.locator("#jobs tbody tr").evaluate_all(
        "rows => rows.map(r => r.getBoundingClientRect().height)")
    return heights


@pytest.mark.parametrize("width", [1280, 800, 390])
def test_job_lists_keep_one_line_per_row_at_any_width(
    harness: Harness, chromium: Browser, width: int, screenshot: Shoot
) -> None:
    words = "lorem-ipsum-dolor-sit-amet-" * 40
    for n in range(20):
        harness.add("wide", {"n": n, "note": words, "items": [{"sku": f"s{i}"} for i in range(20)]},
                    name="a-rather-long-job-name")
    url = harness.serve()
    context = chromium.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(url + "/queue?name=wide&state=waiting")
        heights = _row_heights(page)
        assert len(heights) == 20
        # One line of text (and the row's buttons): the Data column never wraps letter
        # by letter, whatever the width; the table scrolls sideways instead.
        assert max(heights) < 48, heights
        assert page.evaluate("document.documentElement.scrollHeight") < 2000
        data = page.locator("#jobs tbody tr td.data code").first
        assert data.get_attribute("title", timeout=5000)
        screenshot(page, f"dashboard-list-{width}")
    finally:
        context.close()


def _luminance(css: str) -> float:
    parts = [float(p) for p in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
    return (0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]) / 255


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_theme_follows_the_browser(
    harness: Harness, chromium: Browser, scheme: str, screenshot: Shoot
) -> None:
    harness.add("themed", {"n": 1})
    url = harness.serve()
    context = chromium.new_context(color_scheme=scheme)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(url + "/queue?name=themed")
        colours = page.evaluate("""() => {
            const style = el => getComputedStyle(el);
            return {
              bg: style(document.body).backgroundColor, fg: style(document.body).color,
              table: style(document.querySelector('#jobs')).backgroundColor,
              cell: style(document.querySelector('#jobs td')).color,
            };
        }""")
        bg, fg = _luminance(colours["bg"]), _luminance(colours["fg"])
        table, cell = _luminance(colours["table"]), _luminance(colours["cell"])
        dark = scheme == "dark"
        # Dark: dark backgrounds under light text; light: the reverse.
        assert (max(bg, table) < 0.2) if dark else (min(bg, table) > 0.9), colours
        assert (min(fg, cell) > 0.7) if dark else (max(fg, cell) < 0.2), colours
        screenshot(page, f"dashboard-{scheme}")
    finally:
        context.close()


def test_acting_on_a_search_counts_first_and_shows_states(
    harness: Harness, page: Page
) -> None:
    def fail_some(job: Any) -> str:
        if job.data["region"] == "eu":
            raise RuntimeError("upstream timeout")
        return "ok"

    worker = harness.start_worker("sync", fail_some)
    for n in range(6):
        harness.add("sync", {"n": n, "region": "eu" if n % 2 else "us"})
    harness.wait_counts("sync", completed=3, failed=3)
    harness.stop_worker(worker)
    url = harness.serve()
    page.goto(url + "/search?queue=sync&data_path=region&data_value=eu")
    states = page.locator("#results tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.state)")
    assert states == ["failed"] * 3
    expect(page.locator("#results th").nth(2)).to_have_text("State")
    page.goto(url + "/search?queue=sync&text=us")
    assert set(page.locator("#results tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.state)")) == {"completed"}
    page.goto(url + "/search?queue=sync&failed_reason=timeout")
    page.click('#search-actions button[data-op="search_retry"]')
    expect(page.locator("#confirm-what")).to_contain_text("retry the 3 job(s)")
    assert harness.counts("sync")["failed"] == 3
    page.click("#confirm-yes")
    expect(page.locator("#flash")).to_have_text("Retried 3 of 3 matching job(s) of sync.")
    assert harness.counts("sync")["waiting"] == 3
    page.goto(url + "/audit")
    expect(page.locator("#audit tbody tr")).to_have_count(1)
    expect(page.locator("#audit tbody tr").first).to_contain_text("search_retry")
