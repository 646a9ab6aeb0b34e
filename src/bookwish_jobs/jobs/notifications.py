"""``notifications``: push to every token of the user; email too for critical types.

Delivery is recorded per push token and per email address in bookwish_jobs' own
``notification_delivery`` table, as each push request (at most 100 tokens) or the email
succeeds, so a retry only sends to targets that did not get it yet.

What Expo answers, and what the job does (see ``services/push.py``):

- ticket ``DeviceNotRegistered``: the token is deleted.
- ticket ``MessageRateExceeded``: the token is kept and the attempt fails; the retry
  (exponential backoff) pushes only to tokens without a delivery record.
- ticket ``MessageTooBig``, ``InvalidCredentials`` or anything else: the token is kept
  and ``push.ticket_error`` logged (``InvalidCredentials`` at error level: the app's
  push credentials are broken for everyone). No retry, since the same message or
  credentials would fail again; the job completes with a ``failed`` count.
- request answered 429, 5xx, or no answer: the attempt fails and the job's retry
  resends to the undelivered tokens.
- request refused with ``PUSH_TOO_MANY_EXPERIENCE_IDS`` (the user has tokens of
  several Expo projects, e.g. an old build): one request per project.
- request refused otherwise (any other 4xx): ``UnrecoverableError`` naming Expo's
  error codes; retrying the same request cannot help.

The email of a critical type is sent even when the pushes fail, before the job
fails or retries; its delivery record keeps a retry from sending it twice.

As in the Node app: every payload its interface accepts is sent (a title or body too
long for Expo is shortened in the push only, see ``services/push.py``; the email
carries it whole, and an empty title makes an empty subject); a user that no longer
exists gets nothing and the job completes, its result saying ``userFound: false``
(no retry, no alert). The result's keys are camelCase, as Node code reading
``job.returnvalue`` expects. A notification whose ``notificationId`` is empty has
nothing to key delivery records on: it is sent without them, as Node sends it.

Expo's push receipts (``/--/api/v2/push/getReceipts``) are not polled. They are
ready only after Expo has handed the message to Apple or Google (Expo advises
checking about 15 minutes later), so polling inside this job would hold a worker
slot for minutes, and a delayed follow-up job would be a job kind that the Node
app's workers on the same ``notifications`` queue have no handler for. The cost: a
token that only a receipt reports as ``DeviceNotRegistered`` is not deleted, and
a delivery record means "accepted by Expo", not "shown on the device".

The ``Notification`` row is not written. It belongs to the Node app, which creates
it (the in-app inbox entry) before queueing the job; its columns (``type``,
``title``, ``body``, ``orderId``, ``isRead``, ``createdAt``) describe the message
and the user's read state, and none of them is a delivery status. What was
delivered, where and when is in ``notification_delivery`` (bookwish_jobs' own
table), keyed by ``notificationId``.

With no push service configured (no ``EXPO_PUSH_URL``), nothing is pushed and no
push delivery is recorded, so a retry after the service is configured still sends.
"""

from __future__ import annotations

import html
import logging
from collections import deque
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import new_id, utcnow
from bookwish_jobs.own_models import NotificationDelivery
from bookwish_jobs.payloads import NotificationPayload
from bookwish_jobs.progress import NO_REPORT, Report
from bookwish_jobs.services.email import build_message, paragraphs
from bookwish_jobs.services.push import (
    DEVICE_NOT_REGISTERED,
    INVALID_CREDENTIALS,
    MAX_BATCH,
    MESSAGE_RATE_EXCEEDED,
    PushMessage,
    PushRequestRejected,
    PushServiceError,
    PushTicket,
    fit_for_expo,
)
from pyqueue import Backoff, JobHandle, JobOptions, UnrecoverableError

CRITICAL_TYPES = frozenset({"order_update", "payment_issue", "premium_subscription_expiring"})
OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=2_000),
    remove_on_complete=True,
    remove_on_fail=False,
    timeout=30_000,
)
# Ticket errors where another try may succeed; any other ticket error is final.
_RETRYABLE_TICKET_ERRORS = frozenset({MESSAGE_RATE_EXCEEDED})


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
    if not notification_id:
        return set()
    rows = session.scalars(
        select(NotificationDelivery.target).where(
            NotificationDelivery.notification_id == notification_id,
            NotificationDelivery.channel == channel,
        )
    )
    return set(rows)


def _record(ctx: AppContext, notification_id: str, channel: str,
            targets: list[tuple[str, str | None]]) -> None:
    """Record ``(target, provider id)`` deliveries in one statement; a target another
    attempt recorded first is left as it is."""
    if not notification_id or not targets:
        return
    rows = [{"id": new_id(), "notification_id": notification_id, "channel": channel,
             "target": target, "provider_id": provider_id, "delivered_at": utcnow()}
            for target, provider_id in targets]
    with ctx.db.transaction() as s:
        dialect = s.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        s.execute(insert(NotificationDelivery).on_conflict_do_nothing(), rows)


def _by_project(batch: list[str], projects: list[list[str]]) -> list[list[str]]:
    """``batch`` split into one batch per Expo project (tokens Expo did not name go last)."""
    project_of = {token: i for i, tokens in enumerate(projects) for token in tokens}
    groups: dict[int, list[str]] = {}
    for token in batch:
        groups.setdefault(project_of.get(token, len(projects)), []).append(token)
    return [groups[key] for key in sorted(groups)]


def _push(ctx: AppContext, p: NotificationPayload, tokens: list[str]) -> dict[str, int]:
    # The design's push data, exactly: the app opens the notification by its id.
    data: dict[str, Any] = {"notificationId": p.notification_id, "type": p.type}
    pushed = removed = failed = not_sent = 0
    retry: list[str] = []
    batches = deque(tokens[i : i + MAX_BATCH] for i in range(0, len(tokens), MAX_BATCH))
    fitted = fit_for_expo(PushMessage(to="", title=p.title, body=p.body, data=data))
    if tokens and (fitted.title, fitted.body) != (p.title, p.body):
        log_event("push.shortened", notification_id=p.notification_id,
                  title_chars=len(p.title), body_chars=len(p.body))
    while batches:
        batch = batches.popleft()
        messages = [PushMessage(to=t, title=fitted.title, body=fitted.body, data=data)
                    for t in batch]
        try:
            tickets: list[PushTicket] = ctx.push.send(messages)
        except PushRequestRejected as exc:
            groups = _by_project(batch, exc.projects) if exc.projects else [batch]
            if len(groups) < 2:
                raise
            log_event("push.split_by_project", user_id=p.user_id, projects=len(groups))
            batches.extendleft(reversed(groups))
            continue
        delivered: list[tuple[str, str | None]] = []
        for token, ticket in zip(batch, tickets, strict=True):
            if ticket.ok and not ticket.delivered:
                not_sent += 1
            elif ticket.ok:
                delivered.append((token, ticket.id))
                pushed += 1
            elif ticket.error == DEVICE_NOT_REGISTERED:
                push_token = ctx.db.node.push_token
                with ctx.db.transaction() as s:
                    s.execute(delete(push_token).where(push_token.c.token == token))
                log_event("push.token_removed", user_id=p.user_id, reason=ticket.error)
                removed += 1
            else:
                failed += 1
                # Broken push credentials affect every user: make them loud.
                level = logging.ERROR if ticket.error == INVALID_CREDENTIALS else logging.WARNING
                log_event("push.ticket_error", level, user_id=p.user_id,
                          notification_id=p.notification_id, error=ticket.error,
                          message=ticket.message)
                if ticket.error in _RETRYABLE_TICKET_ERRORS:
                    retry.append(token)
        # As each request returns: a later request of this attempt may fail.
        _record(ctx, p.notification_id, "push", delivered)
    if retry:
        raise PushDeliveryError(f"{len(retry)} push ticket(s) to retry")
    out = {"pushed": pushed, "removedTokens": removed, "failed": failed}
    if not_sent:
        log_event("push.not_configured", logging.WARNING, notification_id=p.notification_id,
                  tokens=not_sent)
        out["notSent"] = not_sent
    return out


def process(job: JobHandle[NotificationPayload], ctx: AppContext,
            report: Report = NO_REPORT) -> dict[str, Any]:
    p = job.data
    user, push_token = ctx.db.node.user, ctx.db.node.push_token
    with ctx.db.transaction() as s:
        found = s.execute(select(user.c.email).where(user.c.id == p.user_id)).first()
        # As prisma.pushToken.findMany({where: {userId}}): whether or not the user exists.
        tokens = list(s.scalars(select(push_token.c.token)
                                .where(push_token.c.userId == p.user_id)))
        done_push = _delivered(s, p.notification_id, "push")
        done_email = _delivered(s, p.notification_id, "email")
    email = found.email if found is not None else None
    if found is None:
        log_event("notification.user_missing", notification_id=p.notification_id,
                  user_id=p.user_id, note="no such user: nothing to email (as in Node)")
    todo = [t for t in tokens if t not in done_push]
    report.log(f"{len(todo)} of {len(tokens)} push tokens to send to")
    result: dict[str, Any] = {"userFound": found is not None, "skipped": len(tokens) - len(todo),
                              "emailed": False}
    push_error: Exception | None = None
    try:
        result |= _push(ctx, p, todo)
    except (PushServiceError, PushDeliveryError) as exc:
        push_error = exc  # still send the email below, then retry the pushes
    except PushRequestRejected as exc:
        push_error = UnrecoverableError(f"{exc} (the push request is invalid: not retried)")
    if p.type in CRITICAL_TYPES and email and email not in done_email:
        text, html_body = render_email(p)
        ctx.mailer.send(build_message(sender=ctx.settings.mail_from, to=email,
                                      subject=p.title, text=text, html_body=html_body))
        _record(ctx, p.notification_id, "email", [(email, None)])
        result["emailed"] = True
    if push_error is not None:
        raise push_error
    report.log(f"done: {result}")
    log_event("notification.sent", notification_id=p.notification_id, **result)
    return result
