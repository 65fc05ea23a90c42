"""``%nimbus_jobs`` and ``%nimbus_job ID [--cancel]``: the detached jobs of ``nimbus_jupyter.submit``.

A Magics class of its own (registered beside ``NimbusMagics`` by ``load_ipython_extension``), thin over
``api.jobs``. ``%nimbus_job ID`` shows a live status where a kernel carries widgets (``ui.live.can_show_widgets``,
the helper every magic uses, and ``%config NimbusMagics.widgets``): an ipywidgets HTML that the status's
``html()`` fills, refreshed until the job ends or the cell is interrupted, whose display keeps the status's
text as its twin (nbclient, saved notebooks). Elsewhere (a terminal IPython, a script) the status's text.
"""
from __future__ import annotations

import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..api import jobs as api_jobs
from ..core.errors import UserInputError

REFRESH_SECONDS = 1.0


def _usage(exc: UserInputError) -> UsageError:
    return UsageError(f"{exc.what}\n  -> {exc.todo}" if exc.todo else exc.what)


def live_widgets(shell: Any) -> bool:
    """Widgets where the shell can carry them (``can_show_widgets``) unless ``%config NimbusMagics.widgets = False``."""
    from .ui.live import can_show_widgets

    manager = getattr(shell, "magics_manager", None)
    nimbus = getattr(manager, "registry", {}).get("NimbusMagics") if manager is not None else None
    return bool(getattr(nimbus, "widgets", True)) and can_show_widgets(shell)


@magics_class
class JobMagics(Magics):
    @line_magic
    def nimbus_jobs(self, line: str = "") -> Any:
        """Every job (id, deployment, version, state, progress, started, output) as a DataFrame."""
        if line.strip():
            raise UsageError("%nimbus_jobs takes no arguments")
        return api_jobs.jobs_frame(api_jobs.list_jobs())

    @line_magic
    @magic_arguments()
    @argument("id", help="the job's id (from submit, or %%nimbus_jobs)")
    @argument("--cancel", action="store_true", help="stop the job; its finished shards stay in the output")
    def nimbus_job(self, line: str) -> Any:
        """A job's status, live while it runs where a kernel carries widgets; else the ``JobStatus`` (which
        displays itself: text, or HTML in a notebook). ``--cancel`` stops it and gives the status."""
        args = parse_argstring(self.nimbus_job, line)
        try:
            job = api_jobs.get_job(args.id)
            status = job.cancel() if args.cancel else job.status()
        except UserInputError as exc:
            raise _usage(exc)
        if args.cancel or status.done or not live_widgets(self.shell):
            return status
        self._live(job)
        return None

    def _live(self, job: Any) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        from .ui.live import widget_bundle

        status = job.status()
        view = widgets.HTML(status.html())
        handle = display(widget_bundle(view, status.text(), status.html()), raw=True, display_id=True)
        try:
            while not status.done:
                time.sleep(REFRESH_SECONDS)
                status = job.status()
                view.value = status.html()
        except KeyboardInterrupt:
            pass  # the view stops following; the job goes on
        finally:
            if handle is not None:  # the text twin says where it got to
                handle.update(widget_bundle(view, status.text(), status.html()), raw=True)


def submit_cell(args: Any, texts: Any, shell: Any) -> Any:
    """``%%nimbus_batch NAME --detach [--output PATH] [--out VAR]``: the cell's texts as a job; the Job is the
    cell's value (or in ``VAR``)."""
    if not args.detach:
        raise UsageError("--output is for --detach (a job writes its results there); add --detach, or drop --output")
    try:
        job = api_jobs.submit(texts, args.deployment, column=args.column, fields=args.fields, output=args.output,
                              concurrency=args.concurrency)
    except UserInputError as exc:
        raise _usage(exc)
    if args.out:
        shell.user_ns[args.out] = job
        return None
    return job
