"""bookwish_jobs: BookWish's four background queues, run on pyqueue.

See :mod:`bookwish_jobs.registry` for the whole service on one screen and
``python -m bookwish_jobs.worker --help`` for running it.
"""
