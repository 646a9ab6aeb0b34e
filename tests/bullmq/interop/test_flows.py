"""Flows: children of a Node-made flow, processed by pyqueue's scripts, move their
parent exactly as a Node BullMQ Worker would; and the other way round.

A flow (a parent in queue P, children in queue C) is added twice by Node's
FlowProducer; the children of one copy are processed by a Node Worker, those of
the other by pyqueue's script calls; the parent and child queues of both copies
must then hold the same state. The parent's failure options are each covered:
none (the parent keeps waiting), failParentOnFailure, continueParentOnFailure,
ignoreDependencyOnFailure and removeDependencyOnFailure.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.bullmq.nodebullmq import NodeBullMQ, single
from tests.bullmq.pyworker import work
from tests.bullmq.state import snapshot

from pyqueue._protocol.bullmq.protocol import BullMQProtocol

_WORKER_ONLY = ("marker", "stalled", "stalled-check")
BEHAVIOUR: dict[str, dict[str, Any]] = {
    "child": {"return": {"made": "by child"}},
    "bad-child": {"fail": "child broke"},
    "parent": {"childrenValues": True},
}


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"fp-{tag}", f"fc-{tag}"


def _flow(parents: str, children: str, child_opts: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "parent", "queueName": parents, "data": {"p": 1},
        "children": [
            {"name": "child", "queueName": children, "data": {"c": 1}},
            {"name": "bad-child", "queueName": children, "data": {"c": 2}, "opts": child_opts},
            {"name": "child", "queueName": children, "data": {"c": 3}},
        ],
    }


async def _add_flow(node: NodeBullMQ, parents: str, children: str,
                    child_opts: dict[str, Any]) -> list[str]:
    """Add the flow with Node's FlowProducer; the ids, parent first, in tree order."""
    added = single(await node.arun({"queue": parents, "action": "flow",
                                    "flow": _flow(parents, children, child_opts)}), "added")
    return [node_["id"] for node_ in added["ids"]]


async def _state(raw: aioredis.Redis, queue: str, rename: dict[str, str]) -> Any:
    state = await snapshot(raw, f"bull:{queue}:", skip=_WORKER_ONLY)
    state.get("meta", {}).get("value", {}).pop("version", None)
    text = json.dumps(state)
    for old, new in rename.items():
        text = text.replace(old, new)
    renamed: dict[str, Any] = json.loads(text)
    for name in ("completed", "failed", "waiting-children"):  # sets sorted by the new names
        if name in renamed:
            renamed[name]["value"].sort()
    return renamed


@pytest.mark.parametrize(
    ("child_opts", "parent_state"),
    [
        ({}, "waiting-children"),
        ({"failParentOnFailure": True}, "failed"),
        ({"continueParentOnFailure": True}, "completed"),
        ({"ignoreDependencyOnFailure": True}, "completed"),
        ({"removeDependencyOnFailure": True}, "completed"),
    ],
    ids=["none", "fail-parent", "continue-parent", "ignore", "remove-dependency"],
)
async def test_children_processed_by_pyqueue_move_the_parent_as_node_does(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, child_opts: dict[str, Any],
    parent_state: str,
) -> None:
    node_p, node_c = _names()
    py_p, py_c = _names()
    rename = {py_p: "<P>", py_c: "<C>", node_p: "<P>", node_c: "<C>"}
    parent_ids = []
    for parents, children in ((node_p, node_c), (py_p, py_c)):
        ids = await _add_flow(node_bullmq, parents, children, child_opts)
        # FlowProducer names jobs with fresh UUIDs: compare by place in the tree.
        rename.update({job_id: f"<job {i}>" for i, job_id in enumerate(ids)})
        parent_ids.append(ids[0])
    done = single(await node_bullmq.arun({"queue": node_c, "action": "process", "until": 3,
                                          "behaviour": BEHAVIOUR}), "done")
    assert done["reason"] == "until"
    await work(BullMQProtocol(raw_redis, "bull", py_c), BEHAVIOUR, until=3)
    # The parent's queue, then (when the parent may run) a Node worker for it.
    assert await _state(raw_redis, py_p, rename) == await _state(raw_redis, node_p, rename)
    assert await _state(raw_redis, py_c, rename) == await _state(raw_redis, node_c, rename)
    if parent_state != "waiting-children":
        for parents in (node_p, py_p):
            await node_bullmq.arun({"queue": parents, "action": "process", "until": 1,
                                    "behaviour": BEHAVIOUR})
    for parents, parent_id in zip((node_p, py_p), parent_ids, strict=True):
        state = await node_bullmq.state(parents, [parent_id])
        assert state["jobs"][0]["state"] == parent_state
    parent = (await node_bullmq.state(py_p, [parent_ids[1]]))["jobs"][0]["json"]
    if parent_state == "completed":
        values = parent["returnvalue"]
        assert sorted(values.values(), key=repr) == [{"made": "by child"}] * 2
    if parent_state == "failed":
        assert parent["failedReason"].startswith("child bull:")
        assert parent["failedReason"].endswith(" failed")


async def test_pyqueue_completes_a_parent_whose_children_node_ran(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    parents, children = _names()
    parent_id = (await _add_flow(node_bullmq, parents, children,
                                 {"ignoreDependencyOnFailure": True}))[0]
    await node_bullmq.arun({"queue": children, "action": "process", "until": 3,
                            "behaviour": BEHAVIOUR})
    proto = BullMQProtocol(raw_redis, "bull", parents)
    assert await proto.get_state(parent_id) == "waiting"
    await work(proto, {"parent": {"return": "all done"}}, until=1)
    deps = await node_bullmq.admin(parents, "getDependencies", id=parent_id)
    assert deps["ok"]
    assert len(deps["value"]["processed"]) == 2
    assert len(deps["value"]["ignored"]) == 1
    state = await node_bullmq.state(parents, [parent_id])
    assert state["jobs"][0]["state"] == "completed"
    assert state["jobs"][0]["json"]["returnvalue"] == "all done"


async def test_retrying_a_failed_child_makes_it_pending_again(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    parents, children = _names()
    parent_id = (await _add_flow(node_bullmq, parents, children, {}))[0]
    proto = BullMQProtocol(raw_redis, "bull", children)
    await work(proto, BEHAVIOUR, until=3)
    deps = (await node_bullmq.admin(parents, "getDependencies", id=parent_id))["value"]
    assert len(deps["unprocessed"]) == 1
    failed_child = await proto.get_job_ids("failed", 0, -1, asc=True)
    await proto.reprocess(failed_child[0], state="failed", lifo=False)
    await work(proto, {"bad-child": {"return": "fixed"}}, until=1)
    assert (await node_bullmq.state(parents, [parent_id]))["jobs"][0]["state"] == "waiting"
