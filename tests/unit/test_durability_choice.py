"""Durability's choice of WAIT or WAITAOF, from the server's INFO (no server needed).

The machine's Redis is 7.0 (no WAITAOF); the branch for 7.2+ is covered here from
INFO text as 7.2 writes it. tests/scale/test_durability.py runs the WAIT branch on
real servers.
"""

from __future__ import annotations

import pytest

from pyqueue import Durability
from pyqueue._protocol.durability import ServerFacts, info_fields, parse_version, plan
from pyqueue.errors import InvalidOptionsError

INFO_72 = (
    b"# Server\r\nredis_version:7.2.4\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"
)
INFO_AOF = b"# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n"


def test_info_is_read_as_fields() -> None:
    assert info_fields(INFO_72)["redis_version"] == "7.2.4"
    assert info_fields(INFO_AOF)["aof_enabled"] == "1"
    assert "# Server" not in info_fields(INFO_72)


@pytest.mark.parametrize(("text", "version"), [
    ("7.2.4", (7, 2, 4)), ("7.0.15", (7, 0, 15)), ("8.0-m01", (8, 0)), ("", (0,)),
    ("255.255.255", (255, 255, 255)),
])
def test_versions(text: str, version: tuple[int, ...]) -> None:
    assert parse_version(text) == version


@pytest.mark.parametrize(("version", "aof_enabled", "aof", "command"), [
    ((7, 0, 15), True, None, ("WAIT", 1, 500)),  # no WAITAOF before 7.2
    ((7, 2, 0), True, None, ("WAITAOF", 1, 1, 500)),
    ((8, 0), True, None, ("WAITAOF", 1, 1, 500)),
    ((7, 2, 4), False, None, ("WAIT", 1, 500)),  # no AOF: WAITAOF could never confirm
    ((7, 2, 4), True, False, ("WAIT", 1, 500)),
    ((7, 2, 4), True, True, ("WAITAOF", 1, 1, 500)),
])
def test_wait_or_waitaof(
    version: tuple[int, ...], aof_enabled: bool, aof: bool | None, command: tuple[object, ...]
) -> None:
    assert plan(1, 500, aof, ServerFacts(version, aof_enabled)).command == command


def test_replies_are_read_per_command() -> None:
    wait = plan(2, 100, None, ServerFacts((7, 0), False))
    assert wait.confirmed(2) == (2, True)
    waitaof = plan(2, 100, None, ServerFacts((7, 2), True))
    assert waitaof.confirmed([1, 1]) == (1, True)
    assert waitaof.confirmed([0, 2]) == (2, False)  # replicas fsynced, the master did not


def test_required_waitaof_names_what_is_missing() -> None:
    too_old = r"needs Redis >= 7\.2, but the server is 7\.0\.15"
    with pytest.raises(InvalidOptionsError, match=too_old):
        plan(1, 100, True, ServerFacts((7, 0, 15), True))
    with pytest.raises(InvalidOptionsError, match="appendonly yes"):
        plan(1, 100, True, ServerFacts((7, 2, 4), False))


def test_aof_option_is_checked() -> None:
    assert Durability(aof=True).aof is True
    with pytest.raises(InvalidOptionsError, match=r"durability\.aof"):
        Durability(aof="yes")  # type: ignore[arg-type]
