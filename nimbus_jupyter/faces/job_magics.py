"""``%nimbus_jobs`` and ``%nimbus_job ID [--cancel]``: the detached jobs of ``nimbus_jupyter.submit``.

A Magics class of its own (registered beside ``NimbusMagics`` by ``load_ipython_extension``), thin over
``api.jobs``. ``%nimbus_job ID`` shows a live status in a notebook (an ipywidgets HTML the job's
``_repr_html_`` fills, refreshed until the job ends or the cell is interrupted) and the status text
where there is no widget front end (a terminal, nbconvert).
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
    """Is there a front end that renders widgets (a notebook kernel, not a terminal or nbconvert's --no-widgets)?"""
    kernel = getattr(shell, "kernel", None)
    return kernel is not None and type(shell).__name__ == "ZMQInteractiveShell"


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
        """A job's live status (a widget in a notebook, text elsewhere); ``--cancel`` stops it."""
        args = parse_argstring(self.nimbus_job, line)
        try:
            job = api_jobs.get_job(args.id)
            if args.cancel:
                status = job.cancel()
                print(status.text())
                return None
            status = job.status()
        except UserInputError as exc:
            raise _usage(exc)
        if not live_widgets(self.shell) or status.done:
            print(status.text())
            return None
        self._live(job)
        return None

    def _live(self, job: Any) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        view = widgets.HTML(job._repr_html_())
        display(view)
        try:
            while True:
                status = job.status()
                view.value = status._repr_html_()
                if status.done:
                    break
                time.sleep(REFRESH_SECONDS)
        except KeyboardInterrupt:
            pass  # the view stops following; the job goes on


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
