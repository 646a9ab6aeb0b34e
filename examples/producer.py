"""Example producer using the sync facade: queue jobs from plain (non-async) code.

    REDIS_URL=redis://127.0.0.1:6379/0 python examples/producer.py
"""

from __future__ import annotations

import os
import sys

from pyqueue import BulkJob, SyncQueue


def main(redis_url: str) -> None:
    with SyncQueue("emails", redis_url) as queue:
        job = queue.add({"to": "ada@example.com", "subject": "welcome"}, attempts=3)
        print("added job", job.id)
        jobs = queue.add_bulk(
            [BulkJob({"to": f"user{i}@example.com", "subject": "digest"}) for i in range(3)]
        )
        print("added jobs", [j.id for j in jobs])
        print("counts:", queue.get_job_counts())


if __name__ == "__main__":
    # No silent default: jobs must not quietly go to a Redis you did not name.
    main(os.environ.get("REDIS_URL") or sys.exit("set REDIS_URL first, e.g. REDIS_URL=redis://127.0.0.1:6379/0"))
