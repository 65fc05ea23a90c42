"""The ``nimbus`` command's group, its exit codes and its output, shared by every command.

Built on click (Pallets): explicit ``click.Option`` objects can be generated from what the targets declare
(``TargetOption``), subcommands can be added by other modules (``@cli.command()``), and click's own
usage errors already exit 2. Exit codes, for scripts and CI:

- 0: done (a read printed what it read; ``status``: the endpoint answered healthy);
- 1: it failed (the endpoint or the target failed; ``status``: not healthy; ``batch``: some rows failed);
- 2: a usage mistake (an unknown option, a bad value, an unknown deployment name): nothing was done.

Results go to stdout (text, or JSON with ``--json``); progress and messages go to stderr, so
``nimbus status reviews --json | jq .health`` works.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, is_dataclass
from typing import Any, Callable, Dict, List, Optional

import click

from ...core.errors import NimbusError, UserInputError

OK, FAILED, USAGE = 0, 1, 2
# Subcommands built when asked for (their options come from the installed targets): name -> factory.
LAZY_COMMANDS: Dict[str, Callable[[], click.Command]] = {}


class Failed(Exception):
    """A command that ran and did not succeed (exit 1), with what to tell the user (already said if empty)."""

    def __init__(self, message: str = "") -> None:
        self.message = message
        super().__init__(message)


class NotebookMatter(UserInputError):
    """Something only a notebook can do (its advice names the magic on purpose)."""


def in_cli_words(text: str) -> str:
    """The api's advice names magics (``%nimbus_list``, ``%%nimbus_batch``); here they are commands."""
    return re.sub(r"%%?nimbus_(\w+)", lambda m: f"nimbus {m.group(1)}", text)


def _say_error(exc: NimbusError) -> None:
    words = (lambda text: text) if isinstance(exc, NotebookMatter) else in_cli_words
    head = f"{exc.where}: {exc.what}" if exc.where else exc.what
    click.echo(f"error: {words(head)}", err=True)
    if exc.todo:
        click.echo(f"  -> {words(exc.todo)}", err=True)


class NimbusGroup(click.Group):
    """Turns the api's errors into exit codes: UserInputError 2, any other NimbusError 1, Failed 1."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in self.commands and name in LAZY_COMMANDS:
            self.add_command(LAZY_COMMANDS[name](), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserInputError as exc:
            _say_error(exc)
            ctx.exit(USAGE)
        except NimbusError as exc:
            _say_error(exc)
            ctx.exit(FAILED)
        except Failed as exc:
            if exc.message:
                click.echo(f"error: {exc.message}", err=True)
            ctx.exit(FAILED)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug or an unforeseen failure: one line, the traceback on request
            if os.environ.get("NIMBUS_TRACEBACK"):
                raise
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
            click.echo("  -> this looks like a bug; run again with NIMBUS_TRACEBACK=1 for the traceback, and report it",
                       err=True)
            ctx.exit(FAILED)


@click.group(cls=NimbusGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="nimbus-jupyter", prog_name="nimbus")
def cli() -> None:
    """Deploy spaCy pipelines to secured endpoints and operate them: the magics' powers for terminals, CI jobs
    and editors without JupyterLab. Same API, same registry ($NIMBUS_HOME) as the notebook and the sidebar.

    \b
    Exit codes: 0 done, 1 failed, 2 usage mistake (nothing done).
    Results go to stdout (--json for scripts); progress and messages to stderr.
    """


json_option = click.option("--json", "as_json", is_flag=True, help="print JSON for scripts instead of text")


def jsonable(value: Any) -> Any:
    """Dataclasses, lists and dicts of them as plain JSON values."""
    if hasattr(value, "to_json") and callable(value.to_json):
        return value.to_json()
    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def emit(value: Any, as_json: bool, text: Optional[str] = None) -> None:
    """``value`` on stdout: as JSON with ``as_json``, else its text form (``text`` or ``str(value)``)."""
    if as_json:
        click.echo(json.dumps(jsonable(value), indent=2, default=str, ensure_ascii=False))
    else:
        click.echo(text if text is not None else str(value))


def note(message: str) -> None:
    """A message for people, on stderr (stdout stays the result)."""
    click.echo(message, err=True)


def main(argv: Optional[List[str]] = None) -> None:
    """The console script ``nimbus``."""
    cli.main(args=argv, prog_name="nimbus")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
