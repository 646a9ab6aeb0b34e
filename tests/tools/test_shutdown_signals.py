"""``shutdown_signals()``: what ``pyqueue worker``, bookwish_jobs and the examples share.

A real process gets real signals: the first sets the event (graceful close), a
second exits at once with status 130 while the close is still going on.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import asyncio, sys
    from pyqueue.tools.cli_worker import shutdown_signals

    async def main() -> None:
        async with shutdown_signals() as stop:
            print("ready", flush=True)
            await stop.wait()
            print("closing", flush=True)
            if sys.argv[1] == "slow":
                await asyncio.sleep(60)  # a close that outlasts the patience of the operator
        print("handlers removed", flush=True)

    asyncio.run(main())
""")


def _start(mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_first_signal_closes_gracefully() -> None:
    proc = _start("fast")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.split() == ["closing", "handlers", "removed"]


def test_second_signal_exits_at_once_with_130() -> None:
    proc = _start("slow")
    assert proc.stdout is not None
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline().strip() == "closing"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "handlers removed" not in out
