"""pyqueue.loops: which event loop pyqueue's own entry points run on."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from pyqueue import loops


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    assert loops.loop_factory() is uvloop.new_event_loop
    assert loops.run(_loop_module()).startswith("uvloop")
    assert loops.loop_name() == "uvloop"


def test_asyncio_is_asyncios_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    assert loops.loop_factory("asyncio") is None
    assert loops.run(_loop_module(), loop="asyncio").startswith("asyncio")
    assert loops.loop_name("asyncio") == "asyncio"


def test_the_environment_chooses_when_the_caller_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(loops.LOOP_ENV, "asyncio")
    assert loops.run(_loop_module()).startswith("asyncio")
    # The caller's own choice wins over the environment.
    assert loops.run(_loop_module(), loop="uvloop").startswith("uvloop")


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert loops.loop_factory() is None
    assert loops.run(_loop_module()).startswith("asyncio")
    with pytest.raises(RuntimeError, match=r"pip install 'pyqueue-bull\[uvloop\]'"):
        loops.loop_factory("uvloop")


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_an_unknown_loop_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    if source == "environment":
        monkeypatch.setenv(loops.LOOP_ENV, "tokio")
        match = r"PYQUEUE_LOOP.*'tokio'.*auto, asyncio or uvloop"
        choice = None
    else:
        match = r"loop.*'tokio'.*auto, asyncio or uvloop"
        choice = "tokio"
    with pytest.raises(ValueError, match=match):
        loops.loop_factory(choice)  # type: ignore[arg-type]


def test_run_closes_its_loop_and_returns_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        seen.append(asyncio.get_running_loop())
        return 7

    assert loops.run(main()) == 7
    assert seen[0].is_closed()
