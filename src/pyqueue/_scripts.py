"""The one module that calls pyqueue's Lua scripts.

Each Bull command lives in ``lua/<command>-<numkeys>.lua`` (fragments in
``lua/includes/``, pulled in with ``-- @include <name>`` lines). This module
loads and registers them, and offers three layers:

* :func:`load_source` and :func:`numkeys`, reading the script files;
* one pure builder per script (``add_job_args`` ...) returning its
  ``(KEYS, ARGV)`` from primitive values, unit-tested without Redis;
* :class:`Scripts`, typed async methods that run the scripts on one client and
  map negative return codes to :mod:`pyqueue.errors` exceptions.

Responses are bytes (clients are created with ``decode_responses=False``); ids
are decoded as UTF-8.
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from redis.exceptions import NoScriptError

from pyqueue._fastconn import encode as _fast_encode
from pyqueue._fastconn import encode_calls
from pyqueue.errors import JobStateError, script_error

if TYPE_CHECKING:
    from collections.abc import Sequence

    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

    from pyqueue._fastconn import FastConnection
    from pyqueue._keys import QueueKeys

Arg: TypeAlias = str | int | float | bytes
ScriptArgs: TypeAlias = tuple[list[str], list[Arg]]
JobReply: TypeAlias = tuple[dict[bytes, bytes], str]

SCRIPT_NAMES: tuple[str, ...] = (
    "addJob-6",
    "addJobs-6",
    "addRepeatableJob-7",
    "addLog-2",
    "cleanJobsInSet-3",
    "extendLock-2",
    "getCountsPerPriority-4",
    "isFinished-2",
    "isJobInList-1",
    "moveStalledJobsToWait-7",
    "moveToActive-8",
    "moveToDelayed-4",
    "moveToFinished-9",
    "obliterate-2",
    "pause-5",
    "promote-5",
    "releaseLock-1",
    "removeJob-10",
    "removeJobs-8",
    "removeRepeatable-2",
    "reprocessJob-6",
    "retryJob-7",
    "retryJobs-5",
    "takeLock-1",
    "updateData-1",
    "updateDelaySet-6",
    "updateProgress-2",
)

_KINDS = ("completed", "failed")
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"
_FILE_OF: dict[str, str] = {name.rsplit("-", 1)[0]: name for name in SCRIPT_NAMES}
_INCLUDE = re.compile(r"^\s*--\s*@include\s+(\S+)\s*$")


def _file_name(command: str) -> str:
    """``addJob`` or ``addJob-6`` -> ``addJob-6``."""
    if command in _FILE_OF:
        return _FILE_OF[command]
    if command in SCRIPT_NAMES:
        return command
    raise KeyError(f"unknown script {command!r}")


def numkeys(command: str) -> int:
    """The number of KEYS a script takes, parsed from its file name.

    Args:
        command: A command (``addJob``) or file stem (``addJob-6``).
    """
    return int(_file_name(command).rsplit("-", 1)[1])


def _read(*parts: str) -> str:
    return resources.files("pyqueue").joinpath("lua", *parts).read_text(encoding="utf-8")


def _resolve(text: str, seen: set[str]) -> str:
    out: list[str] = []
    for line in text.splitlines():
        match = _INCLUDE.match(line)
        if match is None:
            out.append(line)
            continue
        name = match.group(1)
        if name in seen:
            continue
        seen.add(name)
        out.append(_resolve(_read("includes", f"{name}.lua"), seen))
    return "\n".join(out) + "\n"


def load_source(command: str) -> str:
    """The Lua source of a script with every ``-- @include`` resolved once.

    Args:
        command: A command (``addJob``) or file stem (``addJob-6``).

    Raises:
        KeyError: unknown command.
        FileNotFoundError: an include names a missing fragment.
    """
    return _resolve(_read(f"{_file_name(command)}.lua"), set())


def _checked(command: str, keys: list[str], args: list[Arg]) -> ScriptArgs:
    expected = numkeys(command)
    if len(keys) != expected:
        raise AssertionError(f"{command} takes {expected} keys, got {len(keys)}")
    return keys, args


def _push(lifo: bool) -> str:
    return "RPUSH" if lifo else "LPUSH"


def _keep_jobs(count: int, age: int | None) -> str:
    if age is None:
        return f'{{"count":{count}}}'
    return f'{{"count":{count},"age":{age}}}'


def _attempt(
    attempts_made: int | None, stacktrace: str | None, failed_reason: str | None
) -> list[Arg]:
    if attempts_made is None and stacktrace is None and failed_reason is None:
        return []
    return [
        "" if attempts_made is None else attempts_made,
        stacktrace or "",
        failed_reason or "",
    ]


def delayed_score(due_ms: float, job_id: str) -> int:
    """The ``delayed`` score of a backoff retry (spec §1.3, §3.4).

    ``due*4096 + (id & 0xfff)``, where the id is read as a JavaScript number
    (a non-numeric id contributes 0), and 0 when ``due_ms <= 0``.
    """
    if due_ms <= 0:
        return 0
    return int(due_ms * 4096) + (_js_int32(job_id) & 0xFFF)


def _js_int32(text: str) -> int:
    """JavaScript ``text | 0``: ToNumber then ToInt32; NaN and infinities give 0."""
    stripped = text.strip()
    if not stripped:
        return 0
    try:
        value = float(int(stripped, 16)) if stripped[:2].lower() == "0x" else float(stripped)
    except ValueError:
        return 0
    if "_" in stripped or not math.isfinite(value):
        return 0
    wrapped = int(value) % 2**32
    return wrapped - 2**32 if wrapped >= 2**31 else wrapped


# --- pure builders ------------------------------------------------------------
#
# The hot commands are split into a constant key list and an argv function, so
# Scripts can precompute the keys once; the public builders join the two.


def _add_job_keys(k: QueueKeys) -> list[str]:
    return [k.wait, k.paused, k.meta_paused, k.id, k.delayed, k.priority]


def _add_job_argv(
    base: str,
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
) -> list[Arg]:
    delay = max(delay, 0)
    due = timestamp + delay if delay else 0
    return [base, job_id, name, data, opts, timestamp, delay, due, priority, _push(lifo), token]


def add_job_args(
    keys: QueueKeys,
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
) -> ScriptArgs:
    """addJob-6: ``job_id`` "" means the next counter value; ``opts`` is plain JSON."""
    argv = _add_job_argv(
        keys.base, job_id=job_id, name=name, data=data, opts=opts, timestamp=timestamp,
        delay=delay, priority=priority, lifo=lifo, token=token,
    )
    return _checked("addJob", _add_job_keys(keys), argv)


def add_jobs_args(
    keys: QueueKeys, jobs: Sequence[AddJobSpec], *, token: str
) -> ScriptArgs:
    """addJobs-6: addJob's keys; base and token, then nine values per job."""
    args: list[Arg] = [keys.base, token]
    for j in jobs:
        one = _add_job_argv(
            keys.base, job_id=j.job_id, name=j.name, data=j.data, opts=j.opts,
            timestamp=j.timestamp, delay=j.delay, priority=j.priority, lifo=j.lifo, token=token,
        )
        args.extend(one[1:10])
    return _checked("addJobs", _add_job_keys(keys), args)


def add_repeatable_job_args(
    keys: QueueKeys,
    spec: AddJobSpec,
    *,
    token: str,
    repeat_key: str,
    millis: int,
    chain: bool,
) -> ScriptArgs:
    """addRepeatableJob-7: addJob's keys and argv, then the repeat set and schedule."""
    argv = _add_job_argv(
        keys.base, job_id=spec.job_id, name=spec.name, data=spec.data, opts=spec.opts,
        timestamp=spec.timestamp, delay=spec.delay, priority=spec.priority, lifo=spec.lifo,
        token=token,
    )
    argv += [repeat_key, millis, "chain" if chain else "add"]
    return _checked("addRepeatableJob", [*_add_job_keys(keys), keys.repeat], argv)


def _move_to_active_keys(k: QueueKeys, token: str) -> list[str]:
    return [
        k.wait,
        k.active,
        k.priority,
        k.active_channel(token),
        k.stalled,
        k.limiter,
        k.delayed,
        k.channel("drained"),
    ]


def _move_to_active_argv(
    base: str,
    *,
    token: str,
    lock_duration: int,
    now: int,
    job_id: str,
    limiter_max: int | None,
    limiter_duration: int | None,
    bounce_back: bool,
    group_key: bool,
) -> list[Arg]:
    argv: list[Arg] = [base, token, lock_duration, now, job_id]
    if limiter_max is not None:
        argv += [limiter_max, limiter_duration or 0, "true" if bounce_back else "false"]
        if group_key:
            argv.append("true")
    return argv


def move_to_active_args(
    keys: QueueKeys,
    *,
    token: str,
    lock_duration: int,
    now: int,
    job_id: str = "",
    limiter_max: int | None = None,
    limiter_duration: int | None = None,
    bounce_back: bool = False,
    group_key: bool = False,
) -> ScriptArgs:
    """moveToActive-8: limiter ARGV[6..9] are sent only with ``limiter_max``."""
    argv = _move_to_active_argv(
        keys.base, token=token, lock_duration=lock_duration, now=now, job_id=job_id,
        limiter_max=limiter_max, limiter_duration=limiter_duration,
        bounce_back=bounce_back, group_key=group_key,
    )
    return _checked("moveToActive", _move_to_active_keys(keys, token), argv)


def _move_to_finished_keys(k: QueueKeys, kind: str, job_key: str, token: str) -> list[str]:
    return [
        k.active,
        k.finished_set(kind),
        job_key,
        k.wait,
        k.priority,
        k.active_channel(token),
        k.delayed,
        k.stalled,
        k.metrics(kind),
    ]


def _finished_argv(
    base: str,
    *,
    job_id: str,
    finished_on: int,
    field: str,
    value: str,
    token: str,
    keep_json: str,
    event_payload: str,
    fetch_next: bool,
    lock_duration: int,
    metrics_max_points: int | None,
    attempts_made: int | None,
    stacktrace: str | None,
) -> list[Arg]:
    argv: list[Arg] = [
        job_id,
        finished_on,
        field,
        value,
        token,
        keep_json,
        event_payload,
        "1" if fetch_next else "0",
        base,
        lock_duration,
        token,
        "" if metrics_max_points is None else metrics_max_points,
    ]
    if attempts_made is not None or stacktrace is not None:
        argv += ["" if attempts_made is None else attempts_made, stacktrace or ""]
    return argv


def move_to_finished_args(
    keys: QueueKeys,
    job_id: str,
    *,
    kind: str,
    token: str,
    finished_on: int,
    value: str,
    keep_count: int,
    keep_age: int | None,
    event_payload: str,
    fetch_next: bool,
    lock_duration: int,
    metrics_max_points: int | None = None,
    attempts_made: int | None = None,
    stacktrace: str | None = None,
) -> ScriptArgs:
    """moveToFinished-9; ``kind`` is ``completed`` or ``failed``.

    ``value`` goes to ``returnvalue`` (completed) or ``failedReason`` (failed).
    ``attempts_made``/``stacktrace`` fill the optional ARGV[13..14].
    """
    argv = _finished_argv(
        keys.base, job_id=job_id, finished_on=finished_on,
        field="returnvalue" if kind == "completed" else "failedReason", value=value,
        token=token, keep_json=_keep_jobs(keep_count, keep_age), event_payload=event_payload,
        fetch_next=fetch_next, lock_duration=lock_duration,
        metrics_max_points=metrics_max_points, attempts_made=attempts_made,
        stacktrace=stacktrace,
    )
    keys_list = _move_to_finished_keys(keys, kind, keys.job(job_id), token)
    return _checked("moveToFinished", keys_list, argv)


def move_to_delayed_args(
    keys: QueueKeys,
    job_id: str,
    *,
    token: str,
    score: int,
    attempts_made: int | None = None,
    stacktrace: str | None = None,
    failed_reason: str | None = None,
) -> ScriptArgs:
    """moveToDelayed-4; the attempt fields fill the optional ARGV[4..6]."""
    keys_list = [keys.active, keys.delayed, keys.job(job_id), keys.stalled]
    argv: list[Arg] = [score, job_id, token, *_attempt(attempts_made, stacktrace, failed_reason)]
    return _checked("moveToDelayed", keys_list, argv)


def retry_job_args(
    keys: QueueKeys,
    job_id: str,
    *,
    token: str,
    lifo: bool,
    attempts_made: int | None = None,
    stacktrace: str | None = None,
    failed_reason: str | None = None,
) -> ScriptArgs:
    """retryJob-7; the attempt fields fill the optional ARGV[4..6]."""
    keys_list = [
        keys.active,
        keys.wait,
        keys.job(job_id),
        keys.meta_paused,
        keys.paused,
        keys.stalled,
        keys.priority,
    ]
    argv: list[Arg] = [
        _push(lifo), job_id, token, *_attempt(attempts_made, stacktrace, failed_reason)
    ]
    return _checked("retryJob", keys_list, argv)


def move_stalled_jobs_to_wait_args(
    keys: QueueKeys, *, max_stalled_count: int, now: int, stalled_interval: int
) -> ScriptArgs:
    """moveStalledJobsToWait-7."""
    keys_list = [
        keys.stalled,
        keys.wait,
        keys.active,
        keys.failed,
        keys.stalled_check,
        keys.meta_paused,
        keys.paused,
    ]
    argv: list[Arg] = [max_stalled_count, keys.base, now, stalled_interval]
    return _checked("moveStalledJobsToWait", keys_list, argv)


def extend_lock_args(keys: QueueKeys, job_id: str, *, token: str, duration: int) -> ScriptArgs:
    """extendLock-2."""
    return _checked(
        "extendLock", [keys.lock(job_id), keys.stalled], [token, duration, job_id]
    )


def take_lock_args(keys: QueueKeys, job_id: str, *, token: str, duration: int) -> ScriptArgs:
    """takeLock-1."""
    return _checked("takeLock", [keys.lock(job_id)], [token, duration])


def release_lock_args(keys: QueueKeys, job_id: str, *, token: str) -> ScriptArgs:
    """releaseLock-1."""
    return _checked("releaseLock", [keys.lock(job_id)], [token])


def update_delay_set_args(keys: QueueKeys, *, now: int, token: str) -> ScriptArgs:
    """updateDelaySet-6."""
    keys_list = [
        keys.delayed,
        keys.active,
        keys.wait,
        keys.priority,
        keys.paused,
        keys.meta_paused,
    ]
    return _checked("updateDelaySet", keys_list, [keys.base, now, token])


def promote_args(keys: QueueKeys, job_id: str, *, token: str) -> ScriptArgs:
    """promote-5."""
    keys_list = [keys.delayed, keys.wait, keys.paused, keys.meta_paused, keys.priority]
    return _checked("promote", keys_list, [keys.base, job_id, token])


def pause_args(keys: QueueKeys, *, paused: bool) -> ScriptArgs:
    """pause-5: pause renames wait to paused, resume the reverse."""
    if paused:
        keys_list = [keys.wait, keys.paused, keys.meta_paused, keys.channel("paused"), keys.meta]
        return _checked("pause", keys_list, ["paused"])
    keys_list = [keys.paused, keys.wait, keys.meta_paused, keys.channel("resumed"), keys.meta]
    return _checked("pause", keys_list, ["resumed"])


def _state_keys(k: QueueKeys) -> list[str]:
    return [k.active, k.wait, k.delayed, k.paused, k.completed, k.failed, k.priority]


def remove_job_args(keys: QueueKeys, job_id: str, *, token: str) -> ScriptArgs:
    """removeJob-10."""
    keys_list = [*_state_keys(keys), keys.job(job_id), keys.logs(job_id), keys.limiter]
    return _checked("removeJob", keys_list, [job_id, token])


def remove_jobs_args(keys: QueueKeys, *, pattern: str, cursor: str) -> ScriptArgs:
    """removeJobs-8: ``pattern`` is a glob over job ids."""
    keys_list = [*_state_keys(keys), keys.limiter]
    return _checked("removeJobs", keys_list, [keys.base, pattern, cursor])


def remove_repeatable_args(keys: QueueKeys, *, id_prefix: str, repeat_key: str) -> ScriptArgs:
    """removeRepeatable-2: ``id_prefix`` is ``repeat:<md5>:``."""
    return _checked(
        "removeRepeatable", [keys.repeat, keys.delayed], [id_prefix, repeat_key, keys.base]
    )


def update_progress_args(
    keys: QueueKeys, job_id: str, *, progress_json: str, event_payload: str
) -> ScriptArgs:
    """updateProgress-2."""
    return _checked(
        "updateProgress",
        [keys.job(job_id), keys.channel("progress")],
        [progress_json, event_payload],
    )


def update_data_args(keys: QueueKeys, job_id: str, *, data_json: str) -> ScriptArgs:
    """updateData-1."""
    return _checked("updateData", [keys.job(job_id)], [data_json])


def clean_jobs_in_set_args(
    keys: QueueKeys, state: str, *, max_timestamp: int, limit: int
) -> ScriptArgs:
    """cleanJobsInSet-3; ``state`` is wait, active, paused, delayed, completed or failed."""
    keys_list = [keys.key(state), keys.priority, keys.limiter]
    return _checked("cleanJobsInSet", keys_list, [keys.base, max_timestamp, limit, state])


def obliterate_args(keys: QueueKeys, *, count: int, force: bool) -> ScriptArgs:
    """obliterate-2."""
    return _checked(
        "obliterate", [keys.meta_paused, keys.base], [count, "force" if force else ""]
    )


def add_log_args(
    keys: QueueKeys, job_id: str, *, line: str, keep_logs: int | None = None
) -> ScriptArgs:
    """addLog-2."""
    return _checked(
        "addLog",
        [keys.job(job_id), keys.logs(job_id)],
        [job_id, line, "" if keep_logs is None else keep_logs],
    )


def reprocess_job_args(
    keys: QueueKeys, job_id: str, *, lifo: bool, token: str, now: int
) -> ScriptArgs:
    """reprocessJob-6 (always from the failed set, as Node does)."""
    keys_list = [
        keys.job(job_id),
        keys.lock(job_id),
        keys.failed,
        keys.wait,
        keys.meta_paused,
        keys.paused,
    ]
    return _checked("reprocessJob", keys_list, [job_id, _push(lifo), token, now])


def retry_jobs_args(keys: QueueKeys, *, count: int) -> ScriptArgs:
    """retryJobs-5."""
    keys_list = [keys.base, keys.failed, keys.wait, keys.meta_paused, keys.paused]
    return _checked("retryJobs", keys_list, [count])


def is_finished_args(keys: QueueKeys, job_id: str) -> ScriptArgs:
    """isFinished-2."""
    return _checked("isFinished", [keys.completed, keys.failed], [job_id])


def get_counts_per_priority_args(keys: QueueKeys, priorities: Sequence[int]) -> ScriptArgs:
    """getCountsPerPriority-4."""
    keys_list = [keys.wait, keys.paused, keys.meta_paused, keys.priority]
    return _checked("getCountsPerPriority", keys_list, list(priorities))


def is_job_in_list_args(list_key: str, job_id: str) -> ScriptArgs:
    """isJobInList-1; ``list_key`` comes from :class:`QueueKeys`."""
    return _checked("isJobInList", [list_key], [job_id])


# --- the client ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AddJobSpec:
    """One job of :meth:`Scripts.add_jobs`: the ``add_job`` fields except the token."""

    job_id: str
    name: str
    data: str
    opts: str
    timestamp: int
    delay: int
    priority: int
    lifo: bool


_Registry: TypeAlias = dict[str, "AsyncScript"]
_REGISTERED: weakref.WeakKeyDictionary[aioredis.Redis, _Registry] = (
    weakref.WeakKeyDictionary()
)


def _registered(client: aioredis.Redis) -> _Registry:
    """Register every script once per client (redis-py reloads after SCRIPT FLUSH)."""
    scripts = _REGISTERED.get(client)
    if scripts is None:
        scripts = {
            name.rsplit("-", 1)[0]: client.register_script(load_source(name))
            for name in SCRIPT_NAMES
        }
        _REGISTERED[client] = scripts
    return scripts


def _job_reply(raw: Any) -> JobReply | None:
    if not isinstance(raw, list):
        return None
    flat, job_id = raw
    return dict(zip(flat[::2], flat[1::2], strict=True)), job_id.decode()


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
        self._s = _registered(client)
        self._add_job_keys = _add_job_keys(keys)
        self._mta_keys: dict[str, list[str]] = {}
        # moveToFinished keys around the per-job key and the per-token channel.
        self._mtf_head = {kind: [keys.active, keys.finished_set(kind)] for kind in _KINDS}
        self._mtf_mid = [keys.wait, keys.priority]
        self._mtf_tail = {kind: [keys.delayed, keys.stalled, keys.metrics(kind)] for kind in _KINDS}
        self._active_channels: dict[str, str] = {}
        self._keep: dict[tuple[int, int | None], str] = {}

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
            spec = self._keep[(count, age)] = _keep_jobs(count, age)
        return spec

    async def _fast_pipelined(
        self, script: AsyncScript, calls: Sequence[ScriptArgs], transaction: bool
    ) -> list[Any]:
        assert self._fast is not None
        # SCRIPT LOAD first in the same write: inside MULTI a missing script
        # would only be reported at EXEC, after every call had failed.
        load = _fast_encode(("SCRIPT", "LOAD", cast("str", script.script)))
        body = b"".join(self._encoded_calls(script.sha, calls))
        n = len(calls)
        if transaction:
            payload = load + _MULTI + body + _EXEC
            replies = await self._fast.send_encoded(payload, n + 3)
            results = replies[-1]
            if isinstance(results, Exception):
                raise results
            for reply in replies[:2]:
                if isinstance(reply, Exception):
                    raise reply
        else:
            replies = await self._fast.send_encoded(load + body, n + 1)
            results = replies[1:]
        for result in results:
            if isinstance(result, Exception):
                raise result
        return list(results)

    @staticmethod
    def _encoded_calls(sha: str, calls: Sequence[ScriptArgs]) -> list[bytes]:
        """EVALSHA commands, encoding each distinct key list once (bulk adds share one)."""
        out: list[bytes] = []
        i = 0
        while i < len(calls):
            keys = calls[i][0]
            j = i
            while j < len(calls) and calls[j][0] is keys:
                j += 1
            payload, _ = encode_calls(
                ("EVALSHA", sha, len(keys), *keys), [args for _, args in calls[i:j]]
            )
            out.append(payload)
            i = j
        return out

    async def _exec(
        self, sha: str, calls: Sequence[ScriptArgs], transaction: bool
    ) -> list[Any]:
        pipe = self._client.pipeline(transaction=transaction)
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results

    async def _pipelined(
        self, command: str, calls: Sequence[ScriptArgs], *, transaction: bool
    ) -> list[Any]:
        """Run one script many times in one round trip, reloading it on NOSCRIPT.

        redis-py's own pipeline support asks SCRIPT EXISTS on every execute, an
        extra round trip; here the script is loaded only when Redis lacks it.
        """
        script = self._s[command]
        if self._fast is not None:
            return await self._fast_pipelined(script, calls, transaction)
        results = await self._exec(script.sha, calls, transaction)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            # Inside MULTI a missing script fails every call and none ran, so
            # rerunning exactly the failed calls is safe in both modes.
            script.sha = await self._client.script_load(script.script)
            again = await self._exec(script.sha, [calls[i] for i in missing], transaction)
            for i, value in zip(missing, again, strict=True):
                results[i] = value
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

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
        argv = _add_job_argv(
            self._base, job_id=job_id, name=name, data=data, opts=opts, timestamp=timestamp,
            delay=delay, priority=priority, lifo=lifo, token=token,
        )
        raw: bytes = await self._eval("addJob", self._add_job_keys, argv)
        return raw.decode()

    async def add_jobs(self, jobs: Sequence[AddJobSpec], token: str) -> list[str]:
        """Add many jobs atomically in one script call. Returns their ids in order."""
        if not jobs:
            return []
        keys, args = add_jobs_args(self._keys, jobs, token=token)
        raw = await self._eval("addJobs", keys, args)
        return [item.decode() for item in raw]

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
    ) -> JobReply | None:
        """Start a job (moveToActive-8).

        Returns:
            ``(hash, id)`` of the started job, or None when nothing was
            fetched, the job was rate limited or its hash was missing.
        """
        keys = self._mta_keys.get(token)
        if keys is None:
            keys = self._mta_keys[token] = _move_to_active_keys(self._keys, token)
        argv = _move_to_active_argv(
            self._base, token=token, lock_duration=lock_duration, now=now, job_id=job_id,
            limiter_max=limiter_max, limiter_duration=limiter_duration,
            bounce_back=bounce_back, group_key=group_key,
        )
        return _job_reply(await self._eval("moveToActive", keys, argv))

    def _finished_keys(self, kind: str, job_id: str, token: str) -> list[str]:
        return [
            *self._mtf_head[kind],
            self._keys.job(job_id),
            *self._mtf_mid,
            self._active_channel(token),
            *self._mtf_tail[kind],
        ]

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
    ) -> JobReply | None:
        """Complete an active job (moveToFinished-9 into ``completed``).

        Returns:
            The next job ``(hash, id)`` when ``fetch_next`` found one, else None.

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3.
        """
        argv = _finished_argv(
            self._base, job_id=job_id, finished_on=finished_on, field="returnvalue",
            value=return_value, token=token, keep_json=self._keep_json(keep_count, keep_age),
            event_payload=event_payload, fetch_next=fetch_next, lock_duration=lock_duration,
            metrics_max_points=metrics_max_points, attempts_made=None, stacktrace=None,
        )
        keys = self._finished_keys("completed", job_id, token)
        raw = await self._eval("moveToFinished", keys, argv)
        if isinstance(raw, int):
            if raw < 0:
                raise script_error(raw, job_id, "finished")
            return None
        return _job_reply(raw)

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
    ) -> None:
        """Finally fail an active job, writing its last attempt (moveToFinished-9).

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3.
        """
        argv = _finished_argv(
            self._base, job_id=job_id, finished_on=finished_on, field="failedReason",
            value=failed_reason, token=token, keep_json=self._keep_json(keep_count, keep_age),
            event_payload=event_payload, fetch_next=False, lock_duration=0,
            metrics_max_points=metrics_max_points, attempts_made=attempts_made,
            stacktrace=stacktrace,
        )
        raw = await self._eval("moveToFinished", self._finished_keys("failed", job_id, token), argv)
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
        """Park an active job in ``delayed`` (moveToDelayed-4); see :func:`delayed_score`.

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

    async def extend_locks(
        self, job_ids: Sequence[str], *, token: str, duration: int
    ) -> list[bool]:
        """Renew many locks in one pipelined round trip (no transaction)."""
        if not job_ids:
            return []
        calls = [
            extend_lock_args(self._keys, job_id, token=token, duration=duration)
            for job_id in job_ids
        ]
        results = await self._pipelined("extendLock", calls, transaction=False)
        return [bool(r) for r in results]

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

    async def remove_repeatable(self, *, id_prefix: str, repeat_key: str) -> None:
        """Drop a repeat config and its delayed instance (removeRepeatable-2)."""
        built = remove_repeatable_args(self._keys, id_prefix=id_prefix, repeat_key=repeat_key)
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

