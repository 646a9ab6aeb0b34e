"""Job data as the Node BookWish app puts it on the wire: its TypeScript interfaces.

Python code uses snake_case attributes; JSON on the wire is the Node app's camelCase
(pydantic aliases). Reading accepts either spelling and ignores unknown fields, so the
Node app can add a field without breaking the Python workers. Optional fields that are
unset are left out of the JSON, as ``JSON.stringify`` leaves out ``undefined``. Every
payload the Node interfaces accept is accepted: any string, empty or long (the
notifications job shortens a push for Expo's size limit, never the email):

- ``notifications``: ``{notificationId, userId, type, title, body, orderId?, orderNumber?}``
- ``square-sync``: ``{storeId}``
- ``reservation-cleanup``: ``{}``
- ``order-digest``: ``{type: 'daily'}``
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel


class NodePayload(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              serialize_by_alias=True)

    @model_serializer(mode="wrap")
    def _without_unset_optionals(self, handler: SerializerFunctionWrapHandler) -> Any:
        # pyqueue serialises a model with plain model_dump_json(); None means
        # "absent" in the Node interfaces (``orderId?: string``), so leave it out.
        out = handler(self)
        if isinstance(out, dict):
            return {k: v for k, v in out.items() if v is not None}
        return out


class NotificationPayload(NodePayload):
    notification_id: str
    user_id: str
    type: str
    title: str
    body: str
    order_id: str | None = None
    order_number: str | None = None


class SquareSyncPayload(NodePayload):
    store_id: str


class ReservationCleanupPayload(NodePayload):
    pass


class OrderDigestPayload(NodePayload):
    type: str = "daily"
