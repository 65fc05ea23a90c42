"""IPython magics: thin. Parse arguments, call the API, put results in the user namespace.

As IPython users expect:

- one POSIX-shell split of the line (``shlex``), so quotes work for every option: ``--name "reviews"``,
  ``--fields "ents,cats"``, ``--samples "a b" 'c'``;
- ``%magic?`` and ``%magic --help`` on every magic (``%nimbus_batch?`` too: it is a line magic as well,
  that only shows its help);
- settings through traitlets: ``%config NimbusMagics.default_target = "aws"`` (and ``workers``,
  ``region``, ``profile``, ``widgets``), or ``c.NimbusMagics.default_target`` in ``ipython_config.py``;
- read magics (``%nimbus_status``, ``%nimbus_list``, ``%nimbus_history``) return values that display
  themselves; actions (deploy, batch, rollback, destroy) show what they did as they do it.

User mistakes raise ``UsageError`` with what was wrong and what to do. ``%nimbus_deploy``'s per-target
options are generated from what the targets declare (one argument group per target), again whenever
the set of targets changes, so a target installed as a plugin gets its flags here without an edit.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Generator, Iterable
from typing import Any, Dict, List, Optional, Tuple

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, argument_group, construct_parser, magic_arguments
from IPython.display import display
from traitlets import Bool, Integer, Unicode

from .. import api
from ..api.origin import notebook_origin
from ..api.samples import GIVEN, Samples
from ..core.bundle import require_pipeline
from ..core.errors import UserInputError
from ..core.plan import Plan
from ..endpoint.transport import VIAS
from ..targets.base import TargetOption, Warmable
from ..targets.registry import DEFAULT_TARGET, catalog, get_target
from . import notebook

# Settings of %config NimbusMagics that fill a target's option of the same name when the line has none.
CONFIG_OPTIONS = ("workers", "region", "profile")


def _usage(exc: UserInputError) -> UsageError:
    return UsageError(str(exc))


def split_line(line: str) -> List[str]:
    """The magic's line as a POSIX shell splits it: quotes group and are removed, backslashes escape."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"cannot read the line: {exc} (close the quote, or escape it with a backslash)")


def parse(func: Any, line: str) -> Optional[Any]:
    """The magic's arguments from ``line``; None when the line asks for help (``-h``/``--help``),
    after printing it."""
    argv = split_line(line)
    if "--help" in argv or "-h" in argv:
        print(func.parser.format_help())
        return None
    return func.parser.parse_args(argv)


def _target_arguments(default_target: str = DEFAULT_TARGET) -> Tuple[List[Any], Dict[str, TargetOption]]:
    """``--target`` and one argument group per target with its declared options, in source order; and
    every option by name (an option two targets declare alike is one flag, in the first one's group)."""
    classes = catalog().classes
    owners: Dict[str, List[str]] = {}
    for name, cls in classes.items():
        for option in cls.options:
            owners.setdefault(option.name, []).append(name)
    generated: List[Any] = [argument("--target", default=None,
                                     help=f"where to deploy: {', '.join(classes)} (default: {default_target}). "
                                          "%%config NimbusMagics.default_target = 'aws' sets another default")]
    options: Dict[str, TargetOption] = {}
    for name, cls in classes.items():
        generated.append(argument_group(f"{name} target", f"{cls.title}: with --target {name}"))
        for option in cls.options:
            if option.name in options:
                continue
            options[option.name] = option
            also = [o for o in owners[option.name] if o != name]
            generated.append(argument(option.flag, dest=option.name, **_argparse_kwargs(option, also)))
    return generated, options


def _argparse_kwargs(option: TargetOption, also: List[str]) -> Dict[str, Any]:
    help_text = (option.help + (f" (also for the {', '.join(also)} target)" if also else "")).replace("%", "%%")
    if option.type == "bool":
        return {"action": "store_true", "default": None, "help": help_text}
    kwargs: Dict[str, Any] = {"default": None, "help": help_text}
    kwargs["type"] = {"int": int, "float": float}.get(option.type, str)
    if option.choices:
        kwargs["choices"] = list(option.choices)
    if option.metavar:
        kwargs["metavar"] = option.metavar
    return kwargs


def _refresh_deploy_parser(func: Any) -> Dict[str, TargetOption]:
    """Rebuild ``%nimbus_deploy``'s parser and help when the targets changed; the options by name."""
    key = catalog().generation
    if func._nimbus_key != key:
        generated, options = _target_arguments()
        # decorators are kept in the order they were applied (bottom-up); construct_parser reverses them
        func.decorators = list(reversed(generated)) + func._nimbus_static
        func.__doc__ = func._nimbus_doc
        func.parser = construct_parser(func)
        func._nimbus_options, func._nimbus_key = options, key
    return func._nimbus_options


def _with_target_options(func: Any) -> Any:
    """Mark ``func`` (a magic_arguments magic) to get the targets' options, and keep ``%magic?`` current:
    IPython asks an object's ``getdoc()`` before its ``__doc__``."""
    func._nimbus_static = list(func.decorators)
    func._nimbus_doc = func.__doc__
    func._nimbus_key = None
    func.getdoc = lambda: (_refresh_deploy_parser(func), func.__doc__)[1]
    return func


@magics_class
class NimbusMagics(Magics):
    """The ``%nimbus_*`` magics. Settings (``%config NimbusMagics``) apply to every magic of this shell."""

    default_target = Unicode(DEFAULT_TARGET, help="the target %nimbus_deploy uses without --target, e.g. 'aws'"
                             ).tag(config=True)
    workers = Integer(None, allow_none=True, help="--workers of every deploy to a target that has it (local) "
                      "when the line gives none").tag(config=True)
    region = Unicode(None, allow_none=True, help="--region of every deploy to a target that has it (aws) "
                     "when the line gives none").tag(config=True)
    profile = Unicode(None, allow_none=True, help="--profile of every deploy to a target that has it (aws) "
                      "when the line gives none").tag(config=True)
    widgets = Bool(True, help="live widgets (deploy progress, Reveal, status Refresh) where a kernel carries them; "
                   "False: text everywhere").tag(config=True)
    prewarm = Bool(True, help="when the magics load, start the default target's slow part in the background (local: "
                   "a process with spaCy imported, so the first deploy is ready in under a second; it exits after "
                   "10 idle minutes). Also off with NIMBUS_PREWARM=0").tag(config=True)

    @line_magic
    @_with_target_options
    @magic_arguments()
    @argument("pipeline", help="the notebook variable holding the spaCy pipeline (a Language object), e.g. nlp")
    @argument("--name", help="deployment name: lowercase letters, digits, hyphens (default: the variable name)")
    @argument("--samples", nargs="+", metavar="TEXT", help="sample texts for the smoke test and the parity check "
              "(default: texts of your last batch or deploy in this kernel, else generic ones)")
    @argument("--samples-from", metavar="VAR", help="a notebook variable (list or Series of strings) to take samples from")
    @argument("--dry-run", action="store_true", help="print the plan and change nothing")
    @argument("--force", action="store_true", help="replace a deployment of the same name that serves another pipeline "
              "(not needed for this variable's own pipeline with components added or removed)")
    def nimbus_deploy(self, line: str) -> Any:
        """Deploy a spaCy pipeline from this notebook and return the ``Deployment``.

        Example: ``d = %nimbus_deploy nlp --name reviews --samples "great phone" "broke in a week"``
        """
        options = _refresh_deploy_parser(NimbusMagics.nimbus_deploy)
        args = parse(NimbusMagics.nimbus_deploy, line)
        if args is None:
            return None
        nlp = self._variable(args.pipeline, "pipeline")
        name = args.name or args.pipeline.replace("_", "-").lower()
        target = args.target or self.default_target
        samples = self._samples(args)
        given = {key: vars(args)[key] for key in options if vars(args).get(key) is not None}
        try:
            given.update(self._configured(target, given))
            require_pipeline(nlp, f"the variable {args.pipeline!r}")
            outcome = notebook.deploy(nlp, name, target, samples=samples, dry_run=args.dry_run, force=args.force,
                                      shell=self.shell, origin=notebook_origin(args.pipeline, self.shell),
                                      widgets=self.widgets, **given)
        except UserInputError as exc:
            raise _usage(exc)
        return None if isinstance(outcome, Plan) else outcome

    @line_cell_magic
    @magic_arguments()
    @argument("deployment", help="the deployment's name")
    @argument("--out", metavar="VAR", help="put the result DataFrame in this notebook variable (else it is the cell's output)")
    @argument("--column", metavar="COL", help="the column holding the texts, when the cell gives a DataFrame")
    @argument("--fields", help="comma-separated fields: ents, cats, tokens, sents, spans (default: the pipeline's)")
    @argument("--chunk-size", type=int, default=64, help="texts per request (default 64; also capped by the 6 MB payload limit)")
    @argument("--concurrency", type=int, help="requests in flight (default: the endpoint's workers + 1)")
    @argument("--no-resume", action="store_true", help="send every chunk again instead of reusing saved ones")
    @argument("--via", metavar="invoke|http",
              help="how to reach an AWS deployment: invoke (the default there: lambda.invoke with your AWS credentials, "
                   "no API Gateway limits or per-request cost) or http (API Gateway with the API key); local is always http")
    @argument("--detach", action="store_true", help="submit as a job that outlives the notebook (see %%nimbus_job)")
    @argument("--output", metavar="PATH", help="with --detach: where the job writes its Parquet shards")
    def nimbus_batch(self, line: str, cell: Optional[str] = None) -> Any:
        """Score the texts the cell body evaluates to (a Series, a list, or a DataFrame with --column).

        A cell magic: the first line names the deployment, the body is one Python expression. Example::

            %%nimbus_batch reviews --out scored
            df["review"]
        """
        from ..api.batching import batch

        args = parse(NimbusMagics.nimbus_batch, line)
        if args is None:
            return None
        if cell is None:
            raise UsageError(f"%nimbus_batch is a cell magic: start the cell with %%nimbus_batch {args.deployment} "
                             "and put the texts to score on the next line, e.g. df[\"review\"]")
        if args.via is not None and args.via not in VIAS:
            raise UsageError(f"--via {args.via}: choose invoke or http (or leave it out for the deployment's default)")
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out {args.out}: not a valid variable name")
        expression = cell.strip()
        if not expression:
            raise UsageError('the cell body is empty; write the texts to score, e.g. df["review"]')
        try:
            texts = self.shell.ev(expression)
        except SyntaxError:
            raise UsageError('the cell body must be one Python expression that gives the texts, e.g. df["review"]')
        if args.detach or args.output:  # a job instead (faces/job_magics.py has the rest)
            from .job_magics import submit_cell

            return submit_cell(args, texts, self.shell)
        source = expression if len(expression) <= 60 else expression[:59] + "…"
        try:
            frame = batch(texts, args.deployment, fields=args.fields, column=args.column, chunk_size=args.chunk_size,
                          concurrency=args.concurrency, resume=not args.no_resume, via=args.via, source=source)
        except UserInputError as exc:
            raise _usage(exc)
        display(frame.attrs["nimbus"])
        if args.out:
            self.shell.user_ns[args.out] = frame
            return None
        return frame

    @line_magic
    @magic_arguments()
    def nimbus_list(self, line: str = "") -> Any:
        """Every deployment (name, target, status probed now, URL, components, version, created) as a DataFrame."""
        import pandas as pd

        from .ui.render import deployments_rows

        argv = split_line(line)
        if "--help" in argv or "-h" in argv:
            print(NimbusMagics.nimbus_list.parser.format_help())
            return None
        if argv:
            raise UsageError("%nimbus_list takes no arguments")
        rows = deployments_rows(api.list_deployments())
        columns = ["name", "target", "status", "url", "components", "version", "created", "detail"]
        return pd.DataFrame(rows, columns=columns)

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    def nimbus_status(self, line: str) -> Any:
        """Health (the endpoint probed now), requests, errors, 4xx, throttles and p50/p99 latency over the last
        hour and day, and the cost this month: returns the ``StatusReport``, which displays itself (a table
        with a Refresh button in a notebook, text elsewhere)."""
        args = parse(NimbusMagics.nimbus_status, line)
        if args is None:
            return None
        try:
            return api.status_report(args.name)
        except UserInputError as exc:
            raise _usage(exc)

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    def nimbus_history(self, line: str) -> Any:
        """Every deploy and rollback of the deployment, oldest first, as a DataFrame (the same columns on
        every target): kind, version, from_version, when, who, hash, components, note, ref (the target's
        own name for the version), serving, available (can be rolled back to)."""
        args = parse(NimbusMagics.nimbus_history, line)
        if args is None:
            return None
        try:
            table = api.history(args.name)
        except UserInputError as exc:
            raise _usage(exc)
        table["hash"] = table["hash"].str[:12]
        table["components"] = table["components"].map(", ".join)
        return table

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    @argument("--to", metavar="VERSION", help="the version to serve (default: the newest kept one older than the current)")
    def nimbus_rollback(self, line: str) -> None:
        """Serve an earlier version again, without a redeploy, and show how long the switch took."""
        args = parse(NimbusMagics.nimbus_rollback, line)
        if args is None:
            return None
        try:
            result = api.rollback(args.name, args.to)
        except UserInputError as exc:
            raise _usage(exc)
        display(result)
        return None

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    def nimbus_destroy(self, line: str) -> None:
        """Stop the deployment's endpoint and remove everything it made."""
        args = parse(NimbusMagics.nimbus_destroy, line)
        if args is None:
            return None
        try:
            print(api.destroy(args.name))
        except UserInputError as exc:
            raise _usage(exc)
        return None

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    @argument("--since", default="1h", help="how far back: 90s, 15m, 1h, 2d (default 1h)")
    @argument("--errors", action="store_true", help="only lines that report an error")
    @argument("--limit", type=int, default=200, help="at most this many lines (default 200)")
    @argument("--follow", action="store_true", help="then print new lines as they come, until you interrupt the kernel")
    def nimbus_logs(self, line: str) -> None:
        """Log lines of the deployment (aws: CloudWatch Logs; local: the server log): each request with
        its id, status, duration and error; ``--follow`` streams until interrupted."""
        from ..api.logs import recent_logs

        args = parse(NimbusMagics.nimbus_logs, line)
        if args is None:
            return None
        if args.follow:
            return self._follow(args)
        try:
            lines = recent_logs(args.name, since=args.since, errors=args.errors, limit=args.limit)
        except UserInputError as exc:
            raise _usage(exc)
        if not lines:
            print(f"no {'error ' if args.errors else ''}log lines for {args.name!r} in the last {args.since}")
        for entry in lines:
            print(entry.text())
        return None

    def _follow(self, args: Any) -> None:
        from ..api.logs import follow_logs

        try:
            stream = follow_logs(args.name, since=args.since, errors=args.errors)
        except UserInputError as exc:
            raise _usage(exc)
        print(f"following {args.name!r}'s {'errors' if args.errors else 'log'} from the last {args.since} "
              "(interrupt the kernel to stop)", flush=True)
        try:
            for entry in stream:
                print(entry.text(), flush=True)
        except KeyboardInterrupt:
            pass  # the way to stop following: not an error
        finally:
            if isinstance(stream, Generator):
                stream.close()  # a generator closes its file

    # -- helpers -------------------------------------------------------------------------------------
    def _configured(self, target: str, given: Dict[str, Any]) -> Dict[str, Any]:
        """The %config settings that fill options of ``target`` the line left out."""
        from ..targets.registry import target_class

        declared = {option.name for option in target_class(target).options}
        return {name: getattr(self, name) for name in CONFIG_OPTIONS
                if name in declared and name not in given and getattr(self, name) is not None}

    def _variable(self, name: str, what: str) -> Any:
        if not name.isidentifier():
            raise UsageError(f"{name!r} is not a variable name; give the name of the notebook variable holding the {what}")
        if name not in self.shell.user_ns:
            raise UsageError(f"there is no variable {name!r} in this notebook; create it first, e.g. {name} = spacy.load(...)")
        return self.shell.user_ns[name]

    def _samples(self, args: Any) -> Optional[Samples]:
        if args.samples and args.samples_from:
            raise UsageError("give either --samples or --samples-from, not both")
        if args.samples_from:
            value = self._variable(args.samples_from, "samples")
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise UsageError(f"--samples-from {args.samples_from}: expected a list or Series of strings, got {type(value).__name__}")
            values = list(value)[:5]
            if not values or not all(isinstance(v, str) and v.strip() for v in values):
                raise UsageError(f"--samples-from {args.samples_from}: the first items must be non-empty strings")
            return Samples(values, f"the variable {args.samples_from!r}")
        return Samples(list(args.samples), GIVEN) if args.samples else None


def load(ipython: Any) -> NimbusMagics:
    """Register the magics with ``ipython`` as a configurable (``%config NimbusMagics``, ipython_config.py),
    and, where a kernel carries widgets, the live status panel."""
    from .ui import status_view

    magics = NimbusMagics(shell=ipython, parent=ipython)
    ipython.register_magics(magics)
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, NimbusMagics)] + [magics]
    status_view.install(ipython, lambda: magics.widgets)
    if magics.prewarm and os.environ.get("NIMBUS_PREWARM", "1") != "0":
        warm_target(magics.default_target)
    return magics


def warm_target(name: str) -> None:
    """Ask target ``name`` to start what its first deploy waits for (the Warmable capability); a target
    that cannot, or fails to load, is left alone: loading the magics never fails for it."""
    try:
        target = get_target(name)
    except Exception:
        return
    if isinstance(target, Warmable):
        try:
            target.warm()
        except Exception:
            pass
