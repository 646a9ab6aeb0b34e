"""Operating pyqueue: search, the ``pyqueue`` CLI, metrics, health and tracing.

A layer above the public API: these modules use ``pyqueue``'s public classes and
the key and wire modules of ``pyqueue._protocol``; nothing below imports them.
Optional dependencies (click, rich, prometheus-client, opentelemetry) are
imported only by the modules that need them, so ``pyqueue.tools.search`` works
with the core install.
"""
