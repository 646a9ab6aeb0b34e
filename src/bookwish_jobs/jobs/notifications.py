"""``notifications``: push to every token of the user; email too for critical types.

Delivery is recorded per push token and per email address in
``NotificationDelivery``, so a retry only sends to targets that did not get it yet.
A token Expo reports as ``DeviceNotRegistered`` is deleted.
"""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import NotificationDelivery, PushToken, User
from bookwish_jobs.services.email import build_message, paragraphs
from bookwish_jobs.services.push import (
    DEVICE_NOT_REGISTERED,
    PushMessage,
    PushServiceError,
    PushTicket,
)
from pyqueue import Backoff, Job, JobOptions, UnrecoverableError

JOB_NAME = "send-notification"
CRITICAL_TYPES = frozenset({"order_update", "payment_issue", "premium_subscription_expiring"})
OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=2_000),
    remove_on_complete=True,
    remove_on_fail=False,
)
# Expo errors where another try may succeed; any other per-ticket error is final.
_RETRYABLE_TICKET_ERRORS = frozenset({"MessageRateExceeded"})


class NotificationPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notification_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(max_length=4000)
    order_id: str | None = None
    order_number: str | None = None


class PushDeliveryError(Exception):
    """Some tokens could not be pushed this time; the job is retried for them only."""


def render_email(p: NotificationPayload) -> tuple[str, str]:
    """``(text, html)`` bodies. Every user-provided value is HTML-escaped."""
    text = p.body
    html_body = f"<h1>{html.escape(p.title)}</h1>{paragraphs(p.body)}"
    if p.order_number:
        text += f"\n\nOrder {p.order_number}"
        html_body += f"<p>Order <strong>{html.escape(p.order_number)}</strong></p>"
    return text, f"<!doctype html><html><body>{html_body}</body></html>"


def _delivered(session: Session, notification_id: str, channel: str) -> set[str]:
    rows = session.scalars(
        select(NotificationDelivery.target).where(
            NotificationDelivery.notificationId == notification_id,
            NotificationDelivery.channel == channel,
        )
    )
    return set(rows)


def _record(ctx: AppContext, notification_id: str, channel: str, target: str,
            provider_id: str | None = None) -> None:
    try:
        with ctx.db.transaction() as s:
            s.add(NotificationDelivery(notificationId=notification_id, channel=channel,
                                       target=target, providerId=provider_id))
    except IntegrityError:
        pass  # a concurrent attempt recorded it first


def _push(ctx: AppContext, p: NotificationPayload, tokens: list[str]) -> dict[str, int]:
    data: dict[str, Any] = {"notificationId": p.notification_id, "type": p.type}
    if p.order_id:
        data["orderId"] = p.order_id
    messages = [PushMessage(to=t, title=p.title, body=p.body, data=data) for t in tokens]
    tickets: list[PushTicket] = ctx.push.send(messages) if messages else []
    pushed = removed = failed = 0
    retry: list[str] = []
    for token, ticket in zip(tokens, tickets, strict=True):
        if ticket.ok:
            _record(ctx, p.notification_id, "push", token, ticket.id)
            pushed += 1
        elif ticket.error == DEVICE_NOT_REGISTERED:
            with ctx.db.transaction() as s:
                s.execute(delete(PushToken).where(PushToken.token == token))
            log_event("push.token_removed", user_id=p.user_id, reason=ticket.error)
            removed += 1
        else:
            failed += 1
            log_event("push.ticket_error", user_id=p.user_id, error=ticket.error,
                      message=ticket.message)
            if ticket.error in _RETRYABLE_TICKET_ERRORS:
                retry.append(token)
    if retry:
        raise PushDeliveryError(f"{len(retry)} push ticket(s) to retry")
    return {"pushed": pushed, "removed_tokens": removed, "failed": failed}


def process(job: Job[NotificationPayload], ctx: AppContext) -> dict[str, Any]:
    p = job.data
    with ctx.db.transaction() as s:
        user = s.get(User, p.user_id)
        if user is None:
            raise UnrecoverableError(f"user {p.user_id} not found")
        email = user.email
        tokens = list(s.scalars(select(PushToken.token).where(PushToken.userId == p.user_id)))
        done_push = _delivered(s, p.notification_id, "push")
        done_email = _delivered(s, p.notification_id, "email")
    todo = [t for t in tokens if t not in done_push]
    result: dict[str, Any] = {"skipped": len(tokens) - len(todo), "emailed": False}
    push_error: Exception | None = None
    try:
        result |= _push(ctx, p, todo)
    except (PushServiceError, PushDeliveryError) as exc:
        push_error = exc  # still send the email below, then retry the pushes
    if p.type in CRITICAL_TYPES and email and email not in done_email:
        text, html_body = render_email(p)
        ctx.mailer.send(build_message(sender=ctx.settings.mail_from, to=email,
                                      subject=p.title, text=text, html_body=html_body))
        _record(ctx, p.notification_id, "email", email)
        result["emailed"] = True
    if push_error is not None:
        raise push_error
    log_event("notification.sent", notification_id=p.notification_id, **result)
    return result
