"""One module per queue: payload model, job options and ``process(job, ctx)``."""
