"""Queue names, shared with the Node app (Bull queue names must match exactly)."""

from __future__ import annotations

NOTIFICATIONS = "notifications"
SQUARE_SYNC = "square-sync"
RESERVATION_CLEANUP = "reservation-cleanup"
ORDER_DIGEST = "order-digest"

QUEUE_NAMES: tuple[str, ...] = (NOTIFICATIONS, SQUARE_SYNC, RESERVATION_CLEANUP, ORDER_DIGEST)
DEFAULT_CONCURRENCY: dict[str, int] = {
    NOTIFICATIONS: 5,
    SQUARE_SYNC: 2,
    RESERVATION_CLEANUP: 1,
    ORDER_DIGEST: 1,
}
