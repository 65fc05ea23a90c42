"""``nimbus deploy PATH --name N [--target T] [target options]``: the deploy of ``%nimbus_deploy``, from a
pipeline on disk (``nlp.to_disk(PATH)``) or an installed pipeline package (``en_core_web_sm``).

The target options are generated from what the targets declare (``TargetOption``), in one help section per
target, as ``%nimbus_deploy`` does. Components defined in notebook cells are a notebook matter: their code
lives in the kernel, so ``%nimbus_deploy`` ships it; a saved pipeline that needs them cannot load here.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from ...core.errors import UserInputError
from ...core.progress import RUNNING, MessageEvent, ProgressEvent, StageEvent
from ...targets.base import TargetOption
from ...targets.registry import DEFAULT_TARGET, catalog
from .app import LAZY_COMMANDS, Failed, NotebookMatter, emit

OPTION_PREFIX = "target_option__"  # click parameter names of the generated options (no clash with deploy's own)
_TYPES = {"int": click.INT, "float": click.FLOAT, "str": click.STRING}
NOTEBOOK_ONLY = ("components defined in notebook cells are a notebook matter: deploy from the notebook with "
                 "%nimbus_deploy, which ships their cell code; or move them into a package you install")


def load_pipeline(path: str) -> Any:
    """The spaCy pipeline at ``path`` (a directory from ``nlp.to_disk``) or named ``path`` (an installed package)."""
    import spacy

    where = Path(path).expanduser()
    if where.exists():
        if not (where / "config.cfg").is_file():
            raise UserInputError(f"{path} is not a saved spaCy pipeline (it has no config.cfg)",
                                 "save one with nlp.to_disk(PATH), or give an installed pipeline package's name")
    elif not spacy.util.is_package(path):
        raise UserInputError(f"{path!r} is neither a directory nor an installed spaCy pipeline package",
                             "give the directory you saved with nlp.to_disk(PATH), or a package name such as "
                             "en_core_web_sm (pip install it first)")
    try:
        return spacy.load(where if where.exists() else path)
    except Exception as exc:  # spaCy says which factory or file is missing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "E002" in str(exc) or "factory" in str(exc).lower():
            raise NotebookMatter(f"{path} uses a component whose code is not installed here: {first}", NOTEBOOK_ONLY)
        raise UserInputError(f"cannot load the pipeline {path}: {first}",
                             "check that it was saved with nlp.to_disk and that its packages are installed")


def _default_name(path: str) -> str:
    import re

    stem = Path(path).name or path
    return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")[:40]


def _target_options() -> Tuple[List[click.Option], Dict[str, List[str]]]:
    """A click option per declared option (one for an option two targets declare alike), and which
    option names belong to which target's help section."""
    seen: Dict[str, TargetOption] = {}
    sections: Dict[str, List[str]] = {}
    params: List[click.Option] = []
    for name, cls in catalog().classes.items():
        sections[name] = []
        for option in cls.options:
            if option.name in seen:
                continue
            seen[option.name] = option
            sections[name].append(OPTION_PREFIX + option.name)
            params.append(_click_option(option))
    return params, sections


def _click_option(option: TargetOption) -> click.Option:
    decls = [option.flag, OPTION_PREFIX + option.name]
    if option.type == "bool":
        return click.Option(decls, is_flag=True, default=None, help=option.help)
    kind = click.Choice(list(option.choices or ())) if option.type == "choice" else _TYPES[option.type]
    return click.Option(decls, type=kind, default=None, help=option.help, metavar=option.metavar,
                        show_default=False)


class DeployCommand(click.Command):
    """Its help lists the target options in one section per target."""

    def __init__(self, *args: Any, sections: Dict[str, List[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sections = sections

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        grouped = {n for names in self.sections.values() for n in names}
        own = [p.get_help_record(ctx) for p in self.get_params(ctx)
               if isinstance(p, click.Option) and p.name not in grouped]
        with formatter.section("Options"):
            formatter.write_dl([r for r in own if r])
        classes = catalog().classes
        for target, names in self.sections.items():
            records = [p.get_help_record(ctx) for p in self.params if p.name in names]
            if records:
                with formatter.section(f"{target} target ({classes[target].title}), with --target {target}"):
                    formatter.write_dl([r for r in records if r])


class StderrProgress:
    """Deploy progress on stderr: a tqdm bar over the stages (on a terminal) and a line per finished stage."""

    def __init__(self, name: str, target: str, stages: Sequence[str]) -> None:
        from tqdm import tqdm

        self.tqdm = tqdm
        self.bar = tqdm(total=len(stages), unit="stage", desc=f"deploying {name} to {target}", file=sys.stderr,
                        disable=None, leave=False)

    def __call__(self, event: Any) -> None:
        if isinstance(event, StageEvent):
            if event.state == RUNNING:
                self.bar.set_postfix_str(event.stage)
                return
            took = f"{event.seconds:6.2f} s" if event.seconds is not None else " " * 8
            from ...api.results import ICONS

            self.tqdm.write(f"  {ICONS.get(event.state, '?')} {event.stage:<11} {took}  {event.detail}", file=sys.stderr)
            self.bar.update(1)
        elif isinstance(event, ProgressEvent):
            self.bar.set_postfix_str(f"{event.stage} {event.done}/{event.total} {event.detail}"[:60])
        elif isinstance(event, MessageEvent):
            self.tqdm.write(f"  {event.text}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _samples(nlp: Any, sample: Sequence[str], samples_from: Optional[str], samples_column: Optional[str]) -> Any:
    from ...api import samples as sampling
    from .tables import column_of, read_table

    if sample and samples_from:
        raise UserInputError("give either --sample or --samples-from, not both", "e.g. --sample 'a text like yours'")
    if sample:
        return sampling.Samples(list(sample), sampling.GIVEN)
    if samples_from:
        path = Path(samples_from)
        if path.suffix.lower() == ".txt":
            values = path.read_text("utf-8").splitlines() if path.is_file() else []
        else:
            if not samples_column:
                raise UserInputError(f"--samples-from {path}: say which column holds the texts", "add --samples-column COL")
            values = list(column_of(read_table(path), samples_column, path))
        texts = sampling.pick(values)
        if not texts:
            raise UserInputError(f"--samples-from {path}: no non-empty texts in it", "give a file with a few texts")
        return sampling.Samples(texts, f"the file {path}")
    generic = sampling.generic(nlp)
    return sampling.Samples(generic.texts, generic.source, True,
                            'give your own with --sample "a text like yours" (again for more) or '
                            "--samples-from FILE [--samples-column COL]")


def _deploy_json(result: Any) -> Dict[str, Any]:
    from ..sidebar_models import DeploymentInfo
    from .app import jsonable

    return {"deployment": DeploymentInfo.of(result.deployment).to_json(), "what_happened": result.what_happened(),
            "unchanged": result.unchanged, "previous_version": result.previous_version, "seconds": round(result.seconds, 3),
            "stages": jsonable(result.stages), "components": jsonable(result.components), "samples": result.samples,
            "samples_note": result.samples_note, "results": result.results, "fields": result.fields,
            "parity": {"ok": result.parity.ok, "differences": result.parity.differences} if result.parity else None}


def make_deploy_command() -> click.Command:
    generated, sections = _target_options()
    targets = ", ".join(catalog().classes) or DEFAULT_TARGET

    def deploy(path: str, name: Optional[str], target: str, sample: Tuple[str, ...], samples_from: Optional[str],
               samples_column: Optional[str], dry_run: bool, force: bool, as_json: bool, **options: Any) -> None:
        from ...api.orchestration import check_name, run_deploy
        from ...api.origin import cli_origin
        from ...core.plan import Plan
        from ...targets.registry import stages_of

        given = {key[len(OPTION_PREFIX):]: value for key, value in options.items()
                 if key.startswith(OPTION_PREFIX) and value is not None}
        name = name or _default_name(path)
        check_name(name)
        stages = stages_of(target)
        nlp = load_pipeline(path)
        samples = _samples(nlp, sample, samples_from, samples_column)
        progress = StderrProgress(name, target, stages)
        try:
            outcome = run_deploy(nlp, name, target, samples=samples, dry_run=dry_run, force=force, listeners=[progress],
                                 origin=cli_origin(path), **given)
        finally:
            progress.close()
        if isinstance(outcome, Plan):
            emit(outcome, as_json)
            return
        emit(_deploy_json(outcome) if as_json else None, as_json, None if as_json else outcome.text(stages=False))
        if outcome.parity is not None and not outcome.parity.ok:
            raise Failed("the endpoint's answers differ from the pipeline's here (parity check): see above")

    params: List[click.Parameter] = [
        click.Argument(["path"]),
        click.Option(["--name"], help="deployment name: lowercase letters, digits, hyphens (default: from PATH)"),
        click.Option(["--target"], default=DEFAULT_TARGET, show_default=True, help=f"where to deploy: {targets}"),
        click.Option(["--sample", "sample"], multiple=True, metavar="TEXT",
                     help="a sample text for the smoke test and parity check (repeat it for more)"),
        click.Option(["--samples-from"], metavar="FILE", help="take samples from a .txt file (a text a line) or a "
                     ".csv/.jsonl/.parquet file's --samples-column"),
        click.Option(["--samples-column"], metavar="COL", help="the column of --samples-from that holds the texts"),
        click.Option(["--dry-run"], is_flag=True, help="print the plan and change nothing"),
        click.Option(["--force"], is_flag=True, help="replace a deployment of the same name that serves another pipeline "
                     "(not needed to redeploy the same PATH with components added or removed)"),
        click.Option(["--json", "as_json"], is_flag=True, help="print the result (or the plan) as JSON"),
        *generated,
    ]
    return DeployCommand(
        "deploy", callback=deploy, params=params, sections=sections,
        help="Deploy the spaCy pipeline at PATH (a directory saved with nlp.to_disk, or an installed pipeline package "
             "such as en_core_web_sm) and print its endpoint, samples and the parity check.\n\n"
             f"Without samples the smoke test uses generic sentences (and says so). Note: {NOTEBOOK_ONLY}.",
        short_help="Deploy a saved or installed spaCy pipeline.")


LAZY_COMMANDS["deploy"] = make_deploy_command
