"""``python -m pyqueue.tools.dashboard``: serve the dashboard (as ``pyqueue dashboard`` does).

The tokens and the basic-auth password are read from the environment
(``PYQUEUE_DASHBOARD_TOKEN``, ``PYQUEUE_DASHBOARD_VIEWER_TOKEN``,
``PYQUEUE_DASHBOARD_BASIC_AUTH=user:password``), so they do not show in the
process list.
"""

from __future__ import annotations

import argparse
import os
import sys

from pyqueue.tools.dashboard.server import DEFAULT_HOST, DEFAULT_PORT, serve


def parse_basic_auth(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError("PYQUEUE_DASHBOARD_BASIC_AUTH: must be user:password")
    return user, password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyqueue.tools.dashboard",
                                     description="Serve the pyqueue web dashboard.")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--prefix", default="bull", help="Bull key prefix (default bull)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to bind; other than localhost needs auth")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--queue", action="append", dest="queues", metavar="NAME",
                        help="show only these queues (repeatable; default: scan the prefix)")
    parser.add_argument("--read-only", action="store_true", help="hide every action")
    parser.add_argument("--allowed-host", action="append", dest="allowed_hosts", metavar="NAME",
                        help="a Host name to answer to (repeatable; default: the loopback "
                             "names without auth, any with auth)")
    parser.add_argument("--mask", action="append", dest="masks", default=[], metavar="PATH",
                        help="a JSON path hidden from read-only viewers (repeatable)")
    parser.add_argument("--audit-log", metavar="FILE",
                        help="append the audit trail (JSON lines) to this file")
    args = parser.parse_args(argv)
    try:
        basic = os.environ.get("PYQUEUE_DASHBOARD_BASIC_AUTH")
        serve(
            redis_url=args.redis_url, prefix=args.prefix, host=args.host, port=args.port,
            token=os.environ.get("PYQUEUE_DASHBOARD_TOKEN") or None,
            basic_auth=parse_basic_auth(basic) if basic else None,
            read_only=args.read_only, queues=args.queues,
            viewer_token=os.environ.get("PYQUEUE_DASHBOARD_VIEWER_TOKEN") or None,
            allowed_hosts=args.allowed_hosts, mask=args.masks, audit_log=args.audit_log,
        )
    except ValueError as exc:
        print(f"pyqueue dashboard: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
