"""Lock renewal on its own thread.

The renewer runs on a thread with its own blocking Redis connection, so locks
stay alive while a handler blocks the event loop or burns CPU: the GIL is
released to other threads every few milliseconds even under pure-Python load.
All active locks of a worker are renewed in one pipelined round trip.

A job fetched while a handler blocks the event loop is locked in Redis but not
yet registered here (its fetch reply waits for the loop). So the event loop
beats a heartbeat, and while the beat is late the renewer also extends every
job in ``active`` whose lock holds this worker's token (``extendLock`` checks
the token, so other workers' jobs are untouched).

A renewal can meet a silent socket (a black-holed or half-open connection).
Its socket timeout is a tenth of the lock duration, well under the renewal
period, and a failed pass is retried every tenth of a period on a new socket
for as long as the locks may still be alive, so one lost round trip costs a
retry, not every lock.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.lua import load_source
from pyqueue._protocol.bull.script_args import extend_lock_args, retry_job_args
from pyqueue._protocol.connection import ConnectionSpec

log = logging.getLogger("pyqueue.locks")

# Per id: True while the lock is ours, False once lost, or the error Redis gave.
Renew = Callable[[Sequence[str]], list[bool | Exception]]


def renewal_timeout(lock_duration_ms: int) -> float:
    """The renewer's socket timeout in seconds: a tenth of the lock duration.

    With Bull's default period (half the duration) that leaves room for about
    five attempts on fresh sockets before a lock whose renewal went silent expires.
    """
    return max(lock_duration_ms / 10_000, 0.01)


def sync_renewer(spec: ConnectionSpec, keys: QueueKeys, token: str, duration: int) -> tuple[
    Renew, Callable[[], None], Callable[[], list[str]]
]:
    """``renew(ids)``, its closer, and ``list_active()``, over one private blocking connection."""
    client = spec.sync_client(socket_timeout=renewal_timeout(duration))
    # No retries inside redis-py: LockRenewer retries against the lock's deadline.
    client.set_retry(Retry(NoBackoff(), 0))
    script = client.register_script(load_source("extendLock-2"))

    def renew(job_ids: Sequence[str]) -> list[bool | Exception]:
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids:
            k, a = extend_lock_args(keys, job_id, token=token, duration=duration)
            script(keys=k, args=a, client=pipe)
        # One job's error reply must not hide the others' answers.
        replies = pipe.execute(raise_on_error=False)
        return [r if isinstance(r, Exception) else int(r) == 1 for r in replies]

    def list_active() -> list[str]:
        found: list[bytes] = client.lrange(keys.active, 0, -1)  # type: ignore[assignment]
        return [raw.decode() for raw in found]

    return renew, client.close, list_active


def sync_release(spec: ConnectionSpec, keys: QueueKeys, token: str) -> Callable[[str], None]:
    """``release(job_id)``: our active job back to the front of wait, no attempt counted.

    For handler threads that outlive their worker's event loop: it runs on the
    thread that returned, over a connection of its own for that one call.
    """

    def release(job_id: str) -> None:
        client = spec.sync_client(socket_timeout=5.0)
        try:
            k, a = retry_job_args(keys, job_id, token=token, lifo=True)
            # A negative code (job gone, lock not ours) means it is not ours to move.
            client.register_script(load_source("retryJob-7"))(keys=k, args=a)
        finally:
            client.close()

    return release


_GONE = object()


class LockRenewer:
    """Renews the locks of the registered job ids every ``every_ms``.

    Args:
        renew: Extends the given locks, returning which are still ours.
        every_ms: Renewal period (Bull's ``lockRenewTime``).
        on_lost: Called (on the renewer thread) with an id whose lock was lost.
        on_error: Called (on the renewer thread) with a Redis error; renewal goes on.
        list_active: Lists the queue's active ids, for adopting unregistered locks.
        lock_duration_ms: The locks' TTL: a failed pass is retried quickly until this
            long after the last good pass (default twice ``every_ms``, as in Bull).
        on_extend_error: Called (on the renewer thread) with a registered id
            whose renewal Redis failed, and the error (Bull's
            ``lock-extension-failed``); renewal of that lock goes on.
    """

    def __init__(
        self,
        renew: Renew,
        every_ms: int,
        on_lost: Callable[[str], None],
        on_error: Callable[[BaseException], None],
        list_active: Callable[[], list[str]] | None = None,
        on_extend_error: Callable[[str, BaseException], None] | None = None,
        lock_duration_ms: int | None = None,
    ) -> None:
        self._renew = renew
        self._list_active = list_active
        self._beat = time.monotonic()
        self._every = every_ms / 1000
        self._retry_every = self._every / 10
        self._lock_duration = (lock_duration_ms or 2 * every_ms) / 1000
        self._last_ok = time.monotonic()
        self._on_lost = on_lost
        self._on_error = on_error
        self._on_extend_error = on_extend_error
        self._ids: dict[str, None] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._outliving: dict[str, Future[Any]] | None = None
        self._on_stopped: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="pyqueue-lock-renewer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # add and discard run on the loop for every job, without the guard: each is one
    # dict operation, atomic under the GIL (and in free-threaded builds), as is the
    # thread's list(self._ids). The guard is for the thread's read-then-change steps.
    def add(self, job_id: str) -> None:
        self._ids[job_id] = None

    def discard(self, job_id: str) -> None:
        self._ids.pop(job_id, None)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def outlive(
        self,
        running: Mapping[str, Future[Any]],
        release: Callable[[str], None],
        on_stopped: Callable[[], None],
    ) -> None:
        """Renew only these jobs' locks, each until its call returns; then stop.

        For handler threads still running when their worker closes: a thread
        cannot be interrupted, and a lapsed lock would let another worker start
        the same job beside it. As each call returns, ``release(job_id)`` runs
        on the thread that returned (so before the interpreter's exit joins it)
        and the job's lock is no longer renewed; after the last one the renewer
        stops and ``on_stopped`` runs on its thread.
        """
        with self._guard:
            self._ids = dict.fromkeys(running)
            self._outliving = dict(running)
            self._list_active = None  # the loop is gone; adopt nothing new
            self._on_stopped = on_stopped
        for job_id, call in running.items():
            call.add_done_callback(functools.partial(self._returned, job_id, release))

    def _returned(self, job_id: str, release: Callable[[str], None], call: Future[Any]) -> None:
        with self._guard:
            if self._outliving is None or self._outliving.get(job_id) is not call:
                return
            del self._outliving[job_id]
            self._ids.pop(job_id, None)
            last = not self._outliving
        try:
            release(job_id)
        except Exception:
            # Its lock lapses instead, and the stalled check requeues the job.
            log.warning("could not release job %s after its handler returned", job_id,
                        exc_info=True)
        if last:
            self._stop.set()

    def beat(self) -> None:
        """Called from the event loop every ``beat_every`` seconds while it runs."""
        self._beat = time.monotonic()

    @property
    def beat_every(self) -> float:
        return self._every / 4

    def renew_now(self) -> bool:
        """One renewal pass (the thread calls this every period).

        Returns:
            False when Redis failed (the pass should be retried), else True.
        """
        with self._guard:
            ids = list(self._ids)
        known = len(ids)
        try:
            if self._list_active is not None and time.monotonic() - self._beat > self._every / 2:
                registered = set(ids)
                ids += [i for i in self._list_active() if i not in registered]
            if not ids:
                return True
            results = self._renew(ids)
        except redis.RedisError as exc:
            results = [exc] * len(ids)
            whole_pass_failed = True
        else:
            whole_pass_failed = False
        failed = [(i, r) for i, r in zip(ids, results, strict=True) if isinstance(r, Exception)]
        if failed:
            self._on_error(failed[0][1])  # once per pass, not once per job
        for job_id, ok in zip(ids[:known], results[:known], strict=True):
            if isinstance(ok, Exception):
                if self._on_extend_error is not None:
                    self._on_extend_error(job_id, ok)
            elif not ok:
                # One pop: the loop may add or discard ids meanwhile.
                still_ours = self._ids.pop(job_id, _GONE) is not _GONE
                if still_ours:
                    self._on_lost(job_id)
        return not whole_pass_failed

    def _run(self) -> None:
        wait = self._every
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                ok = self.renew_now()
            except Exception:  # the thread must survive anything
                log.exception("lock renewal pass failed")
                ok = False
            if ok:
                self._last_ok = started
                wait = self._every
            elif time.monotonic() - self._last_ok < self._lock_duration:
                # The locks may still be alive: try again soon, on a new socket.
                wait = self._retry_every
            else:
                wait = self._every
        if self._on_stopped is not None:
            self._on_stopped()
