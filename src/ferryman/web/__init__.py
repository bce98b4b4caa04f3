"""The web dashboard of ``ferryman serve --web``: jobs, runs, files, the only-new ledger and
charts, each page also as JSON, with a health endpoint and Prometheus metrics (docs/dashboard.md).

Only the standard library's HTTP server and Jinja2 (already a dependency); imported only when
``--web`` is given."""

from __future__ import annotations

from .auth import ENV_TOKEN, load_token, token_path
from .server import Dashboard

__all__ = ["ENV_TOKEN", "Dashboard", "load_token", "token_path"]
