"""The Jupyter server extension behind the sidebar: REST routes under ``/nimbus/api/`` over the one registry.

Loaded by Jupyter Server (enabled on install by ``jupyter-config/server-config/nimbus_jupyter.json``).
Tornado and jupyter_server are imported only when the server loads it.
"""
from __future__ import annotations

from typing import Any


def _load_jupyter_server_extension(server_app: Any) -> None:
    from .handlers import setup_handlers

    setup_handlers(server_app.web_app)
    server_app.log.info("nimbus_jupyter: sidebar routes at /nimbus/api/")


load_jupyter_server_extension = _load_jupyter_server_extension  # the older name some servers still call
