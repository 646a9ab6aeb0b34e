"""``python -m bookwish_jobs`` is ``python -m bookwish_jobs.worker``."""

import sys

from bookwish_jobs.worker import main

sys.exit(main())
