"""Nimbus for Jupyter: deploy a spaCy pipeline from a notebook to a secured endpoint.

``%load_ext nimbus_jupyter`` registers the magics. The Python API is ``deploy``, ``batch``, ``list_deployments``,
``get_deployment`` and ``destroy``; to operate what is deployed, ``status_report``, ``history``, ``rollback``,
``recent_logs``, ``follow_logs`` and ``rotate_key``; for detached batch jobs, ``submit``, ``get_job`` and
``list_jobs``. Imports are lazy so that the runtime's worker processes, which import this package, do not
pay for IPython or widgets.

This module is the facade on top of the layers (``runtime``, ``core``, ``endpoint``, ``targets``, ``api``,
``faces``: see ``nimbus_jupyter.core``): ``deploy`` here is the notebook's, with a live view
(``faces.notebook.deploy``); ``nimbus_jupyter.api.deploy`` is the same deploy without one.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["deploy", "batch", "list_deployments", "get_deployment", "destroy", "status_report", "history", "rollback",
           "recent_logs", "follow_logs", "rotate_key", "submit", "get_job", "list_jobs", "load_ipython_extension"]
_FROM_API = ("list_deployments", "get_deployment", "destroy", "status_report", "history", "rollback", "recent_logs",
             "follow_logs")


def load_ipython_extension(ipython: Any) -> None:
    from .faces.magics import load

    from .faces.job_magics import JobMagics
    from .faces.key_magics import KeyMagics

    load(ipython)
    ipython.register_magics(JobMagics)
    ipython.register_magics(KeyMagics)


def _jupyter_labextension_paths() -> list:
    """The prebuilt JupyterLab sidebar shipped in the wheel (share/jupyter/labextensions/nimbus-jupyter)."""
    return [{"src": "labextension", "dest": "nimbus-jupyter"}]


def _jupyter_server_extension_points() -> list:
    """The server extension with the sidebar's REST routes (enabled on install by jupyter-config)."""
    return [{"module": "nimbus_jupyter.faces.server_extension"}]


def __getattr__(name: str) -> Any:
    if name == "deploy":
        from .faces.notebook import deploy

        return deploy
    if name in _FROM_API:
        from . import api

        return getattr(api, name)
    if name == "rotate_key":
        from .faces.key_magics import rotate_key

        return rotate_key
    if name in ("submit", "get_job", "list_jobs"):
        from .api import jobs

        return getattr(jobs, name)
    if name == "batch":
        from .api.batching import batch

        return batch
    raise AttributeError(f"module 'nimbus_jupyter' has no attribute {name!r}")
