"""The Python API: ``deploy``, ``list_deployments``, ``get_deployment``, ``destroy``; operating what is
deployed: ``status_report``, ``history``, ``rollback`` (over the targets' ``metrics``, ``history`` and
``rollback``, so they work on every target that has them).

This is the orchestration the magics and the sidebar share: serialize, plan, apply, smoke test,
parity check. Targets know how; this module knows in which order.
"""
from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

from filelock import Timeout

from ..core.bundle import build_bundle, require_pipeline
from .deployment import Deployment
from ..core.errors import DeploymentNotFound, DeployFailed, UserInputError
from ..core.operate import RollbackResult, StatusReport, VersionInfo
from .parity import ParityReport, check_parity
from ..core.plan import Plan
from ..core.progress import Listener, Progress
from ..core.registry import Registry
from ..targets import get_target, stages_of

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


@dataclass
class DeployResult:
    """Everything a view shows after a deploy."""

    deployment: Deployment
    unchanged: bool
    samples: List[str]
    results: List[Dict[str, Any]]
    fields: List[str]
    parity: Optional[ParityReport]


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")[:40] or "my-pipeline"
        if not suggestion[0].isalpha():
            suggestion = "p-" + suggestion[:38]
        raise UserInputError(
            f"{name!r} is not a valid deployment name",
            f"use lowercase letters, digits and hyphens, starting with a letter, at most 40 characters (e.g. {suggestion!r})",
        )
    return name


def default_samples(nlp: Any) -> List[str]:
    """spaCy's own example sentences for the pipeline's language, when the user gives none."""
    import importlib

    try:
        sentences = importlib.import_module(f"spacy.lang.{nlp.lang}.examples").sentences
        return list(sentences[:3])
    except (ImportError, AttributeError):
        return ["This is a sample text."]


def deploy(
    nlp: Any,
    name: str,
    target: str = "local",
    *,
    samples: Optional[Sequence[str]] = None,
    workers: Optional[int] = None,
    dry_run: bool = False,
    force: bool = False,
    show: bool = True,
    namespace: Optional[Dict[str, Any]] = None,
    listeners: Sequence[Listener] = (),
    shell: Any = None,
    **target_options: Any,
) -> Union[Deployment, Plan]:
    """Deploy ``nlp`` as ``name`` and return the ``Deployment`` (or, with ``dry_run``, the ``Plan``).

    With ``show`` the progress and the result are displayed: a widget in a notebook, text elsewhere.
    The returned deployment also carries ``unchanged``, ``samples``, ``sample_results`` and ``parity``.
    ``target_options`` go to the target: for ``aws`` region, profile, memory, arch, timeout,
    reserved_concurrency, throttle_rate, throttle_burst, quota, log_retention_days.
    """
    from ..faces.ui.deploy_view import make_view

    if shell is None:
        shell = _current_shell()
    require_pipeline(nlp, "the pipeline")
    check_name(name)
    view = make_view(name, target, stages_of(target), shell) if show else None
    if namespace is None and shell is not None:
        namespace = shell.user_ns
    try:
        outcome = run_deploy(nlp, name, target, samples=samples, workers=workers, dry_run=dry_run, force=force,
                             namespace=namespace, listeners=[*listeners, *([view] if view else [])], **target_options)
    except BaseException as exc:
        if view:
            view.fail(exc)
        raise
    if isinstance(outcome, Plan):
        if view:
            view.show_plan(outcome)
        return outcome
    if view:
        view.finish(outcome)
    deployment = outcome.deployment
    deployment.unchanged = outcome.unchanged
    deployment.samples, deployment.sample_results, deployment.parity = outcome.samples, outcome.results, outcome.parity
    return deployment


def _current_shell() -> Any:
    try:
        from IPython import get_ipython

        return get_ipython()
    except ImportError:
        return None


def run_deploy(
    nlp: Any,
    name: str,
    target: str = "local",
    *,
    samples: Optional[Sequence[str]] = None,
    workers: Optional[int] = None,
    dry_run: bool = False,
    force: bool = False,
    namespace: Optional[Dict[str, Any]] = None,
    listeners: Sequence[Listener] = (),
    registry: Optional[Registry] = None,
    **target_options: Any,
) -> Union[DeployResult, Plan]:
    """The deploy itself, reporting to ``listeners``; views are the caller's business."""
    require_pipeline(nlp, "the pipeline")
    check_name(name)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise UserInputError(f"workers must be a whole number of at least 1, not {workers!r}", "e.g. workers=2")
    sample_texts = _check_samples(samples) if samples is not None else default_samples(nlp)
    registry = registry or Registry()
    tgt = get_target(target, registry=registry, workers=workers, **target_options)
    progress = Progress(tgt.stages, listeners)
    lock = _acquire(registry, name, 1, f"another deploy or destroy of {name!r} is running (maybe in another kernel)",
                    "wait for it to finish, then run this again")
    staging = registry.home / "staging" / uuid.uuid4().hex
    try:
        staging.parent.mkdir(exist_ok=True, mode=0o700)
        with progress.stage("serialize") as stage:
            bundle = build_bundle(nlp, staging, name, namespace)
            stage.detail = f"{bundle.size_bytes / 1e6:.1f} MB, hash {bundle.hash[:12]}"
        if getattr(tgt, "wants_timing", False):
            tgt.seconds_per_text = seconds_per_text(nlp, sample_texts)
        plan = tgt.plan(name, bundle, registry.get(name), force=force, progress=progress, dry_run=dry_run)
        if dry_run:
            for stage_name in progress.unreported():
                progress.skip(stage_name, "dry run")
            return plan
        if plan.noop:
            for stage_name in progress.unreported()[:-1]:
                progress.skip(stage_name, "unchanged")
            progress.message(f"{name!r} already serves this pipeline (v{plan.version}, hash {bundle.hash[:12]}): nothing to do")
            record = registry.get(name)
        else:
            record = tgt.apply(plan, progress)
            registry.put(record)
        deployment = Deployment.from_record(record)
        with progress.stage("smoke test") as stage:
            answer = deployment.client(via="http").predict(sample_texts)  # the public path: URL and key
            if str(answer.get("version")) != str(plan.version):
                raise DeployFailed(f"the endpoint serves version {answer.get('version')}, expected {plan.version}",
                                   "deploy again; if it persists, destroy and deploy", where="smoke test")
            stage.detail = f"{len(sample_texts)} sample(s) answered"
        parity = check_parity(nlp, sample_texts, answer["results"], answer["fields"])
        return DeployResult(deployment, plan.noop, sample_texts, answer["results"], answer["fields"], parity)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.release()


def _acquire(registry: Registry, name: str, timeout: float, busy: str, todo: str) -> Any:
    """The deployment's cross-kernel lock, held; the caller releases it. Busy means a UserInputError."""
    lock = registry.lock_for(name)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise UserInputError(busy, todo)
    return lock


def seconds_per_text(nlp: Any, texts: Sequence[str], budget: float = 0.3) -> float:
    """The kernel's time per text on ``texts`` (repeated for about ``budget`` seconds), for cost estimates."""
    import time

    done, started = 0, time.perf_counter()
    while True:
        for _doc in nlp.pipe(texts):
            done += 1
        elapsed = time.perf_counter() - started
        if elapsed >= budget or done >= 2000:
            return elapsed / max(1, done)


def _forget_checkpoints(name: str, registry: Registry) -> None:
    from .checkpoints import CheckpointStore

    path = registry.home / "checkpoints.sqlite"
    if path.exists():
        store = CheckpointStore(path)
        try:
            store.forget(name)
        finally:
            store.close()


def _check_samples(samples: Any) -> List[str]:
    if isinstance(samples, str):
        samples = [samples]
    try:
        texts = list(samples)
    except TypeError:
        raise UserInputError(f"samples must be a list of strings, not {type(samples).__name__}", 'e.g. samples=["great product"]')
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if not texts or bad:
        raise UserInputError("samples must be a non-empty list of non-empty strings"
                             + (f" (item {bad[0]} is {texts[bad[0]]!r})" if bad else ""),
                             'e.g. --samples "great product" "arrived broken"')
    return texts[:20]


def _live(record: Dict[str, Any], registry: Registry) -> Deployment:
    status, detail = get_target(record["target"], registry=registry).live_status(record)
    return Deployment.from_record(record, status, detail)


def list_deployments(registry: Optional[Registry] = None, aws: bool = True) -> List[Deployment]:
    """Every deployment in the registry, with its live status (probed, never assumed); with ``aws``, also
    the Nimbus stacks in the default AWS account/region that this machine did not deploy."""
    registry = registry or Registry()
    found = [_live(record, registry) for record in registry.all()]
    if aws:
        from ..targets.aws.discover import remote_deployments

        found += remote_deployments({d.name for d in found})
    return found


def get_record(name: str, registry: Registry) -> Dict[str, Any]:
    """The registry record of ``name``; a Nimbus stack deployed from another machine is adopted."""
    record = registry.get(name)
    if record is None:
        from ..targets.aws.discover import adopt

        record = adopt(name, registry)
    if record is None:
        known = ", ".join(r["name"] for r in registry.all()) or "none yet"
        raise DeploymentNotFound(f"no deployment named {name!r} (deployments: {known})",
                                 "check the name with %nimbus_list, or deploy it with %nimbus_deploy")
    return record


def get_deployment(name: str, registry: Optional[Registry] = None) -> Deployment:
    registry = registry or Registry()
    return _live(get_record(name, registry), registry)


def destroy(name: str, registry: Optional[Registry] = None) -> str:
    """Stop ``name``'s endpoint and remove everything it made; returns what was done."""
    registry = registry or Registry()
    record = get_record(name, registry)
    lock = _acquire(registry, name, 5, f"a deploy of {name!r} is running", "wait for it to finish, then destroy")
    try:
        done = get_target(record["target"], registry=registry).destroy(record)
        registry.remove(name)
        _forget_checkpoints(name, registry)
    finally:
        lock.release()
    return f"destroyed {name!r}: {done}"


# -- operate: status, history, rollback -----------------------------------------------------------------
def _target_method(record: Dict[str, Any], registry: Registry, method: str, todo: str) -> Any:
    """The target's ``method``, or a UserInputError naming the target that lacks it."""
    target = get_target(record["target"], registry=registry)
    fn = getattr(target, method, None)
    if fn is None:
        raise UserInputError(f"the {record['target']} target of {record['name']!r} cannot {todo} yet",
                             "use the target's own console for now, or a local deployment")
    return fn


def status_report(name: str, registry: Optional[Registry] = None) -> StatusReport:
    """Health (the endpoint's /health answered now, with the key, timed) and the target's metrics.

    Metrics that cannot be read (server down, no AWS credentials) leave the windows empty and say why
    in ``metrics_detail``; the health probe is never skipped because of them.
    """
    import time

    registry = registry or Registry()
    record = get_record(name, registry)
    deployment = Deployment.from_record(record)
    report = StatusReport(name=name, target=record["target"], version=int(record.get("version", 0)),
                          health="unknown", url=record.get("url", ""),
                          checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    started = time.perf_counter()
    try:
        answer = deployment.client(via="http").health(timeout=10)
        report.health = "ok" if answer.get("status") == "ok" else "down"
        served = answer.get("version")
        if served is not None and str(served) != str(report.version):
            report.health_detail = f"the endpoint serves v{served}, the registry says v{report.version}"
    except Exception as exc:  # EndpointError, or a missing key file: the endpoint is not usable either way
        report.health, report.health_detail = "down", str(getattr(exc, "what", exc))
    report.health_ms = round((time.perf_counter() - started) * 1000, 1)
    if report.health != "ok":  # the target says why and what to do (dead server, failed stack)
        status, detail = get_target(record["target"], registry=registry).live_status(record)
        report.health_detail = "; ".join(x for x in (report.health_detail, detail or status) if x)
    metrics = getattr(get_target(record["target"], registry=registry), "metrics", None)
    if metrics is None:  # health alone is still worth showing
        report.metrics_detail = f"the {record['target']} target does not report metrics yet"
        return report
    try:
        report.last_hour, report.last_day, report.cost_this_month_usd, report.cost_detail = metrics(record)
    except Exception as exc:  # the status must still show health when metrics cannot be read
        report.metrics_detail = f"metrics unavailable: {getattr(exc, 'what', None) or f'{type(exc).__name__}: {exc}'}"
    return report


def history(name: str, registry: Optional[Registry] = None) -> List[VersionInfo]:
    """Every deploy and rollback of ``name``, oldest first, with who, when, hash and components."""
    registry = registry or Registry()
    record = get_record(name, registry)
    return _target_method(record, registry, "history", "list its versions")(record)


def parse_version(value: Union[int, str, None]) -> Optional[int]:
    """2, "2" or "v2" -> 2; None stays None."""
    if value is None or isinstance(value, int):
        return value
    text = str(value).strip().lower().lstrip("v")
    if not text.isdigit():
        raise UserInputError(f"{value!r} is not a version", "give a version number as %nimbus_history lists it, e.g. --to 2")
    return int(text)


def rollback(name: str, to: Union[int, str, None] = None, registry: Optional[Registry] = None) -> RollbackResult:
    """Serve the previous kept version of ``name`` (or ``to``); under the deployment's lock, like a
    deploy or destroy, and the registry records the new version and a history entry."""
    registry = registry or Registry()
    version = parse_version(to)
    record = get_record(name, registry)
    fn = _target_method(record, registry, "rollback", "roll back")
    lock = _acquire(registry, name, 5, f"a deploy, destroy or rollback of {name!r} is running",
                    "wait for it to finish, then roll back")
    try:
        record = get_record(name, registry)  # read again under the lock: a deploy may have just finished
        new_record, result = fn(record, version)
        registry.put(new_record)
    finally:
        lock.release()
    return result
