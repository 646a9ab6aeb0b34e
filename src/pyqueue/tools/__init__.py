"""Operating pyqueue: search, the ``pyqueue`` CLI, the doctor, metrics, health and tracing.

A layer above the public API: these modules use ``pyqueue``'s public classes and
:mod:`pyqueue.monitoring` (read-only views, and the queues' key names through
``monitoring.queue_keys`` and ``Queue.keys``), never a private module (a test
checks it); nothing below imports them.
Optional dependencies (click, rich, prometheus-client, opentelemetry) are
imported only by the modules that need them, so ``pyqueue.tools.search`` works
with the core install.
"""
