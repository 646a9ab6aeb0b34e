"""The dashboard over a queue that Node Bull filled and processed, in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tests.interop.bull import NodeBull, single
from tests.tools.dashboard.conftest import Harness


@pytest.fixture
def node(node_available: None, redis_url: str, prefix: str) -> NodeBull:
    return NodeBull("bull", redis_url, prefix=prefix)


def test_pages_show_node_made_jobs(
    node: NodeBull, harness: Harness, page: Page, screenshot: Callable[..., Path]
) -> None:
    books = [{"name": "ok", "data": {"isbn": f"978-{n}", "n": n}} for n in range(3)]
    failing = [{"name": "bad", "data": {"isbn": f"979-{n}"}} for n in range(2)]
    node.add("orders", [*books, *failing])
    done = node.run({
        "queue": "orders", "action": "process", "until": 5, "metrics": {"maxDataPoints": 60},
        "behaviour": {
            "ok": {"log": ["step one", "step two"], "progress": [50], "return": {"sent": True}},
            "bad": {"fail": "card declined"},
        },
    })
    assert single(done, "done")["completed"] == 3
    node.add("orders", [{"name": "ok", "data": {"isbn": "978-x"}, "opts": {"delay": 3_600_000}}])
    waiting = node.add("orders", [{"name": "ok", "data": {"isbn": f"977-{n}"}} for n in range(2)])

    url = harness.serve()
    page.goto(url + "/")
    row = page.locator('tr[data-queue="orders"]')
    shown = {s: row.locator(f'[data-state="{s}"]').inner_text()
             for s in ("waiting", "active", "completed", "failed", "delayed", "paused")}
    assert shown == {"waiting": "2", "active": "0", "completed": "3", "failed": "2",
                     "delayed": "1", "paused": "0"}
    node_counts = node.counts("orders")["counts"]
    assert {k: str(v) for k, v in node_counts.items() if k in shown} == shown
    # Node collected Bull's metrics: the chart reads them.
    expect(page.locator("#throughput-source")).to_have_text("(from metrics)")
    expect(page.locator("#throughput")).to_have_attribute("data-completed-total", "3")

    page.goto(url + "/queue?name=orders&state=waiting")
    assert page.locator("#jobs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.job)"
    ) == list(reversed(waiting))

    page.goto(url + "/job?queue=orders&id=1")
    expect(page.locator("#job-state")).to_have_text("completed")
    assert '"isbn": "978-0"' in page.locator("#job-data").inner_text()
    assert page.locator("#job-logs").inner_text().splitlines() == ["step one", "step two"]
    assert page.locator("#job-progress").inner_text() == "50"
    assert '"sent": true' in page.locator("#job-return").inner_text()
    assert '"attempts": 1' in page.locator("#job-opts").inner_text()
    screenshot(page, "dashboard-node-job", full_page=True)

    page.goto(url + "/job?queue=orders&id=4")
    expect(page.locator("#job-state")).to_have_text("failed")
    assert page.locator("#job-failed-reason").inner_text() == "card declined"
    assert "Error: card declined" in page.locator("#job-stacktrace").inner_text()

    page.goto(url + "/search?queue=orders&data_path=isbn&data_value=979-1")
    assert page.locator("#results tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.job)"
    ) == ["5"]

    # Retrying from the dashboard is what Node sees as a retry.
    page.goto(url + "/job?queue=orders&id=4")
    page.click('#job-actions button[data-op="retry"]')
    expect(page.locator("#job-state")).to_have_text("waiting")
    assert node.get_jobs("orders", ["4"])[0]["state"] == "waiting"
