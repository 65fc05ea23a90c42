"""The aws planner: reads AWS (pre-flight, the live stack), builds the artifacts in staging (layer from
the cache, function package, synthesized stack), and says what a deploy would do. Creates nothing in AWS.

The plan holds everything ``apply`` needs: pre-flight's facts, whether the stack exists, and the
artifacts by their paths under the staging root. A dry run makes the same plan; without credentials
its facts say "unknown: no credentials" and it cannot be applied.

What the planner decides is plan data with its reasons in the notes: the Lambda runtime
(``runtime_select``: ``--python``, or the newest one the kernel's pins have wheels for, judged against
the live stack's runtime), the reserved concurrency against the account (GetAccountSettings), the
memory and init of an S3 model from a ``spacy.load`` measured here, SnapStart's limits, and the cost
with INIT billing, extra /tmp and the alarm. Each refusal comes before anything is created in AWS.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ...core.errors import UserInputError
from ...core.paths import nimbus_cache
from ...core.plan import CREATE, KEEP, UPDATE, BundleRef, Change, Plan
from ...core.records import DeploymentRecord
from ..base import DeployRequest
from . import cdk_cli
from .aws_client import AwsClient, StackInfo
from .checks import ModelSizing, account_concurrency, check_reserved_concurrency, check_snapstart, init_seconds, size_s3_model
from .cost import estimate, usd
from .jobs_deploy import jobs_changes
from .options import stack_options
from .preflight import PreflightFacts, read_preflight
from .runtimes import RuntimeChoice
from .spec import AUTH_IAM, MODEL_S3, StackSpec, stack_name_for
from .state import READY_STATES

MB = 1024 * 1024  # AWS's "MB" in its Lambda limits
LIMIT_UNZIPPED = 250 * MB  # bytes, function + layers
WORK = "aws"  # the staging subdirectory of this target's artifacts
ALARM_METRICS = 2  # the alarm's metric math reads Lambda's Errors and the handler's PipelineErrors
_LOAD_SECONDS: Dict[str, float] = {}  # bundle hash -> spacy.load seconds measured in this kernel (a dry
# run and the deploy after it must make the same plan)


@dataclass
class Built:
    """What ``_artifacts`` made and decided, for the plan's data and notes."""

    choice: RuntimeChoice
    layer: Any
    spec: StackSpec
    artifacts: Dict[str, str]
    load_seconds: Optional[float]  # spacy.load of the bundle's model here (None: it could not be loaded)
    init_seconds: float  # the cold init the function should expect
    sizing: Optional[ModelSizing] = None  # S3 model mode only
    lines: List[str] = field(default_factory=list)  # the notes of these decisions


def plan(request: DeployRequest, target_name: str) -> Plan:
    """The plan: the Lambda runtime is chosen here (``runtime_select``), not inherited from the kernel."""
    name, bundle, current, progress = request.name, request.bundle, request.current, request.progress
    options = dict(request.options)
    stack_opts = stack_options(options)
    with progress.stage("pre-flight") as stage:
        facts, client = read_preflight(options.get("profile"), options.get("region"), progress.message,
                                       lenient=request.dry_run)
        stage.detail = facts.text()
    stack_name = stack_name_for(name)
    live: Optional[StackInfo] = client.stack(stack_name) if client is not None else None
    stack_fact = (f"unknown: {facts.unknown}" if client is None else
                  f"{live.status}" if live is not None else "none")
    known: Dict[str, Any] = {"preflight": facts.to_json(), "stack": stack_fact, "runtime": _live_runtime(client, live)}

    jobs = jobs_changes(client, name, options)  # --jobs: the jobs stack too

    def make(version: int, changes: List[Change], artifacts: Dict[str, str], data: Dict[str, Any],
             notes: List[str]) -> Plan:
        return Plan(name, target_name, version, changes + jobs, bundle, current, options, known, artifacts,
                    {"stack_name": stack_name, "stack_exists": live is not None, "stack_options": stack_opts,
                     "keep_stack": not artifacts, "create_jobs": any(c.action == CREATE for c in jobs), **data},
                    notes, staging=request.staging)

    if current is not None and live is not None and live.status in READY_STATES and _unchanged(bundle, current, stack_opts):
        live_python = (known["runtime"] or "")[len("python"):] or None
        return make(current.version, [Change(KEEP, f"stack {live.name} ({live.status})",
                                             "the pipeline and the options are unchanged")], {}, {"python": live_python},
                    [_facts_note(facts)])
    if current is None:
        version = 1
    elif bundle.hash == current.hash:
        version = current.version
    else:  # past every version so far: after a rollback, the record's version is an older one
        version = max(current.versions_seen()) + 1
    # before anything is built: a reservation the account cannot give is refused here
    concurrency_line = _check_concurrency(client, live, stack_opts["reserved_concurrency"], facts, known, request.dry_run)
    # an existing stack is judged by AWS's update-block date, a new one by its create-block date; with no
    # credentials (a dry run) the registry's record stands in for the stack
    existing = live is not None or (client is None and current is not None)
    built = _artifacts(request, version, stack_opts, facts, existing, known["runtime"])
    spec, layer, artifacts = built.spec, built.layer, built.artifacts
    assembly = request.staging.path(artifacts["assembly"])
    template = json.loads((assembly / f"{spec.stack_name}.template.json").read_text("utf-8"))
    changes = _changes(bundle, current, live, client is None, spec, template, facts)
    data = {"spec": _relative_spec(spec, request), "resources": len(template.get("Resources", {})),
            "layer_key": getattr(layer, "key", ""), "layer_bytes": layer.unzipped_bytes, "python": built.choice.python,
            "runtime_choice": built.choice.to_dict(), "load_seconds": built.load_seconds,
            "init_seconds": round(built.init_seconds, 2),
            "model_sizing": asdict(built.sizing) if built.sizing else None}
    extra = built.lines + ([concurrency_line] if concurrency_line else [])
    return make(version, changes, artifacts, data, built.choice.lines() + _notes(spec, built, request, facts, extra))


def _live_runtime(client: Optional[AwsClient], live: Optional[StackInfo]) -> Optional[str]:
    """The runtime the live stack's function runs ("python3.12"), or None (no stack, no credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    function = live.outputs.get("FunctionName") if live is not None else None
    if client is None or not function:
        return None
    try:
        config = client.function_configuration(function)
    except (BotoCoreError, ClientError):  # no lambda:GetFunctionConfiguration: the choice just cannot name it
        return None
    return config.get("Runtime") if config else None


def _check_concurrency(client: Optional[AwsClient], live: Optional[StackInfo], requested: Optional[int],
                       facts: PreflightFacts, known: Dict[str, Any], dry_run: bool) -> Optional[str]:
    """``--reserved-concurrency`` against GetAccountSettings (and what the live function holds, which an
    update gives back first): refused when the account cannot give it, else the plan's line. The account's
    figures go into the plan's facts."""
    from botocore.exceptions import BotoCoreError, ClientError

    if requested is None:
        return None
    if client is None:
        return f"reserved concurrency {requested}: not checked against the account ({facts.unknown})"
    function = live.outputs.get("FunctionName") if live is not None else None
    try:
        limits = account_concurrency(client.client("lambda"))
        held = client.reserved_concurrency(function) if function else 0
    except (BotoCoreError, ClientError) as exc:
        why = f"{type(exc).__name__}: {str(exc)[:160]}"
        if dry_run:
            return f"reserved concurrency {requested}: not checked against the account ({why})"
        raise UserInputError(f"the account's concurrency could not be read to check --reserved-concurrency {requested} "
                             f"({why})", "allow lambda:GetAccountSettings and lambda:GetFunctionConcurrency, or leave "
                             "out --reserved-concurrency", where="pre-flight")
    known["account_concurrency"] = {**limits, "function_reserved": held}
    return check_reserved_concurrency(requested, limits, held)


def _unchanged(bundle: BundleRef, current: DeploymentRecord, stack_opts: Dict[str, Any]) -> bool:
    from .options import DEFAULTS

    # an option the record predates (python, snapstart, auth) counts as its default
    return bundle.hash == current.hash and all(current.options.get(k, DEFAULTS.get(k)) == v for k, v in stack_opts.items())


def _load_seconds(model_dir: Path, bundle_hash: str) -> Optional[float]:
    """``spacy.load`` of the bundle's model in this kernel, measured once per bundle (its components are
    registered here: this kernel made the pipeline). None when it cannot be loaded here."""
    if bundle_hash not in _LOAD_SECONDS:
        import spacy

        started = time.perf_counter()
        try:
            spacy.load(model_dir)
        except Exception:  # the estimate is then made without it, and the note says so
            return None
        _LOAD_SECONDS[bundle_hash] = round(time.perf_counter() - started, 2)
    return _LOAD_SECONDS[bundle_hash]


def _artifacts(request: DeployRequest, version: int, o: Dict[str, Any], facts: PreflightFacts, existing: bool,
               live_runtime: Optional[str]) -> Built:
    from .layer import build_layer
    from .package import build_function_code, choose_model_mode, dir_size
    from .requirements import extra_distributions
    from .runtime_select import select_runtime

    progress, staging, name = request.progress, request.staging, request.name
    work = staging.dir(WORK)
    bundle_path = staging.path(request.bundle.path)
    arch = o["arch"]
    lines: List[str] = []
    with progress.stage("layer") as stage:
        choice, pins = select_runtime(arch, extra_distributions(request.staged_bundle()), o.get("python"),
                                      existing=existing, current=live_runtime)
        python = choice.python
        layer = build_layer(python, arch, nimbus_cache() / "layers", pins=pins, langs=[request.bundle.lang],
                            on_step=lambda step, detail: progress.message(f"layer: {step} {detail}".strip()))
        stage.detail = (f"{'cached' if layer.cached else 'built'}: {layer.unzipped_bytes / MB:.0f} MB unzipped "
                        f"for python{python} {arch}")
    with progress.stage("package") as stage:
        model_bytes = dir_size(bundle_path)
        probe_code = build_function_code(bundle_path, work / "code-probe", inline=False)
        mode, ephemeral = choose_model_mode(layer.unzipped_bytes, dir_size(probe_code), model_bytes)
        shutil.rmtree(probe_code, ignore_errors=True)
        load_s = _load_seconds(bundle_path / "model", request.bundle.hash)
        memory, sizing = o["memory"], None
        if mode == MODEL_S3:
            if load_s is None:
                lines.append("model load time: not measured (the model does not load in this kernel); "
                             "the init estimate leaves it out")
            sizing = size_s3_model(model_bytes, memory, load_s or 0.0,
                                   memory_given=request.options.get("memory") is not None)
            memory = sizing.memory_mb
            lines += sizing.lines
        init_s = sizing.init_seconds if sizing else init_seconds(memory, load_s or 0.0)
        snapstart_line = check_snapstart(bool(o["snapstart"]), python, ephemeral)
        if snapstart_line:
            lines.append(snapstart_line)
        code = build_function_code(bundle_path, work / "code", inline=mode != MODEL_S3)
        model_dir = None
        if mode == MODEL_S3:
            model_dir = work / "model"
            shutil.copytree(bundle_path, model_dir)
        spec = StackSpec(name=name, version=version, bundle_hash=request.bundle.hash, python=python, arch=arch,
                         layer_dir=str(layer.path), code_dir=str(code), model_mode=mode,
                         model_dir=str(model_dir) if model_dir else None, model_size_bytes=model_bytes,
                         memory_mb=memory, timeout_s=o["timeout"], ephemeral_storage_mb=ephemeral,
                         reserved_concurrency=o["reserved_concurrency"], log_retention_days=o["log_retention_days"],
                         throttle_rate=float(o["throttle_rate"]), throttle_burst=o["throttle_burst"],
                         quota_per_month=o["quota"], alarm_email=o["alarm_email"], snapstart=bool(o["snapstart"]),
                         auth=o["auth"])
        spec.write(work / "spec.json")
        stage.detail = f"model {model_bytes / MB:.1f} MB {'in the function' if mode != MODEL_S3 else 'as an S3 asset'}"
    with progress.stage("synthesize") as stage:
        started = time.perf_counter()
        env = {}
        if facts.account:
            env = {"CDK_DEFAULT_ACCOUNT": facts.account, "CDK_DEFAULT_REGION": facts.region or ""}
        cdk_cli.synth(work / "spec.json", work / "cdk.out", env)
        stage.detail = f"{time.perf_counter() - started:.1f} s"
    artifacts = {"spec": f"{WORK}/spec.json", "code": f"{WORK}/code", "assembly": f"{WORK}/cdk.out",
                 "outputs": f"{WORK}/outputs.json"}
    if model_dir is not None:
        artifacts["model"] = f"{WORK}/model"
    return Built(choice, layer, spec, artifacts, load_s, init_s, sizing, lines)


def _relative_spec(spec: StackSpec, request: DeployRequest) -> Dict[str, Any]:
    """The spec as plan data: the staged directories by their paths under the staging root."""
    data = json.loads(spec.to_json())
    for key in ("code_dir", "model_dir"):
        if data.get(key):
            data[key] = request.staging.relative(Path(data[key]))
    return data


def _changes(bundle: BundleRef, current: Optional[DeploymentRecord], live: Optional[StackInfo], unknown: bool,
             spec: StackSpec, template: Dict[str, Any], facts: PreflightFacts) -> List[Change]:
    kinds: Dict[str, int] = {}
    for resource in template.get("Resources", {}).values():
        kinds[resource["Type"]] = kinds.get(resource["Type"], 0) + 1
    where = f"{facts.account}/{facts.region}" if facts.account else (facts.region or "the default region")
    exists = live is not None or (unknown and current is not None)
    action = UPDATE if exists else CREATE
    why = (f"the pipeline changed (hash {bundle.hash[:12]})" if current and bundle.hash != current.hash
           else "the options changed" if exists else "new deployment")
    stack_why = f"{why}; the live stack is unknown: no credentials" if unknown else why
    changes = [Change(action, f"stack {spec.stack_name} in {where}: {len(template.get('Resources', {}))} resources",
                      stack_why)]
    changes += [Change(action, f"{count} x {kind}", why) for kind, count in sorted(kinds.items())
                if kind != "AWS::CDK::Metadata"]
    return changes


def _facts_note(facts: PreflightFacts) -> str:
    return f"pre-flight: {facts.text()}"


def _api_note(spec: StackSpec) -> str:
    routes = "POST /predict, GET /health, GET /openapi.json"
    if spec.auth == AUTH_IAM:
        return (f"API: {routes}, AWS_IAM authorization: callers sign with SigV4 (the notebook's AWS credentials) "
                "and need execute-api:Invoke on the stage (the stack's output InvokeArn); the stage throttles at "
                f"{spec.throttle_rate:g} req/s, burst {spec.throttle_burst}; no monthly quota (usage plans meter API keys)")
    return (f"API: {routes}, API key required; throttle {spec.throttle_rate:g} req/s, burst "
            f"{spec.throttle_burst}, quota {spec.quota_per_month if spec.quota_per_month else 'none'} a month")


def _notes(spec: StackSpec, built: Built, request: DeployRequest, facts: PreflightFacts, extra: List[str]) -> List[str]:
    from .package import dir_size

    layer = built.layer
    code_bytes = dir_size(request.staging.path(f"{WORK}/code"))
    total = layer.unzipped_bytes + code_bytes
    load = f"spacy.load {built.load_seconds:.2f} s measured here" if built.load_seconds is not None else "load not measured"
    notes = [
        _facts_note(facts),
        f"function: python{spec.python} {spec.arch}, {spec.memory_mb} MB, timeout {spec.timeout_s} s, "
        f"/tmp {spec.ephemeral_storage_mb} MB, logs kept {spec.log_retention_days} days; cold init ~{built.init_seconds:.1f} s "
        f"({load}) of Lambda's 10 s",
        f"layer {layer.unzipped_bytes / MB:.1f} MB + function {code_bytes / MB:.1f} MB = {total / MB:.1f} MB unzipped "
        f"of Lambda's {LIMIT_UNZIPPED / MB:.0f} MB limit ({total / LIMIT_UNZIPPED:.0%})",
        f"model {spec.model_size_bytes / MB:.1f} MB " + ("in the function package" if spec.model_mode != MODEL_S3
                                                          else "as an S3 asset, loaded into /tmp at cold start"),
        *extra,
        _api_note(spec),
        f"publishes Lambda version '{spec.version_description}' and points the alias 'live' at it "
        "(older versions are kept for %nimbus_rollback)",
        (f"alarm: {spec.alarm_errors} or more errors in {spec.alarm_period_minutes} min emails {spec.alarm_email} "
         "through SNS (confirm the subscription from the email AWS sends); it counts Lambda's Errors plus the "
         "handler's PipelineErrors metric") if spec.alarm_email else "alarm: none",
    ]
    stored = spec.model_size_bytes if spec.model_mode == MODEL_S3 else 0
    alarmed = bool(spec.alarm_email)
    costs = dict(stored_bytes=stored, ephemeral_mb=spec.ephemeral_storage_mb, init_seconds=built.init_seconds,
                 alarm_metrics=ALARM_METRICS if alarmed else 0, custom_metrics=1 if alarmed else 0)
    seconds_per_text = request.timing()
    if seconds_per_text:
        for via_gateway in (False, True):
            notes.append("cost: " + estimate(seconds_per_text, spec.memory_mb, spec.arch,
                                             through_api_gateway=via_gateway, **costs).text())
    else:
        idle = estimate(0.0, spec.memory_mb, spec.arch, **costs)
        notes.append(f"cost: idle ${idle.idle_per_month:.2f}/month"
                     + (f" (the alarm {usd(idle.alarm_per_month)})" if idle.alarm_per_month else "")
                     + f", each cold start {usd(idle.init_per_cold_start)} (INIT is billed); per-text cost needs a timing")
    return notes
