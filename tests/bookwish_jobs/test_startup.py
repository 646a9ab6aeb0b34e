"""Start-up against an unreachable Redis or database: one line naming which, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookwish_jobs.worker import main
from pyqueue.embedded import free_port


@pytest.fixture(autouse=True)
def quiet_main(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the root logger off capsys's stream, which closes after the test.
    monkeypatch.setattr("bookwish_jobs.worker.logs.configure", lambda: None)


def test_unreachable_redis_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    code = main(["--redis-url", f"redis://:hunter2@127.0.0.1:{port}/0",
                 "--database-url", f"sqlite:///{tmp_path / 'b.db'}", "--no-schedule"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("bookwish_jobs: cannot reach Redis at REDIS_URL "
                          f"(redis://127.0.0.1:{port}/0): ")
    assert "hunter2" not in err
    assert "Traceback" not in err


def test_unreachable_database_is_one_line_and_exit_2(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    code = main(["--redis-url", redis_url, "--no-schedule",
                 "--database-url", f"postgresql://postgres:hunter2@127.0.0.1:{port}/test"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("bookwish_jobs: cannot reach the database at DATABASE_URL "
                          f"(postgresql://127.0.0.1:{port}/test): ")
    assert "hunter2" not in err
    assert "Traceback" not in err


def test_an_unknown_event_loop_is_one_line_and_exit_2(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYQUEUE_LOOP", "tokio")
    code = main(["--redis-url", redis_url, "--no-schedule",
                 "--database-url", f"sqlite:///{tmp_path / 'b.db'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("bookwish_jobs: $PYQUEUE_LOOP is 'tokio': it must be auto, asyncio or "
                   "uvloop\n")
