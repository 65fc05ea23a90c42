"""Deploying: serialize, plan, execute the plan (apply it, or with ``dry_run`` only show it), smoke test,
parity check. Targets know how; this module knows in which order, for every target alike.

``run_deploy`` is the deploy itself, reporting to listeners; ``deploy`` returns the ``Deployment``.
Views (the widget, the text view) are the faces' business: ``nimbus_jupyter.deploy`` and
``%nimbus_deploy`` add one as a listener.

Two checks of what the user gave live here, for every face alike: the samples (``samples.choose``: the
user's own texts whenever this process has seen them, else generic ones said to be generic) and whether
the pipeline may take the name (``origin``: the same pipeline, changed, is a new version; another
pipeline needs ``force``).
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Union

from ..core.bundle import build_bundle, require_pipeline
from ..core.errors import DeployFailed, UserInputError
from ..core.plan import UPDATE, ApplyExecutor, BundleRef, Change, DisplayOnlyExecutor, Plan
from ..core.progress import SERIALIZE, SMOKE_TEST, Listener, Progress
from ..core.records import DeploymentRecord
from ..core.registry import Registry
from ..core.staging import Staging
from ..endpoint.client import Pin, WrongVersion
from ..targets.base import DeployRequest, Warmable
from ..targets.registry import check_options, get_target
from . import samples as sampling
from .deployment import Deployment
from .deployments import acquire
from .origin import Origin
from .parity import check_parity
from .results import ComponentChange, DeployResult, StageRecorder

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_TIMINGS: Dict[str, float] = {}  # bundle hash -> the kernel's seconds per text, measured once per process
__all__ = ["DeployResult", "NAME_PATTERN", "check_name", "default_samples", "deploy", "deployment_of", "run_deploy"]


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
    """spaCy's own example sentences for the pipeline's language (generic: ``samples.choose`` says so)."""
    return sampling.generic(nlp).texts


def deploy(nlp: Any, name: str, target: str = "local", *, samples: Optional[Sequence[str]] = None,
           dry_run: bool = False, force: bool = False, namespace: Optional[Dict[str, Any]] = None,
           listeners: Sequence[Listener] = (), registry: Optional[Registry] = None,
           origin: Optional[Origin] = None, **target_options: Any) -> Union[Deployment, Plan]:
    """Deploy ``nlp`` as ``name`` on ``target`` and return the ``Deployment`` (with ``dry_run``, the ``Plan``).

    The returned deployment also carries ``unchanged``, ``samples``, ``sample_results``, ``parity``,
    ``plan`` and the whole ``result`` (a ``DeployResult``, which displays itself). ``target_options``
    are the target's declared options (``workers`` on local; ``memory``, ``region``, ... on aws):
    ``%nimbus_deploy?`` lists them by target. ``origin`` says where the pipeline comes from (see
    ``api.origin``): with it, the same pipeline with components added or removed is a new version.
    """
    outcome = run_deploy(nlp, name, target, samples=samples, dry_run=dry_run, force=force, namespace=namespace,
                         listeners=listeners, registry=registry, origin=origin, **target_options)
    return outcome if isinstance(outcome, Plan) else deployment_of(outcome)


def deployment_of(result: DeployResult) -> Deployment:
    """The result's deployment, carrying what the deploy found."""
    deployment = result.deployment
    deployment.unchanged, deployment.samples = result.unchanged, result.samples
    deployment.sample_results, deployment.parity, deployment.plan = result.results, result.parity, result.plan
    deployment.result = result
    return deployment


def run_deploy(
    nlp: Any,
    name: str,
    target: str = "local",
    *,
    samples: Optional[Sequence[str]] = None,
    dry_run: bool = False,
    force: bool = False,
    namespace: Optional[Dict[str, Any]] = None,
    listeners: Sequence[Listener] = (),
    registry: Optional[Registry] = None,
    origin: Optional[Origin] = None,
    **target_options: Any,
) -> Union[DeployResult, Plan]:
    """The deploy itself, reporting to ``listeners``: one planner, then the apply executor (or, with
    ``dry_run``, the display-only one). The staging directory is gone when this returns.

    ``samples``: a list of texts or a ``samples.Samples``; None takes the user's texts this process has
    seen (``samples.choose``), else generic ones, and the result says which."""
    require_pipeline(nlp, "the pipeline")
    check_name(name)
    options = check_options(target, target_options)
    if isinstance(samples, sampling.Samples):
        chosen = replace(samples, texts=_check_samples(samples.texts))
    else:
        chosen = sampling.choose(nlp, _check_samples(samples) if samples is not None else None, name)
    sample_texts = chosen.texts
    origin = origin or Origin()
    registry = registry or Registry()
    tgt = get_target(target, registry)
    recorder = StageRecorder()
    progress = Progress(tgt.stages, [recorder, *listeners])
    started = time.perf_counter()
    lock = acquire(registry, name, 1, f"another deploy or destroy of {name!r} is running (maybe in another kernel)",
                   "wait for it to finish, then run this again")
    if not dry_run and isinstance(tgt, Warmable):
        tgt.warm()  # e.g. the local target's zygote imports spaCy while the pipeline is serialized
    try:
        with Staging(registry.home) as staging:
            with progress.stage(SERIALIZE) as stage:
                bundle = build_bundle(nlp, staging.path("bundle"), name, namespace)
                stage.detail = f"{bundle.size_bytes / 1e6:.1f} MB, hash {bundle.hash[:12]}"
            current = _finish_interrupted(registry.get(name), tgt, registry, progress)
            _check_current(name, target, bundle.manifest, current, force, origin)
            request = DeployRequest(name, BundleRef.of(bundle, staging), current, options, staging, progress,
                                    force=force, dry_run=dry_run,
                                    timing=lambda: _timing(nlp, sample_texts, bundle.hash))
            plan = tgt.plan(request)
            change = ComponentChange.between(current.components, bundle.manifest["components"]) if current else None
            if change is not None:
                plan.changes.insert(1, Change(UPDATE, change.text(), "the pipeline's components changed"))
            if dry_run:
                DisplayOnlyExecutor().execute(plan, progress)
                return plan

            def apply(plan: Plan, progress: Progress) -> DeploymentRecord:
                record = tgt.apply(plan, progress)
                return record.evolve(origin=origin.to_json()) if origin.known else record

            record = ApplyExecutor(apply, registry.put, undo=tgt.destroy, forget=registry.remove).execute(plan, progress)
            assert record is not None
            result = _smoke_test(nlp, record, plan, sample_texts, progress, registry)
    finally:
        lock.release()
    result.stages, result.messages = recorder.timings(), recorder.messages
    result.seconds = time.perf_counter() - started
    result.samples_note, result.generic_samples = chosen.note(), chosen.generic
    result.components = change
    result.previous_version = current.version if current is not None else None
    if not chosen.generic:
        sampling.remember(chosen.texts, chosen.source, name)
    return result


def _smoke_test(nlp: Any, record: DeploymentRecord, plan: Plan, texts: List[str], progress: Progress,
                registry: Registry) -> DeployResult:
    """The samples through the public path (URL and key), pinned to the version just deployed: another
    version's answer, or a sample the pipeline fails on at the endpoint, fails the deploy with its reason."""
    deployment = Deployment.from_record(record, registry=registry)
    with progress.stage(SMOKE_TEST) as stage:
        client = deployment.client(via="http", pin=Pin(str(plan.version), plan.bundle.hash))
        try:
            answer = client.predict(texts)
        except WrongVersion as exc:
            raise DeployFailed(f"the endpoint does not serve version {plan.version}: {exc.what}",
                               "deploy again; if it persists, destroy and deploy", where="smoke test") from exc
        finally:
            client.close()
        if str(answer.get("version")) != str(plan.version):
            raise DeployFailed(f"the endpoint serves version {answer.get('version')}, expected {plan.version}",
                               "deploy again; if it persists, destroy and deploy", where="smoke test")
        failed = [(i, r["error"]) for i, r in enumerate(answer.get("results") or [])
                  if isinstance(r, dict) and set(r) == {"error"} and isinstance(r["error"], dict)]
        if failed or answer.get("errors"):
            i, error = failed[0] if failed else (0, {"type": "Error", "message": "see the endpoint's log"})
            raise DeployFailed(
                f"the pipeline failed on {len(failed) or answer.get('errors')} of {len(texts)} sample(s) at the endpoint "
                f"(v{plan.version} is deployed and serving): sample {i + 1}: {error.get('type')}: {error.get('message')}",
                f"fix the component and deploy again, or go back with %nimbus_rollback {plan.name}; "
                f"%nimbus_logs {plan.name} --errors has the traceback", where="smoke test")
        stage.detail = f"{len(texts)} sample(s) answered"
    parity = check_parity(nlp, texts, answer["results"], answer["fields"])
    return DeployResult(deployment, plan.noop, texts, answer["results"], answer["fields"], parity, plan)


def _finish_interrupted(current: Optional[DeploymentRecord], tgt: Any, registry: Registry,
                        progress: Progress) -> Optional[DeploymentRecord]:
    """A record still ``starting`` under the deploy lock is a deploy that never finished (its process was
    killed, or its last registry write failed): stop what it started and deploy afresh."""
    if current is None or current.status != "starting" or current.target != tgt.name:
        return current
    progress.message(f"an earlier deploy of {current.name!r} did not finish; stopping what it started")
    tgt.destroy(current)
    registry.remove(current.name)
    return None


def _check_current(name: str, target: str, manifest: Dict[str, Any], current: Optional[DeploymentRecord],
                   force: bool, origin: Origin) -> None:
    """A name is one deployment: on one target, serving one pipeline. The same pipeline may change its
    components (a new version); another pipeline takes the name only with --force (see ``api.origin``)."""
    if current is None:
        return
    if current.target != target:
        raise UserInputError(f"{name!r} is deployed on target {current.target!r}",
                             f"destroy it first (%nimbus_destroy {name}) or choose another --name")
    mine, theirs = (manifest["lang"], list(manifest["components"])), (current.lang, list(current.components))
    if mine == theirs or force:
        return
    recorded = Origin.from_json(current.origin)
    if mine[0] == theirs[0] and origin.same_pipeline(recorded):
        return  # the same pipeline with components added or removed: a new version
    claimed = f", deployed from {recorded.describe()}" if recorded.known else ""
    raise UserInputError(
        f"the name {name!r} is taken by another pipeline ({theirs[0]}: {', '.join(theirs[1]) or 'no components'}"
        f"{claimed}); this one is {mine[0]}: {', '.join(mine[1]) or 'no components'}"
        + (f", from {origin.describe()}" if origin.known else ""),
        f"choose another --name, or add --force (force=True in Python) to replace {name!r} with this pipeline",
    )


def _timing(nlp: Any, texts: Sequence[str], bundle_hash: str) -> float:
    """The kernel's time per text for this pipeline, measured once: a dry run and the deploy after it
    make the same plan (the cost lines included)."""
    if bundle_hash not in _TIMINGS:
        _TIMINGS[bundle_hash] = seconds_per_text(nlp, texts)
    return _TIMINGS[bundle_hash]


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
