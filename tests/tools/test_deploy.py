"""deploy/: the Prometheus alert rules (checked and unit-tested with promtool) and the
Grafana dashboard, whose every metric must be one pyqueue exports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.tools.exporter import FinishedEvents, QueueCollector
from pyqueue.tools.metrics import WorkerGauges, WorkerMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "pyqueue-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "pyqueue-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "pyqueue-dashboard.json"
METRIC = re.compile(r"\bpyqueue_[a-z_]+")
HINT = "apt-get install prometheus (scripts/_env.sh: ensure_promtool), or set PYQUEUE_PROMTOOL"


def _promtool() -> str:
    found = shutil.which(os.environ.get("PYQUEUE_PROMTOOL", "promtool"))
    if found is None:
        pytest.fail(f"the alert rules are checked with promtool, which is missing: {HINT}",
                    pytrace=False)
    return found


@pytest.mark.parametrize("argv", [["check", "rules", str(RULES)],
                                  ["test", "rules", str(RULE_TESTS)]])
def test_promtool_accepts_and_tests_the_rules(argv: list[str]) -> None:
    done = subprocess.run([_promtool(), *argv], capture_output=True, text=True, timeout=60,
                          cwd=RULES.parent, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


async def _exported_names(redis_url: str, queue_name: str) -> set[str]:
    """Every sample name the exporter and a worker's /metrics produce, after some work."""
    names: set[str] = set()
    client = aioredis.Redis.from_url(redis_url)
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"n": 1})
        registry = CollectorRegistry()
        metrics = WorkerMetrics(registry)
        gauges = WorkerGauges()
        registry.register(gauges)
        events = FinishedEvents(client, "bull")
        events.start()
        await events.wait_subscribed()
        collector = QueueCollector(client, "bull", [queue_name], events=events)
        registry.register(collector)
        options = WorkerOptions(drain_delay=1, stalled_interval=0, shutdown_grace=2)
        worker = Worker(queue, lambda job: 1, options=options)
        metrics.watch(worker)
        gauges.watch(worker)
        both = asyncio.Event()
        worker.on("completed", lambda job, result: both.set() if job.id == "2" else None)
        async with worker:
            await queue.add({"n": 2})
            await asyncio.wait_for(both.wait(), 20)
            await collector.refresh()
            text = generate_latest(registry).decode()
        await events.close()
        await collector.close()
    await client.aclose()
    for family in text_string_to_metric_families(text):
        # A family with no sample yet (no finding on a healthy queue) still counts.
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def _exprs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["expr"]] if isinstance(value.get("expr"), str) else []
        return found + [e for v in value.values() for e in _exprs(v)]
    if isinstance(value, list):
        return [e for v in value for e in _exprs(v)]
    return []


async def test_rules_and_dashboard_use_only_metrics_pyqueue_exports(
    redis_url: str, queue_name: str
) -> None:
    exported = await _exported_names(redis_url, queue_name)
    dashboard = json.loads(DASHBOARD.read_text())
    used = set(METRIC.findall(RULES.read_text()))
    for expr in _exprs(dashboard["panels"]):
        used.update(METRIC.findall(expr))
    assert used, "no pyqueue metric in the rules or the dashboard?"
    missing = sorted(used - exported)
    assert not missing, f"not exported by pyqueue: {missing}"


def test_the_dashboard_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "pyqueue-queues"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "queue"} <= variables
    for p in dashboard["panels"]:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24, p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
        assert p["targets"], p["title"]
        assert all(t["expr"] for t in p["targets"]), p["title"]
