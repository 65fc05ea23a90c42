"""The ``nimbus`` command line: the magics' powers for terminals, CI jobs and editors, over the same api.

``cli`` is the click group (``app.py``: exit codes, ``--json``, stderr for progress). Commands register on
it from their modules (``@cli.command()``); one whose options come from the installed targets is built when
asked for (``app.LAZY_COMMANDS``). Another module adds commands the same way and is imported here.
"""
from __future__ import annotations

from . import batch, deploy, jobs, operate  # noqa: F401  (they register their commands on cli)
from .app import FAILED, OK, USAGE, Failed, cli, emit, json_option, main, note

__all__ = ["FAILED", "OK", "USAGE", "Failed", "cli", "emit", "json_option", "main", "note"]
