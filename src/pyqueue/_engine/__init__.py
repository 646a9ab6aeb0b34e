"""The worker engine: fetching, finishing, locks, maintenance, processing, sandbox."""
