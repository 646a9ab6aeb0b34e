"""``python -m bookwish_jobs.worker`` as a real process: --demo, and SIGTERM mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bookwish_jobs import names
from bookwish_jobs.db import Database
from bookwish_jobs.fakes import FakeExpo
from bookwish_jobs.own_models import NotificationDelivery
from bookwish_jobs.producers import SyncProducers
from pyqueue import SyncQueue

from .helpers import add_user


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_URL", "DATABASE_URL", "SMTP_URL", "EXPO_", "SQUARE_",
                                "BOOKWISH_", "DIGEST_TZ", "OPS_DIGEST", "ALERT_EMAIL"))}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


@pytest.mark.timeout(90)
def test_demo_runs_all_four_jobs_on_embedded_defaults(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bookwish_jobs.worker", "--demo"],
        cwd=tmp_path, env=env_for(tmp_path), capture_output=True, text=True, timeout=80,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "all four jobs completed" in proc.stdout
    for queue in names.QUEUE_NAMES:
        assert any(line.split()[:2] == [queue, "completed"] for line in proc.stdout.splitlines())
    logged = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    events = [e["event"] for e in logged]
    assert "square.sync_completed" in events
    assert "redis.embedded" in events  # no REDIS_URL: a private redis-server
    # As `pyqueue worker` does: uvloop when installed (the test install has it).
    assert [e["loop"] for e in logged if e["event"] == "worker.started"] == ["uvloop"]
    assert len(list((tmp_path / "var" / "outbox").glob("*.eml"))) == 3
    assert (tmp_path / "var" / "bookwish.db").exists()


def _start_worker(tmp_path: Path, redis_url: str, expo: FakeExpo, grace: str) -> tuple[
        subprocess.Popen[str], Database]:
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(db_url)
    db.create_schema()
    add_user(db, "u1", "u1@example.com", ["tokA"])
    env = env_for(tmp_path, REDIS_URL=redis_url, DATABASE_URL=db_url, EXPO_PUSH_URL=expo.url,
                  BOOKWISH_QUEUES="notifications=1", SHUTDOWN_GRACE=grace)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bookwish_jobs.worker", "--no-schedule"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return proc, db


def _sigterm_mid_job(proc: subprocess.Popen[str], expo: FakeExpo, redis_url: str) -> str:
    producers = SyncProducers(redis_url)
    try:
        job_id = producers.queue_notification(notification_id="n1", user_id="u1",
                                              type="wishlist_match", title="t", body="b")
    finally:
        producers.close()
    deadline = time.monotonic() + 20
    while not expo.requests:  # the job is now active, waiting on the push service
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the worker never started the job"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr[-3000:]
    assert '"event": "worker.stopped"' in stderr
    return job_id


@pytest.mark.timeout(60)
def test_sigterm_lets_the_active_job_finish(tmp_path: Path, bw_redis_url: str) -> None:
    with FakeExpo() as expo:
        expo.delay = 1.5
        proc, db = _start_worker(tmp_path, bw_redis_url, expo, grace="20")
        _sigterm_mid_job(proc, expo, bw_redis_url)
    with SyncQueue(names.NOTIFICATIONS, bw_redis_url) as queue:
        counts = queue.get_job_counts()
    assert counts["active"] == counts["waiting"] == counts["failed"] == 0
    with db.transaction() as s:
        assert list(s.scalars(select(NotificationDelivery.target))) == ["tokA"]
    db.dispose()


@pytest.mark.timeout(60)
def test_sigterm_past_the_grace_period_requeues_the_job(
    tmp_path: Path, bw_redis_url: str
) -> None:
    with FakeExpo() as expo:
        expo.delay = 3.0
        proc, db = _start_worker(tmp_path, bw_redis_url, expo, grace="0.3")
        job_id = _sigterm_mid_job(proc, expo, bw_redis_url)
    with SyncQueue(names.NOTIFICATIONS, bw_redis_url) as queue:
        assert queue.get_job_state(job_id) == "waiting"  # back in the queue, not lost
        job = queue.get_job(job_id)
        assert job is not None
        assert job.attempts_made == 0
    db.dispose()
