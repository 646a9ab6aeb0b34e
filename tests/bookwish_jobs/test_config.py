"""Settings from environment and flags, with errors that name the bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

import bookwish_jobs.columns
from bookwish_jobs.columns import BY_KEY, OPEN_COLUMNS, ColumnSettings
from bookwish_jobs.config import ConfigError, SmtpSettings, load_settings
from bookwish_jobs.worker import parse_args


def test_embedded_defaults() -> None:
    s = load_settings(parse_args([]), env={})
    assert s.redis_url is None
    assert s.database_url == "sqlite:///var/bookwish.db"
    assert s.smtp.outbox == Path("var/outbox")
    assert s.expo_push_url is None
    assert s.digest_tz is None
    assert set(s.queues) == {"notifications", "square-sync", "reservation-cleanup",
                             "order-digest"}


def test_flags_override_environment() -> None:
    env = {"REDIS_URL": "redis://env:6379/0", "DIGEST_TZ": "Europe/Paris",
           "BOOKWISH_QUEUES": "notifications=3", "SMTP_URL": "smtps://me%40x:p%3Ass@mail:2465"}
    s = load_settings(parse_args(["--redis-url", "redis://flag:6379/1", "--queues",
                                  "square-sync=2,order-digest"]), env=env)
    assert s.redis_url == "redis://flag:6379/1"
    assert s.digest_tz == "Europe/Paris"
    assert s.queues == {"square-sync": 2, "order-digest": 1}
    assert (s.smtp.host, s.smtp.port, s.smtp.tls) == ("mail", 2465, "implicit")
    assert (s.smtp.username, s.smtp.password) == ("me@x", "p:ss")
    assert "p:ss" not in repr(s)


@pytest.mark.parametrize(("env", "needle"), [
    ({"REDIS_URL": "http://x"}, "REDIS_URL"),
    ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
    ({"DIGEST_TZ": "Mars/Olympus"}, "Mars/Olympus"),
    ({"BOOKWISH_QUEUES": "emails=2"}, "'emails'"),
    ({"BOOKWISH_QUEUES": "notifications=zero"}, "'zero'"),
    ({"BOOKWISH_QUEUES": "notifications=0"}, "concurrency"),
    ({"SMTP_URL": "imap://host"}, "SMTP_URL"),
    ({"SMTP_URL": "smtp://host?starttls=maybe"}, "maybe"),
    ({"OPS_DIGEST_EMAIL": "nobody"}, "OPS_DIGEST_EMAIL"),
    ({"SHUTDOWN_GRACE": "-1"}, "SHUTDOWN_GRACE"),
])
def test_bad_values_are_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as err:
        load_settings(parse_args([]), env=env)
    assert needle in str(err.value)


def test_smtp_url_forms() -> None:
    plain = SmtpSettings.parse("smtp://mail.example:587", Path("o"))
    assert (plain.port, plain.tls, plain.username) == (587, "starttls", None)
    off = SmtpSettings.parse("smtp://mail.example?starttls=off", Path("o"))
    assert (off.port, off.tls) == (25, "none")
    req = SmtpSettings.parse("smtp://u:p@mail.example?starttls=require&verify=off", Path("o"))
    assert (req.tls, req.verify, req.username) == ("starttls-required", False, "u")
    assert SmtpSettings.parse("file:///tmp/box", Path("o")).outbox == Path("/tmp/box")


def test_cli_reports_bad_config(capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bookwish_jobs.worker import main

    # Keep the root logger off capsys's stream, which closes after this test.
    monkeypatch.setattr("bookwish_jobs.worker.logs.configure", lambda: None)
    monkeypatch.setenv("DIGEST_TZ", "Nowhere/Land")
    assert main([]) == 2
    assert "DIGEST_TZ" in capsys.readouterr().err


def test_open_columns_from_environment_and_flags() -> None:
    s = load_settings(parse_args([]), env={})
    assert s.columns == ColumnSettings()
    assert s.columns.name(BY_KEY["square_item_id"]) == "squareCatalogObjectId"
    env = {"SQUARE_ITEM_ID_COLUMN": "squareItemId", "DIGEST_PROCESSED_AT_COLUMN": "sentAt"}
    s = load_settings(parse_args(["--square-item-id-column", "squareVariationId",
                                  "--updated-at-column", "modifiedAt"]), env=env)
    assert s.columns == ColumnSettings(square_item_id="squareVariationId",
                                       digest_processed_at="sentAt", updated_at="modifiedAt")
    assert s.columns.name(BY_KEY["store_name"]) == "name"  # unset: the default


@pytest.mark.parametrize("value", [" title", "x" * 64, "a\x00b"])
def test_a_bad_column_name_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match="ORDER_ITEM_TITLE_COLUMN"):
        load_settings(parse_args([]), env={"ORDER_ITEM_TITLE_COLUMN": value})


def test_every_open_column_has_a_flag_and_a_documented_default() -> None:
    flags = {c.flag for c in OPEN_COLUMNS}
    assert len(flags) == len(OPEN_COLUMNS) == 7
    documented = Path(bookwish_jobs.columns.__file__).read_text()
    for column in OPEN_COLUMNS:
        assert column.env in documented
        assert column.default in documented
