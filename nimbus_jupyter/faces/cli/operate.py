"""The read and operate commands: ``list``, ``status``, ``logs``, ``history``, ``rollback``, ``destroy``.

Each is the magic of the same name over the same api; ``--json`` prints what scripts parse (the same
shapes as the sidebar's routes where there is one: ``DeploymentInfo``, ``StatusInfo``).
"""
from __future__ import annotations

import sys
from typing import Any, Optional

import click

from ...core.errors import UserInputError
from .app import Failed, cli, emit, json_option, jsonable, note


@cli.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """Every deployment with its status probed now (and, on AWS, those deployed from elsewhere)."""
    from ... import api
    from ...core.display import text_table
    from ..sidebar_models import DeploymentInfo

    deployments = api.list_deployments()
    if as_json:
        emit([DeploymentInfo.of(d).to_json() for d in deployments], True)
        return
    if not deployments:
        emit(None, False, "no deployments yet (nimbus deploy PATH --name NAME makes one)")
        return
    rows = [[d.name, d.target, d.status, d.url, f"v{d.version}", ", ".join(d.components), d.created] for d in deployments]
    emit(None, False, text_table(["name", "target", "status", "url", "version", "components", "created"], rows, indent=""))
    for d in deployments:
        if d.detail:
            note(f"{d.name}: {d.detail}")


@cli.command("status")
@click.argument("name")
@json_option
def status_command(name: str, as_json: bool) -> None:
    """Health (probed now), requests, errors, 4xx, throttles and p50/p99 over the last hour and day, and the
    cost this month. Exits 1 when the endpoint does not answer healthy."""
    from ... import api
    from ..sidebar_models import StatusInfo

    report = api.status_report(name)
    emit(StatusInfo.of(report).to_json() if as_json else report, as_json)
    if report.health != "ok":
        raise Failed()


@cli.command("history")
@click.argument("name")
@json_option
def history_command(name: str, as_json: bool) -> None:
    """Every deploy and rollback, oldest first: kind, version, from, when, who, hash, components, serving, available."""
    from ... import api
    from ...core.display import text_table

    rows = api.history_rows(name)
    if as_json:
        emit([r.row() for r in rows], True)
        return
    table = [[("▶ " if r.serving else "  ") + e.kind, f"v{e.version}", f"v{e.from_version}" if e.from_version else "",
              e.when, e.who, e.hash[:12], ", ".join(e.components), "yes" if r.available else "no", e.note]
             for r in rows for e in [r.entry]]
    emit(None, False, text_table(["  kind", "version", "from", "when", "who", "hash", "components", "available", "note"],
                                 table, indent=""))


@cli.command("rollback")
@click.argument("name")
@click.option("--to", "to", metavar="VERSION", help="the version to serve (default: the newest kept one older than the current)")
@json_option
def rollback_command(name: str, to: Optional[str], as_json: bool) -> None:
    """Serve an earlier version again, without a redeploy."""
    from ... import api

    emit(api.rollback(name, to), as_json)


@cli.command("destroy")
@click.argument("name")
@click.option("--yes", is_flag=True, help="do not ask for confirmation (needed when stdin is not a terminal)")
@json_option
def destroy_command(name: str, yes: bool, as_json: bool) -> None:
    """Stop the deployment's endpoint and remove everything it made (aws: delete the stack)."""
    from ... import api

    record = api.get_record(name, _registry())  # unknown names fail before the question
    if not yes:
        if not sys.stdin.isatty():
            raise UserInputError(f"destroying {name!r} needs a confirmation and stdin is not a terminal",
                                 f"add --yes: nimbus destroy {name} --yes")
        click.confirm(f"Destroy {name!r} ({record.target}, v{record.version}, {record.url})?", abort=True, err=True)
    done = api.destroy(name)
    emit({"name": name, "message": done}, as_json, done)


@cli.command("logs")
@click.argument("name")
@click.option("--since", default="1h", show_default=True, help="how far back: 90s, 15m, 1h, 2d")
@click.option("--errors", is_flag=True, help="only lines that report an error")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="at most this many lines")
@click.option("--follow", "-f", is_flag=True, help="then print new lines as they come, until Ctrl-C")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line (time, message, request_id)")
def logs_command(name: str, since: str, errors: bool, limit: int, follow: bool, as_json: bool) -> None:
    """The deployment's log lines (aws: CloudWatch Logs; local: the server log), oldest first."""
    from ...api.logs import follow_logs, recent_logs

    def show(line: Any) -> None:
        import json

        click.echo(json.dumps(jsonable(line), ensure_ascii=False) if as_json else line.text())
        sys.stdout.flush()

    if not follow:
        lines = recent_logs(name, since=since, errors=errors, limit=limit)
        if not lines:
            note(f"no {'error ' if errors else ''}log lines for {name!r} in the last {since}")
        for line in lines:
            show(line)
        return
    stream = follow_logs(name, since=since, errors=errors)
    note(f"following {name!r}'s {'errors' if errors else 'log'} from the last {since} (Ctrl-C to stop)")
    try:
        for line in stream:
            show(line)
    except KeyboardInterrupt:
        pass  # the way to stop following
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _registry() -> Any:
    from ...core.registry import Registry

    return Registry()
