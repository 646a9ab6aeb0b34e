"""Instructions per processed job in pyqueue's worker, counted by valgrind (callgrind).

Wall-clock rates on a shared 2-core VM move by ±30 % between runs, and CPU time per
job moves with them; the number of instructions the worker process executes per
job does not (callgrind counts them in a simulated CPU, whatever else runs). This
is the figure to compare two commits of the engine by:

    .venv/bin/python benchmarks/instructions.py                     # this checkout
    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/instructions.py --base-src /tmp/base/src

For each concurrency, a worker process drains N1 and then N2 prefilled jobs
``{"i": n}`` under callgrind; instructions per job = (I(N2) - I(N1)) / (N2 - N1),
so imports and start-up cancel out. Only user-space instructions of the worker
process are counted: not the kernel's, not Redis's. ``--floor`` adds the same count
for a loop that does nothing but one EVALSHA round trip per job on pyqueue's
connection class: what asyncio, the socket and the reply parser cost by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

# The worker run under callgrind: drain n jobs at concurrency c, then exit.
_WORKER = """
import asyncio, sys
from pyqueue import Worker
url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    done = asyncio.Event()
    count = 0
    async def handler(job):
        return None
    def completed(job, result):
        nonlocal count
        count += 1
        if count == n:
            done.set()
    worker = Worker("bench", handler, redis_url=url, concurrency=c)
    worker.on("completed", completed)
    await worker.start()
    await done.wait()
    await worker.close()
asyncio.run(main())
"""


# The floor: the same event loop, connection and reply parser doing nothing but one
# EVALSHA round trip per "job" (a script returning a job-shaped reply).
_FLOOR = """
import asyncio, sys
from pyqueue._protocol.fastconn import FastConnection
url, n = sys.argv[1], int(sys.argv[2])
SCRIPT = "return {{'name', '__default__', 'data', ARGV[1], 'opts', '{}'}, ARGV[1]}"
async def main():
    conn = FastConnection(url)
    sha = await conn.execute("SCRIPT", "LOAD", SCRIPT)
    for i in range(n):
        await conn.execute("EVALSHA", sha, 0, str(i))
    conn.close()
asyncio.run(main())
"""


async def _fill(url: str, n: int) -> None:
    from pyqueue import BulkJob, Queue

    async with Queue("bench", redis_url=url) as q:
        await q.client.flushall()
        for start in range(0, n, 1000):
            await q.add_bulk([BulkJob({"i": i}) for i in range(start, min(n, start + 1000))])


def _instructions(url: str, n: int, concurrency: int, src: Path | None) -> int:
    if concurrency:
        asyncio.run(_fill(url, n))
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", _WORKER if concurrency else _FLOOR, url, str(n), str(concurrency)],
        capture_output=True, text=True, env=env, check=False, timeout=1800,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def per_job(url: str, concurrency: int, n1: int, n2: int, src: Path | None) -> float:
    return (_instructions(url, n2, concurrency, src) - _instructions(url, n1, concurrency, src)) / (
        n2 - n1
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="benchmarks/instructions.py", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--concurrency", default="1,50", help="comma list (default 1,50)")
    p.add_argument("--n1", type=int, default=500)
    p.add_argument("--n2", type=int, default=2500)
    p.add_argument("--base-src", type=Path, default=None,
                   help="src/ of another checkout, counted too (a `git worktree add` of a commit)")
    p.add_argument("--floor", action="store_true",
                   help="also count a bare EVALSHA round-trip loop on the same connection class")
    a = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    from pyqueue.embedded import RedisServer

    levels = [int(x) for x in a.concurrency.split(",")]
    targets: list[tuple[str, Path | None]] = [("this checkout", ROOT / "src")]
    if a.base_src is not None:
        targets.append((f"base ({a.base_src})", a.base_src.resolve()))
    print("| pyqueue | " + " | ".join(f"c={c}" for c in levels) + " |")
    print("|---|" + "---:|" * len(levels))
    with RedisServer() as srv:
        for label, src in targets:
            cells = [f"{per_job(srv.url, c, a.n1, a.n2, src):,.0f}" for c in levels]
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
        if a.floor:
            floor = per_job(srv.url, 0, a.n1, a.n2, None)
            print(f"| floor: one EVALSHA round trip, nothing else | {floor:,.0f} (any c) |")
    print("\ninstructions per processed job (callgrind, worker process, user space)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
