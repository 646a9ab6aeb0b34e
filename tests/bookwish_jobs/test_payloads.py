"""Job data is the Node app's interfaces on the wire; Python keeps snake_case."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from bookwish_jobs.payloads import (
    NotificationPayload,
    OrderDigestPayload,
    ReservationCleanupPayload,
    SquareSyncPayload,
)

NODE_NOTIFICATION = {"notificationId": "n1", "userId": "u1", "type": "order_update",
                     "title": "Ready", "body": "Pick it up", "orderId": "o1",
                     "orderNumber": "BW-1"}


def test_node_shaped_data_is_read_and_written_back_field_for_field() -> None:
    p = NotificationPayload.model_validate(NODE_NOTIFICATION)
    assert (p.notification_id, p.user_id, p.order_id, p.order_number) == ("n1", "u1", "o1", "BW-1")
    assert json.loads(p.model_dump_json()) == NODE_NOTIFICATION
    assert SquareSyncPayload.model_validate({"storeId": "s1"}).model_dump_json() == \
        '{"storeId":"s1"}'
    assert ReservationCleanupPayload.model_validate({}).model_dump_json() == "{}"
    assert OrderDigestPayload.model_validate({"type": "daily"}).model_dump_json() == \
        '{"type":"daily"}'
    assert OrderDigestPayload().model_dump_json() == '{"type":"daily"}'


def test_unset_optionals_are_left_out_as_json_stringify_leaves_out_undefined() -> None:
    p = NotificationPayload(notification_id="n", user_id="u", type="t", title="t", body="")
    assert json.loads(p.model_dump_json()) == {"notificationId": "n", "userId": "u",
                                               "type": "t", "title": "t", "body": ""}


def test_unknown_fields_are_ignored_so_the_node_app_can_add_one() -> None:
    p = SquareSyncPayload.model_validate({"storeId": "s1", "requestedBy": "admin"})
    assert p.model_dump_json() == '{"storeId":"s1"}'
    assert NotificationPayload.model_validate(NODE_NOTIFICATION | {"priority": "high"})


def test_python_names_are_accepted_too_and_bad_values_still_refused() -> None:
    assert SquareSyncPayload.model_validate({"store_id": "s1"}).store_id == "s1"
    with pytest.raises(ValidationError, match="storeId"):
        SquareSyncPayload.model_validate({})
    with pytest.raises(ValidationError, match="title"):
        NotificationPayload.model_validate(NODE_NOTIFICATION | {"title": None})
    with pytest.raises(ValidationError, match="body"):
        NotificationPayload.model_validate({k: v for k, v in NODE_NOTIFICATION.items()
                                            if k != "body"})


def test_every_string_the_node_interface_accepts_is_accepted() -> None:
    """``title: string``: empty, or longer than any push service takes (the job
    shortens the push, never the email)."""
    for fields in ({"title": ""}, {"title": "T" * 10_000}, {"body": "B" * 100_000},
                   {"notificationId": ""}, {"type": "not_a_known_type"}):
        p = NotificationPayload.model_validate(NODE_NOTIFICATION | fields)
        assert json.loads(p.model_dump_json()) == NODE_NOTIFICATION | fields
    assert SquareSyncPayload.model_validate({"storeId": ""}).store_id == ""
