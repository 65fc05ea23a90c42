"""IPython magics: thin. Parse arguments, call the API, put results in the user namespace.

User mistakes raise ``UsageError`` with what was wrong and what to do.
"""
from __future__ import annotations

from typing import Any, List, Optional

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .. import api
from ..core.bundle import require_pipeline
from ..api.deployment import VIAS
from ..core.errors import UserInputError
from ..core.plan import Plan
from ..targets import TARGETS


def _usage(exc: UserInputError) -> UsageError:
    return UsageError(str(exc))


@magics_class
class NimbusMagics(Magics):
    @line_magic
    @magic_arguments()
    @argument("pipeline", help="the notebook variable holding the spaCy pipeline (a Language object), e.g. nlp")
    @argument("--name", help="deployment name: lowercase letters, digits, hyphens (default: the variable name)")
    @argument("--target", default="local", help=f"where to deploy: {', '.join(TARGETS)} (default: local)")
    @argument("--samples", nargs="+", metavar="TEXT", help="sample texts for the smoke test and the parity check")
    @argument("--samples-from", metavar="VAR", help="a notebook variable (list or Series of strings) to take samples from")
    @argument("--workers", type=int, help="worker processes on the local target (default: the machine's cores)")
    @argument("--dry-run", action="store_true", help="print the plan and change nothing")
    @argument("--force", action="store_true", help="replace a deployment of the same name that serves another pipeline")
    @argument("--region", help="aws: the AWS region (default: your profile's or AWS_REGION)")
    @argument("--profile", help="aws: the AWS profile (default: the standard chain: environment, ~/.aws, SSO)")
    @argument("--memory", type=int, metavar="MB", help="aws: Lambda memory in MB (default 2048; CPU grows with it)")
    @argument("--arch", choices=["x86_64", "arm64"], help="aws: Lambda architecture (default x86_64)")
    @argument("--timeout", type=int, metavar="S", help="aws: Lambda timeout in seconds (default 60)")
    @argument("--reserved-concurrency", type=int, metavar="N", help="aws: cap the function's concurrent executions")
    @argument("--rate", type=float, help="aws: API Gateway steady rate limit, requests/s (default 50)")
    @argument("--burst", type=int, help="aws: API Gateway burst limit (default 100)")
    @argument("--quota", type=int, help="aws: API Gateway requests per month (default 1000000)")
    @argument("--alarm-email", metavar="ADDRESS", help="aws: email this address (SNS) when the function errs 5+ times in 5 min")
    def nimbus_deploy(self, line: str) -> Any:
        """Deploy a spaCy pipeline from this notebook and return the ``Deployment``.

        Example: ``d = %nimbus_deploy nlp --name reviews --samples "great phone" "broke in a week"``
        """
        args = parse_argstring(self.nimbus_deploy, line)
        nlp = self._variable(args.pipeline, "pipeline")
        name = args.name or args.pipeline.replace("_", "-").lower()
        samples = self._samples(args)
        try:
            require_pipeline(nlp, f"the variable {args.pipeline!r}")
            outcome = api.deploy(nlp, name, args.target, samples=samples, workers=args.workers,
                                 dry_run=args.dry_run, force=args.force, shell=self.shell, **_target_options(args))
        except UserInputError as exc:
            raise _usage(exc)
        return None if isinstance(outcome, Plan) else outcome

    @cell_magic
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
    def nimbus_batch(self, line: str, cell: str) -> Any:
        """Score the texts the cell body evaluates to (a Series, a list, or a DataFrame with --column).

        Example::

            %%nimbus_batch reviews --out scored
            df["review"]
        """
        from ..api.batching import batch

        args = parse_argstring(self.nimbus_batch, line)
        if args.via is not None and args.via not in VIAS:
            raise UsageError(f"--via {args.via}: choose invoke or http (or leave it out for the deployment's default)")
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out {args.out}: not a valid variable name")
        expression = cell.strip()
        if not expression:
            raise UsageError('the cell body is empty; write the texts to score, e.g. df["review"]')
        try:
            texts = eval(compile(expression, "<nimbus_batch cell>", "eval"), self.shell.user_ns)
        except SyntaxError:
            raise UsageError('the cell body must be one Python expression that gives the texts, e.g. df["review"]')
        try:
            frame = batch(texts, args.deployment, fields=args.fields, column=args.column, chunk_size=args.chunk_size,
                          concurrency=args.concurrency, resume=not args.no_resume, via=args.via)
        except UserInputError as exc:
            raise _usage(exc)
        print(frame.attrs["nimbus"].text())
        if args.out:
            self.shell.user_ns[args.out] = frame
            return None
        return frame

    @line_magic
    def nimbus_list(self, line: str = "") -> Any:
        """Every deployment (name, target, status, URL, components, version, created) as a DataFrame."""
        import pandas as pd

        from .ui.render import deployments_rows

        if line.strip():
            raise UsageError("%nimbus_list takes no arguments")
        rows = deployments_rows(api.list_deployments())
        columns = ["name", "target", "status", "url", "components", "version", "created", "detail"]
        return pd.DataFrame(rows, columns=columns)

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    def nimbus_status(self, line: str) -> Any:
        """Health (the endpoint probed now), requests, errors, throttles and p50/p99 latency over the last
        hour and day, and the cost this month; returns the ``StatusReport``."""
        from .ui.status_view import show_status

        args = parse_argstring(self.nimbus_status, line)
        try:
            report = api.status_report(args.name)
        except UserInputError as exc:
            raise _usage(exc)
        show_status(report, self.shell)
        return report

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    def nimbus_history(self, line: str) -> Any:
        """Every deploy and rollback of the deployment, oldest first: version, when, by whom, the
        pipeline's hash and components, which one serves and which can be rolled back to."""
        import pandas as pd

        args = parse_argstring(self.nimbus_history, line)
        try:
            versions = api.history(args.name)
        except UserInputError as exc:
            raise _usage(exc)
        rows = [{"version": v.version, "created": v.created, "by": v.by, "hash": v.hash[:12],
                 "components": ", ".join(v.components), "serving": v.serving, "available": v.available,
                 "note": v.note} for v in versions]
        return pd.DataFrame(rows, columns=["version", "created", "by", "hash", "components", "serving", "available", "note"])

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    @argument("--to", metavar="VERSION", help="the version to serve (default: the newest kept one older than the current)")
    def nimbus_rollback(self, line: str) -> None:
        """Serve an earlier version again, without a redeploy, and say how long the switch took."""
        args = parse_argstring(self.nimbus_rollback, line)
        try:
            result = api.rollback(args.name, args.to)
        except UserInputError as exc:
            raise _usage(exc)
        print(result.text())

    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    def nimbus_destroy(self, line: str) -> None:
        """Stop the deployment's endpoint and remove everything it made."""
        args = parse_argstring(self.nimbus_destroy, line)
        try:
            print(api.destroy(args.name))
        except UserInputError as exc:
            raise _usage(exc)

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

        args = parse_argstring(self.nimbus_logs, line)
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
            getattr(stream, "close", lambda: None)()  # a generator closes its file

    # -- helpers -------------------------------------------------------------------------------------
    def _variable(self, name: str, what: str) -> Any:
        if not name.isidentifier():
            raise UsageError(f"{name!r} is not a variable name; give the name of the notebook variable holding the {what}")
        if name not in self.shell.user_ns:
            raise UsageError(f"there is no variable {name!r} in this notebook; create it first, e.g. {name} = spacy.load(...)")
        return self.shell.user_ns[name]

    def _samples(self, args: Any) -> Optional[List[str]]:
        if args.samples and args.samples_from:
            raise UsageError("give either --samples or --samples-from, not both")
        if args.samples_from:
            value = self._variable(args.samples_from, "samples")
            if isinstance(value, str) or not hasattr(value, "__iter__"):
                raise UsageError(f"--samples-from {args.samples_from}: expected a list or Series of strings, got {type(value).__name__}")
            values = list(value)[:5]
            if not values or not all(isinstance(v, str) and v.strip() for v in values):
                raise UsageError(f"--samples-from {args.samples_from}: the first items must be non-empty strings")
            return values
        return [_unquote(s) for s in args.samples] if args.samples else None


def _target_options(args: Any) -> dict:
    """The target options the user gave (None means: the target's default)."""
    given = {"region": args.region, "profile": args.profile, "memory": args.memory, "arch": args.arch,
             "timeout": args.timeout, "reserved_concurrency": args.reserved_concurrency,
             "throttle_rate": args.rate, "throttle_burst": args.burst, "quota": args.quota,
             "alarm_email": args.alarm_email}
    return {k: v for k, v in given.items() if v is not None}


def _unquote(text: str) -> str:
    """IPython's argument splitter keeps the quotes around a quoted argument; drop them."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
