"""A web dashboard for pyqueue (and Node Bull) queues: ``pip install 'pyqueue-bull[dashboard]'``.

``create_app(redis_url, prefix)`` builds the ASGI app, ``mount(app, path, redis_url)``
adds it to a Starlette or FastAPI app, ``serve(...)`` runs it under uvicorn.
"""

from pyqueue.tools.dashboard.app import DashboardApp, create_app
from pyqueue.tools.dashboard.server import mount, serve

__all__ = ["DashboardApp", "create_app", "mount", "serve"]
