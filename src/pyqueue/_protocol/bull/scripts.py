"""The one module that calls pyqueue's Lua scripts.

:class:`Scripts` offers one typed async method per script (``commands/``, loaded
and registered by :mod:`pyqueue._protocol.bull.lua`). Each method builds its ``(KEYS, ARGV)``
with a pure builder of :mod:`pyqueue._protocol.bull.script_args` or
:mod:`pyqueue._protocol.bull.script_args_admin`, runs the script on one client and maps
negative return codes to :mod:`pyqueue.errors` exceptions.

Responses are bytes (clients are created with ``decode_responses=False``); ids
are decoded as UTF-8.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from pyqueue._protocol.bull.lua import registered
from pyqueue._protocol.bull.script_args import (
    AddJobSpec,
    Arg,
    ScriptArgs,
    add_job_argv,
    add_job_keys,
    add_jobs_args,
    add_repeatable_job_args,
    debounce_argv,
    extend_lock_args,
    finished_argv,
    keep_jobs,
    move_stalled_jobs_to_wait_args,
    move_to_active_argv,
    move_to_active_keys,
    move_to_delayed_args,
    release_lock_args,
    retry_job_args,
    take_lock_args,
    update_delay_set_args,
)
from pyqueue._protocol.bull.script_args_admin import (
    abort_job_args,
    add_log_args,
    clean_jobs_in_set_args,
    empty_args,
    get_counts_per_priority_args,
    is_finished_args,
    is_job_in_list_args,
    obliterate_args,
    pause_args,
    promote_args,
    remove_job_args,
    remove_jobs_args,
    remove_repeatable_args,
    reprocess_job_args,
    retry_jobs_args,
    update_data_args,
    update_progress_args,
)
from pyqueue._protocol.durability import (
    ServerFacts,
    WaitPlan,
    at_least_72,
    info_fields,
    parse_version,
)
from pyqueue._protocol.durability import plan as durability_plan
from pyqueue._protocol.fastconn import Template
from pyqueue.errors import JobStateError, ReplicationError, script_error

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.keys import QueueKeys
    from pyqueue._protocol.fastconn import FastConnection
    from pyqueue.options import Durability

JobReply: TypeAlias = tuple[dict[bytes, bytes], str]
# What an add did: its id, "created" / "duplicate" / "debounced", and the stored hash
# of the job it returned when it created nothing.
AddOutcome: TypeAlias = Literal["created", "debounced", "duplicate"]
AddReply: TypeAlias = tuple[str, AddOutcome, dict[bytes, bytes] | None]
_ADD_OUTCOMES: tuple[AddOutcome, ...] = ("created", "debounced", "duplicate")
_CompletingSpec: TypeAlias = tuple[str, int, int | None, bool, int, int | None, bool]

_log = logging.getLogger("pyqueue")
DROPPED = (
    "queue %s: job %s was listed in wait but its hash is gone (deleted, evicted, or lost "
    "in a failover); removed it from the queue"
)

_KINDS = ("completed", "failed")

# Markers of a Template's holes, told apart by identity (see _completing_template).
_HOLE_STRINGS = tuple(f"\x00hole {what}" for what in ("job key", "job id", "value", "payload"))
_HOLE_INT = -(2**62) - 7
_MAX_TEMPLATES = 64


def _job_reply(raw: Any, on_dropped: Callable[[list[str]], None]) -> JobReply | None:
    """``(hash, id)`` from a fetching script's reply; dropped ids go to ``on_dropped``."""
    if not isinstance(raw, list):
        return None
    if len(raw) > 2:  # ids found in wait without a hash (includes/activate.lua)
        on_dropped(_ids(raw[2]))
    flat, job_id = raw[0], raw[1]
    if not job_id:
        return None
    pairs = iter(flat)  # HGETALL: field, value, field, value...
    return dict(zip(pairs, pairs)), job_id.decode()  # noqa: B905 - one iterator, taken in pairs


def _add_reply(raw: Any) -> AddReply:
    job_id, code, flat = raw
    fields: dict[bytes, bytes] | None = None
    if code:
        pairs = iter(flat)
        fields = dict(zip(pairs, pairs))  # noqa: B905 - one iterator, taken in pairs
    return job_id.decode(), _ADD_OUTCOMES[int(code)], fields


def _ids(raw: list[bytes]) -> list[str]:
    return [item.decode() for item in raw]


class Scripts:
    """Typed calls of every script for one queue on one client.

    Args:
        client: An asyncio client created with ``decode_responses=False``.
        keys: The queue's key names.
    """

    def __init__(
        self, client: aioredis.Redis, keys: QueueKeys, fast: FastConnection | None = None
    ) -> None:
        self._client = client
        self._fast = fast
        self._keys = keys
        self._base = keys.base
        self._s = registered(client)
        self._add_job_keys = add_job_keys(keys)
        self._mta_keys: dict[str, list[str]] = {}
        # moveToFinished keys around the per-job key and the per-token channel.
        self._mtf_head = {kind: [keys.active, keys.finished_set(kind)] for kind in _KINDS}
        self._mtf_mid = [keys.wait, keys.priority]
        self._mtf_tail = {kind: [keys.delayed, keys.stalled, keys.metrics(kind)] for kind in _KINDS}
        self._active_channels: dict[str, str] = {}
        self._keep: dict[tuple[int, int | None], str] = {}
        self._templates: dict[_CompletingSpec, Template] = {}
        # Each worker's identity JSON by lock token, as its fetches give it: the
        # completing call that fetches the next job stores it too, without the
        # finishing path passing it (or building anything) per job.
        self._identities: dict[str, str] = {}
        self._mtf_source = cast("str", self._s["moveToFinished"].script)
        self.durability: Durability | None = None
        # Told the ids a fetch found in wait without a hash (and removed); the
        # worker replaces it to log and report them as errors.
        self.on_dropped: Callable[[list[str]], None] = self.log_dropped
        self.unconfirmed_finishes = 0
        self._wait_plan: WaitPlan | None = None
        self._wait_for: Durability | None = None
        self._short_of_replicas_seen = False

    def log_dropped(self, job_ids: list[str]) -> None:
        """Log each id a fetch found in wait without a hash, and removed."""
        for job_id in job_ids:
            _log.warning(DROPPED, self._base.rstrip(":"), job_id)

    async def _replicated(self, what: str, *, finishing: bool = False) -> None:
        """WAIT (or WAITAOF) for the replicas :attr:`durability` asks for.

        Both cover every write sent before them on the same connection, so they
        must go over the lean connection the script went over.
        """
        durability = self.durability
        if durability is None or (finishing and not durability.after_finish):
            return
        wait = self._wait_plan
        if wait is None or self._wait_for is not durability:
            wait = self._wait_plan = durability_plan(
                durability.replicas, durability.timeout_ms, durability.aof,
                await self._server_facts(),
            )
            self._wait_for = durability
        if self._short_of_replicas_seen:
            # The last WAIT failed for want of replicas: while that lasts, say so
            # at once (one INFO) rather than waiting out timeout_ms on every add.
            cause = await self._short_of_replicas(durability.replicas)
            if cause:
                self._fail(f"{what}: not confirmed; the write is on the master only{cause}",
                           durability.replicas, finishing=finishing)
                return
        confirmed, local = wait.confirmed(await self._command(*wait.command))
        if confirmed >= durability.replicas and local:
            self._short_of_replicas_seen = False
            return
        cause = await self._short_of_replicas(durability.replicas)
        self._short_of_replicas_seen = bool(cause)
        message = (
            f"{what}: {confirmed} of {durability.replicas} replicas {wait.what()} within "
            f"{durability.timeout_ms} ms"
            + ("" if local else " and the master's own AOF fsync was not confirmed")
            + ("; replicas may hold it unsynced, or not at all" if wait.waitaof
               else "; the write is on the master only")
            + cause
        )
        self._fail(message, durability.replicas, confirmed=confirmed, finishing=finishing)

    def _fail(
        self, message: str, required: int, *, confirmed: int = 0, finishing: bool
    ) -> None:
        if finishing:
            self.unconfirmed_finishes += 1
            _log.warning("%s", message)
            return
        raise ReplicationError(message, confirmed=confirmed, required=required)

    async def _short_of_replicas(self, required: int) -> str:
        """Why WAIT fell short, when the cause is plain: the master has too few replicas.

        The usual case: after a failover the promoted master has no replica (a
        3+3 cluster, a Sentinel master whose only replica was promoted) until one
        is added or migrates to it, and every add would fail the same way.
        """
        try:
            fields = info_fields(await self._command("INFO", "replication"))
        except Exception:  # the cause is a hint: never hide the ReplicationError
            return ""
        connected = int(fields.get("connected_slaves", "0") or 0)
        if connected >= required:
            return ""
        return (
            f". Cause: this master has {connected} connected replica(s) and Durability "
            f"needs {required}; after a failover the promoted master has none until a "
            "replica is added or migrates to it (Redis Cluster: give masters a spare "
            "replica, cluster-migration-barrier 1; see docs/reliability.md, "
            "'Durability through a failover')"
        )

    async def _command(self, *args: Arg) -> Any:
        # WAIT and WAITAOF cover the writes of the connection they are sent on.
        if self._fast is not None:
            return await self._fast.execute(*args)
        return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _server_facts(self) -> ServerFacts:
        server = info_fields(await self._command("INFO", "server"))
        version = parse_version(server.get("redis_version", ""))
        aof = False
        if at_least_72(version):
            persistence = info_fields(await self._command("INFO", "persistence"))
            aof = persistence.get("aof_enabled") == "1"
        return ServerFacts(version, aof)

    async def _eval(self, command: str, keys: list[str], args: list[Arg]) -> Any:
        """One script call: over the lean connection when there is one."""
        script = self._s[command]
        if self._fast is not None:
            source = cast("str", script.script)  # we registered it from a str
            return await self._fast.evalsha(script.sha, source, keys, args)
        return await script(keys=keys, args=args)

    async def _run(self, command: str, built: ScriptArgs) -> Any:
        keys, args = built
        return await self._eval(command, keys, args)

    def _active_channel(self, token: str) -> str:
        channel = self._active_channels.get(token)
        if channel is None:
            channel = self._active_channels[token] = self._keys.active_channel(token)
        return channel

    def _keep_json(self, count: int, age: int | None) -> str:
        spec = self._keep.get((count, age))
        if spec is None:
            spec = self._keep[(count, age)] = keep_jobs(count, age)
        return spec

    # --- hot path ------------------------------------------------------------

    async def add_job(
        self,
        *,
        job_id: str,
        name: str,
        data: str,
        opts: str,
        timestamp: int,
        delay: int,
        priority: int,
        lifo: bool,
        token: str,
    ) -> str:
        """Add one job (addJob-6). Returns its id (the existing id for a duplicate)."""
        argv = add_job_argv(
            self._base, job_id=job_id, name=name, data=data, opts=opts, timestamp=timestamp,
            delay=delay, priority=priority, lifo=lifo, token=token,
        )
        raw: bytes = await self._eval("addJob", self._add_job_keys, argv)
        if self.durability is not None:
            await self._replicated(f"job {raw.decode()} added")
        return raw.decode()

    async def add_job_reporting(
        self, spec: AddJobSpec, *, token: str, debounce_id: str | None = None,
        ttl: int | None = None,
    ) -> AddReply:
        """Add one job and say what happened (addJob-6 with ARGV[15]).

        Returns:
            ``(id, outcome, fields)``: outcome ``"created"``; ``"duplicate"`` when the
            custom id existed, or ``"debounced"`` when another job holds the debounce
            id (Bull 4.16), both with that job's stored hash, read in the same script.
        """
        argv = add_job_argv(
            self._base, job_id=spec.job_id, name=spec.name, data=spec.data, opts=spec.opts,
            timestamp=spec.timestamp, delay=spec.delay, priority=spec.priority, lifo=spec.lifo,
            token=token,
        )
        if debounce_id is not None:
            argv += debounce_argv(self._keys.debounce(debounce_id), debounce_id=debounce_id,
                                  ttl=ttl)
        else:
            argv += ["", "", "", "1"]
        reply = _add_reply(await self._eval("addJob", self._add_job_keys, argv))
        if self.durability is not None:
            # A duplicate too: the first add may have raised ReplicationError with the
            # job on the master only. The script's INCR of the id counter is a write, so
            # this WAIT covers the master's offset after the job's own write.
            await self._replicated(f"job {reply[0]} added")
        return reply

    async def add_jobs(self, jobs: Sequence[AddJobSpec], token: str) -> list[str]:
        """Add many jobs atomically in one script call. Returns their ids in order."""
        return [job_id for job_id, _, _ in await self.add_jobs_reporting(jobs, token)]

    async def add_jobs_reporting(self, jobs: Sequence[AddJobSpec], token: str) -> list[AddReply]:
        """:meth:`add_jobs`, saying for each job what :meth:`add_job_reporting` says."""
        if not jobs:
            return []
        keys, args = add_jobs_args(self._keys, jobs, token=token)
        raw = await self._eval("addJobs", keys, args)
        if self.durability is not None:
            await self._replicated(f"{len(raw)} jobs added")
        return [_add_reply(item) for item in raw]

    async def add_repeatable_job(
        self, spec: AddJobSpec, *, token: str, repeat_key: str, millis: int, chain: bool
    ) -> str | None:
        """Schedule a repeat instance and its repeat-set entry atomically.

        Returns:
            The instance id, or None when the schedule was removed (``chain``) or
            a later instance is already scheduled.
        """
        keys, args = add_repeatable_job_args(
            self._keys, spec, token=token, repeat_key=repeat_key, millis=millis, chain=chain
        )
        raw: bytes = await self._eval("addRepeatableJob", keys, args)
        return raw.decode() or None

    async def move_to_active(
        self,
        *,
        token: str,
        lock_duration: int,
        now: int,
        job_id: str = "",
        limiter_max: int | None = None,
        limiter_duration: int | None = None,
        bounce_back: bool = False,
        group_key: bool = False,
        worker: str = "",
    ) -> JobReply | int | None:
        """Start a job (moveToActive-8).

        ``worker``: the identity JSON stored in the job hash (``pqWorker``), from
        :func:`pyqueue._protocol.bull.wire_workers.identity_json`; "" stores none.
        It is remembered for ``token``: :meth:`move_to_completed` stores it in the
        hash of each next job it fetches for that token.

        Returns:
            ``(hash, id)`` of the started job; an int, the ms until the rate
            limiter lets a job start, when the job was limited (parked in
            delayed, or back on wait with ``bounce_back``); None when nothing
            was fetched or the job's hash was missing.
        """
        keys = self._mta_keys.get(token)
        if keys is None:
            keys = self._mta_keys[token] = move_to_active_keys(self._keys, token)
        if worker:
            self._identities[token] = worker
        argv = move_to_active_argv(
            self._base, token=token, lock_duration=lock_duration, now=now, job_id=job_id,
            limiter_max=limiter_max, limiter_duration=limiter_duration,
            bounce_back=bounce_back, group_key=group_key, worker=worker,
        )
        raw = await self._eval("moveToActive", keys, argv)
        if isinstance(raw, int):
            return raw
        return _job_reply(raw, self.on_dropped)

    def _finished_keys(self, kind: str, job_id: str, token: str) -> list[str]:
        return [
            *self._mtf_head[kind],
            self._keys.job(job_id),
            *self._mtf_mid,
            self._active_channel(token),
            *self._mtf_tail[kind],
        ]

    def _completing_template(self, spec: _CompletingSpec) -> Template:
        """The EVALSHA of moveToFinished into completed, encoded but for what each job changes.

        ``spec``: (token, keep count, keep age, fetch next, lock duration, metrics
        points, check debounce). Built by the same builders as the plain call,
        with marker objects where the job key, id, finishedOn, return value and
        event payload go. The token's worker identity (from its fetches) is
        encoded once, here, not per job.
        """
        token, keep_count, keep_age, fetch_next, lock_duration, metrics_points, debounce = spec
        worker = self._identities.get(token, "") if fetch_next else ""
        keep_json = self._keep_json(keep_count, keep_age)
        job_key, job_id, value, payload = _HOLE_STRINGS
        argv = finished_argv(
            self._base, job_id=job_id, finished_on=_HOLE_INT, field="returnvalue",
            value=value, token=token, keep_json=keep_json, event_payload=payload,
            fetch_next=fetch_next, lock_duration=lock_duration,
            metrics_max_points=metrics_points, attempts_made=None, stacktrace=None,
            check_debounce=debounce, worker=worker,
        )
        keys = self._finished_keys("completed", "", token)
        keys[2] = job_key
        script = self._s["moveToFinished"]
        template = Template(
            ("EVALSHA", script.sha, len(keys), *keys, *argv),
            holes=(job_key, job_id, _HOLE_INT, value, payload),
        )
        if len(self._templates) >= _MAX_TEMPLATES:  # retention options vary per job
            self._templates.clear()
        self._templates[spec] = template
        return template

    async def move_to_completed(
        self,
        job_id: str,
        *,
        token: str,
        finished_on: int,
        return_value: str,
        keep_count: int,
        keep_age: int | None,
        event_payload: str,
        fetch_next: bool,
        lock_duration: int,
        metrics_max_points: int | None = None,
        check_debounce: bool = True,
    ) -> JobReply | None:
        """Complete an active job (moveToFinished-9 into ``completed``).

        ``check_debounce=False``: the job is known to have no debounce id, so
        the script need not read one. A next job that ``fetch_next`` fetches
        carries the identity ``token``'s worker gave :meth:`move_to_active`.

        Returns:
            The next job ``(hash, id)`` when ``fetch_next`` found one, else None.

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3.
        """
        fast = self._fast
        if fast is not None:
            # The per-job path: one cache lookup, no helper call, for what most jobs share.
            spec = (token, keep_count, keep_age, fetch_next, lock_duration, metrics_max_points,
                    check_debounce)
            template = self._templates.get(spec)
            if template is None:
                template = self._completing_template(spec)
            values = (self._base + job_id, job_id, finished_on, return_value, event_payload)
            raw = await fast.evalsha_template(template, values, self._mtf_source)
        else:
            argv = finished_argv(
                self._base, job_id=job_id, finished_on=finished_on, field="returnvalue",
                value=return_value, token=token, keep_json=self._keep_json(keep_count, keep_age),
                event_payload=event_payload, fetch_next=fetch_next, lock_duration=lock_duration,
                metrics_max_points=metrics_max_points, attempts_made=None, stacktrace=None,
                check_debounce=check_debounce,
                worker=self._identities.get(token, "") if fetch_next else "",
            )
            keys = self._finished_keys("completed", job_id, token)
            raw = await self._eval("moveToFinished", keys, argv)
        if self.durability is not None:
            await self._replicated(f"job {job_id} completed", finishing=True)
        if isinstance(raw, list):
            return _job_reply(raw, self.on_dropped)
        if isinstance(raw, int) and raw < 0:
            raise script_error(raw, job_id, "finished")
        return None

    async def move_to_failed(
        self,
        job_id: str,
        *,
        token: str,
        finished_on: int,
        failed_reason: str,
        attempts_made: int,
        stacktrace: str,
        keep_count: int,
        keep_age: int | None,
        event_payload: str,
        metrics_max_points: int | None = None,
        check_debounce: bool = True,
    ) -> None:
        """Finally fail an active job, writing its last attempt (moveToFinished-9).

        ``check_debounce`` as for :meth:`move_to_completed`.

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3.
        """
        argv = finished_argv(
            self._base, job_id=job_id, finished_on=finished_on, field="failedReason",
            value=failed_reason, token=token, keep_json=self._keep_json(keep_count, keep_age),
            event_payload=event_payload, fetch_next=False, lock_duration=0,
            metrics_max_points=metrics_max_points, attempts_made=attempts_made,
            stacktrace=stacktrace, check_debounce=check_debounce,
        )
        raw = await self._eval("moveToFinished", self._finished_keys("failed", job_id, token), argv)
        if self.durability is not None:
            await self._replicated(f"job {job_id} failed", finishing=True)
        if isinstance(raw, int) and raw < 0:
            raise script_error(raw, job_id, "failed")

    # --- retries and maintenance --------------------------------------------

    async def move_to_delayed(
        self,
        job_id: str,
        *,
        token: str,
        score: int,
        attempts_made: int | None = None,
        stacktrace: str | None = None,
        failed_reason: str | None = None,
    ) -> None:
        """Park an active job in ``delayed`` (moveToDelayed-4).

        ``score`` comes from :func:`~pyqueue._protocol.bull.script_args.delayed_score`.

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3.
        """
        built = move_to_delayed_args(
            self._keys, job_id, token=token, score=score, attempts_made=attempts_made,
            stacktrace=stacktrace, failed_reason=failed_reason,
        )
        code: int = await self._run("moveToDelayed", built)
        if code < 0:
            raise script_error(code, job_id, "delayed")

    async def retry_job(
        self,
        job_id: str,
        *,
        token: str,
        lifo: bool,
        attempts_made: int | None = None,
        stacktrace: str | None = None,
        failed_reason: str | None = None,
    ) -> None:
        """Put an active job straight back to waiting (retryJob-7).

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3.
        """
        built = retry_job_args(
            self._keys, job_id, token=token, lifo=lifo, attempts_made=attempts_made,
            stacktrace=stacktrace, failed_reason=failed_reason,
        )
        code: int = await self._run("retryJob", built)
        if code < 0:
            raise script_error(code, job_id, "retry")

    async def move_stalled_jobs_to_wait(
        self, *, max_stalled_count: int, now: int, stalled_interval: int
    ) -> tuple[list[str], list[str]]:
        """Run the stalled check (moveStalledJobsToWait-7).

        Returns:
            ``(failed ids, recovered ids)``; both empty while throttled.
        """
        built = move_stalled_jobs_to_wait_args(
            self._keys, max_stalled_count=max_stalled_count, now=now,
            stalled_interval=stalled_interval,
        )
        failed, recovered = await self._run("moveStalledJobsToWait", built)
        return _ids(failed), _ids(recovered)

    async def extend_lock(self, job_id: str, *, token: str, duration: int) -> bool:
        """Renew a lock this token holds (extendLock-2). False when it was lost."""
        built = extend_lock_args(self._keys, job_id, token=token, duration=duration)
        return bool(await self._run("extendLock", built))

    async def take_lock(self, job_id: str, *, token: str, duration: int) -> bool:
        """Take a free lock (takeLock-1)."""
        built = take_lock_args(self._keys, job_id, token=token, duration=duration)
        return bool(await self._run("takeLock", built))

    async def release_lock(self, job_id: str, *, token: str) -> bool:
        """Release a lock this token holds (releaseLock-1)."""
        built = release_lock_args(self._keys, job_id, token=token)
        return bool(await self._run("releaseLock", built))

    async def update_delay_set(self, *, now: int, token: str) -> int | None:
        """Promote due delayed jobs (updateDelaySet-6).

        Returns:
            The lowest remaining raw delayed score (``due*4096 + n``), or None.
        """
        built = update_delay_set_args(self._keys, now=now, token=token)
        raw = await self._run("updateDelaySet", built)
        if raw is None:
            return None
        text = raw.decode()
        try:
            return int(text)
        except ValueError:
            return int(float(text))

    async def promote(self, job_id: str, *, token: str) -> None:
        """Move a delayed job to waiting now (promote-5).

        Raises:
            JobStateError: the job is not delayed.
        """
        code: int = await self._run("promote", promote_args(self._keys, job_id, token=token))
        if code == -1:
            raise JobStateError(f"Job {job_id} is not in a delayed state", job_id=job_id, code=-1)

    async def pause(self, paused: bool) -> None:
        """Globally pause (True) or resume (False) the queue (pause-5)."""
        await self._run("pause", pause_args(self._keys, paused=paused))

    async def remove_job(self, job_id: str, *, token: str) -> bool:
        """Delete a job everywhere (removeJob-10). False when it is locked."""
        return bool(await self._run("removeJob", remove_job_args(self._keys, job_id, token=token)))

    async def remove_jobs(self, pattern: str, cursor: str) -> tuple[str, list[str]]:
        """One SCAN step of removal by id glob (removeJobs-8).

        Returns:
            ``(next cursor, removed ids)``; loop until the cursor is ``"0"``.
        """
        built = remove_jobs_args(self._keys, pattern=pattern, cursor=cursor)
        next_cursor, removed = await self._run("removeJobs", built)
        return next_cursor.decode(), _ids(removed)

    async def remove_repeatable(
        self, *, id_prefix: str, repeat_key: str, more_prefixes: tuple[str, ...] = ()
    ) -> None:
        """Drop a repeat config and its delayed instance (removeRepeatable-2)."""
        built = remove_repeatable_args(
            self._keys, id_prefix=id_prefix, repeat_key=repeat_key, more_prefixes=more_prefixes
        )
        await self._run("removeRepeatable", built)

    async def update_progress(self, job_id: str, *, progress_json: str, event_payload: str) -> None:
        """Store and publish progress (updateProgress-2).

        Raises:
            JobNotFound: the job is missing.
        """
        built = update_progress_args(
            self._keys, job_id, progress_json=progress_json, event_payload=event_payload
        )
        code: int = await self._run("updateProgress", built)
        if code < 0:
            raise script_error(code, job_id, "updateProgress")

    async def update_data(self, job_id: str, *, data_json: str) -> None:
        """Replace a job's data (updateData-1).

        Raises:
            JobNotFound: the job is missing.
        """
        built = update_data_args(self._keys, job_id, data_json=data_json)
        code: int = await self._run("updateData", built)
        if code < 0:
            raise script_error(code, job_id, "updateData")

    async def clean_jobs_in_set(self, state: str, *, max_timestamp: int, limit: int) -> list[str]:
        """Delete unlocked jobs of ``state`` older than ``max_timestamp`` (cleanJobsInSet-3)."""
        built = clean_jobs_in_set_args(
            self._keys, state, max_timestamp=max_timestamp, limit=limit
        )
        return _ids(await self._run("cleanJobsInSet", built))

    async def empty(self) -> int:
        """Delete waiting, paused and delayed jobs atomically (empty-8). Returns how many."""
        deleted: int = await self._run("empty", empty_args(self._keys))
        return deleted

    async def obliterate(self, *, count: int, force: bool) -> int:
        """One obliterate step (obliterate-2). Returns the raw code (0, 1, -1, -2)."""
        built = obliterate_args(self._keys, count=count, force=force)
        code: int = await self._run("obliterate", built)
        return code

    async def add_log(self, job_id: str, *, line: str, keep_logs: int | None = None) -> int:
        """Append a log line (addLog-2). Returns the number of lines kept.

        Raises:
            JobNotFound: the job is missing.
        """
        built = add_log_args(self._keys, job_id, line=line, keep_logs=keep_logs)
        count: int = await self._run("addLog", built)
        if count < 0:
            raise script_error(count, job_id, "addLog")
        return count

    async def reprocess_job(self, job_id: str, *, lifo: bool, token: str, now: int) -> int:
        """Retry a failed job (reprocessJob-6). Returns the raw code (1, 0, -1, -2)."""
        built = reprocess_job_args(self._keys, job_id, lifo=lifo, token=token, now=now)
        code: int = await self._run("reprocessJob", built)
        return code

    async def retry_jobs(self, *, count: int) -> int:
        """Retry up to ``count`` failed jobs (retryJobs-5). 1 means "call again"."""
        code: int = await self._run("retryJobs", retry_jobs_args(self._keys, count=count))
        return code

    async def abort_job(
        self, job_id: str, *, reason: str, now: int, event_payload: str, abort_payload: str,
        abort_field: str, keep: tuple[int, int | None],
    ) -> int:
        """Fail a waiting job, or flag an active one for its worker (abortJob-9).

        ``keep`` is the job's removeOnFail as :func:`wire.keep_spec` gives it,
        applied when the job fails here.

        Returns:
            1 failed now, 2 flagged (active); -1, -3, -7 as the script says.
        """
        built = abort_job_args(
            self._keys, job_id, reason=reason, now=now, event_payload=event_payload,
            abort_payload=abort_payload, abort_field=abort_field,
            keep_json=self._keep_json(*keep),
        )
        code: int = await self._run("abortJob", built)
        return code

    async def is_finished(self, job_id: str) -> int | None:
        """1 when completed, 2 when failed, None otherwise (isFinished-2)."""
        result: int | None = await self._run("isFinished", is_finished_args(self._keys, job_id))
        return result

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> list[int]:
        """Waiting-job counts for each priority, in order (getCountsPerPriority-4)."""
        if not priorities:
            return []
        built = get_counts_per_priority_args(self._keys, priorities)
        counts: list[int] = await self._run("getCountsPerPriority", built)
        return counts

    async def is_job_in_list(self, list_key: str, job_id: str) -> bool:
        """Whether ``list_key`` holds ``job_id`` (isJobInList-1)."""
        found: int | None = await self._run("isJobInList", is_job_in_list_args(list_key, job_id))
        return found == 1

