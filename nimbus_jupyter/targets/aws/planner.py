"""The aws planner: reads AWS (pre-flight, the live stack), builds the artifacts in staging (layer from
the cache, function package, synthesized stack), and says what a deploy would do. Creates nothing in AWS.

The plan holds everything ``apply`` needs: pre-flight's facts, whether the stack exists, and the
artifacts by their paths under the staging root. A dry run makes the same plan; without credentials
its facts say "unknown: no credentials" and it cannot be applied.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ...core.paths import nimbus_cache
from ...core.plan import CREATE, KEEP, UPDATE, BundleRef, Change, Plan
from ...core.records import DeploymentRecord
from ..base import DeployRequest
from . import cdk_cli
from .aws_client import AwsClient, StackInfo
from .cost import estimate
from .options import stack_options
from .preflight import PreflightFacts, read_preflight
from .runtimes import RuntimeChoice
from .spec import MODEL_S3, StackSpec, stack_name_for
from .state import READY_STATES

MB = 1024 * 1024  # AWS's "MB" in its Lambda limits
LIMIT_UNZIPPED = 250 * MB  # bytes, function + layers
WORK = "aws"  # the staging subdirectory of this target's artifacts


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
    known = {"preflight": facts.to_json(), "stack": stack_fact, "runtime": _live_runtime(client, live)}

    def make(version: int, changes: List[Change], artifacts: Dict[str, str], data: Dict[str, Any],
             notes: List[str]) -> Plan:
        return Plan(name, target_name, version, changes, bundle, current, options, known, artifacts,
                    {"stack_name": stack_name, "stack_exists": live is not None, "stack_options": stack_opts, **data},
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
    # an existing stack is judged by AWS's update-block date, a new one by its create-block date; with no
    # credentials (a dry run) the registry's record stands in for the stack
    existing = live is not None or (client is None and current is not None)
    choice, layer, spec, artifacts = _artifacts(request, version, stack_opts, facts, existing, known["runtime"])
    assembly = request.staging.path(artifacts["assembly"])
    template = json.loads((assembly / f"{spec.stack_name}.template.json").read_text("utf-8"))
    changes = _changes(bundle, current, live, client is None, spec, template, facts)
    data = {"spec": _relative_spec(spec, request), "resources": len(template.get("Resources", {})),
            "layer_key": getattr(layer, "key", ""), "layer_bytes": layer.unzipped_bytes, "python": choice.python,
            "runtime_choice": choice.to_dict()}
    return make(version, changes, artifacts, data, choice.lines() + _notes(spec, layer, request, facts))


def _live_runtime(client: Optional[AwsClient], live: Optional[StackInfo]) -> Optional[str]:
    """The runtime the live stack's function runs ("python3.12"), or None (no stack, no credentials)."""
    function = live.outputs.get("FunctionName") if live is not None else None
    if client is None or not function:
        return None
    config = client.function_configuration(function)
    return config.get("Runtime") if config else None


def _unchanged(bundle: BundleRef, current: DeploymentRecord, stack_opts: Dict[str, Any]) -> bool:
    return bundle.hash == current.hash and all(current.options.get(k) == v for k, v in stack_opts.items())


def _artifacts(request: DeployRequest, version: int, o: Dict[str, Any], facts: PreflightFacts, existing: bool,
               live_runtime: Optional[str]) -> Tuple[RuntimeChoice, Any, StackSpec, Dict[str, str]]:
    from .layer import build_layer
    from .package import build_function_code, choose_model_mode, dir_size
    from .requirements import extra_distributions
    from .runtime_select import select_runtime

    progress, staging, name = request.progress, request.staging, request.name
    work = staging.dir(WORK)
    bundle_path = staging.path(request.bundle.path)
    arch = o["arch"]
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
        code = build_function_code(bundle_path, work / "code", inline=mode != MODEL_S3)
        model_dir = None
        if mode == MODEL_S3:
            model_dir = work / "model"
            shutil.copytree(bundle_path, model_dir)
        spec = StackSpec(name=name, version=version, bundle_hash=request.bundle.hash, python=python, arch=arch,
                         layer_dir=str(layer.path), code_dir=str(code), model_mode=mode,
                         model_dir=str(model_dir) if model_dir else None, model_size_bytes=model_bytes,
                         memory_mb=o["memory"], timeout_s=o["timeout"], ephemeral_storage_mb=ephemeral,
                         reserved_concurrency=o["reserved_concurrency"], log_retention_days=o["log_retention_days"],
                         throttle_rate=float(o["throttle_rate"]), throttle_burst=o["throttle_burst"],
                         quota_per_month=o["quota"], alarm_email=o["alarm_email"])
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
    return choice, layer, spec, artifacts


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


def _notes(spec: StackSpec, layer: Any, request: DeployRequest, facts: PreflightFacts) -> List[str]:
    from .package import dir_size

    code_bytes = dir_size(request.staging.path(f"{WORK}/code"))
    total = layer.unzipped_bytes + code_bytes
    notes = [
        _facts_note(facts),
        f"function: python{spec.python} {spec.arch}, {spec.memory_mb} MB, timeout {spec.timeout_s} s, "
        f"/tmp {spec.ephemeral_storage_mb} MB, logs kept {spec.log_retention_days} days",
        f"layer {layer.unzipped_bytes / MB:.1f} MB + function {code_bytes / MB:.1f} MB = {total / MB:.1f} MB unzipped "
        f"of Lambda's {LIMIT_UNZIPPED / MB:.0f} MB limit ({total / LIMIT_UNZIPPED:.0%})",
        f"model {spec.model_size_bytes / MB:.1f} MB " + ("in the function package" if spec.model_mode != MODEL_S3
                                                          else "as an S3 asset, loaded into /tmp at cold start"),
        f"API: POST /predict, GET /health, API key required; throttle {spec.throttle_rate:g} req/s, burst "
        f"{spec.throttle_burst}, quota {spec.quota_per_month if spec.quota_per_month else 'none'} a month",
        f"publishes Lambda version '{spec.version_description}' and points the alias 'live' at it "
        "(older versions are kept for %nimbus_rollback)",
        (f"alarm: {spec.alarm_errors} or more errors in {spec.alarm_period_minutes} min emails {spec.alarm_email} "
         "through SNS (confirm the subscription from the email AWS sends)") if spec.alarm_email else "alarm: none",
    ]
    stored = spec.model_size_bytes if spec.model_mode == MODEL_S3 else 0
    seconds_per_text = request.timing()
    if seconds_per_text:
        for via_gateway in (False, True):
            notes.append("cost: " + estimate(seconds_per_text, spec.memory_mb, spec.arch,
                                             through_api_gateway=via_gateway, stored_bytes=stored).text())
    else:
        notes.append("cost: idle about $0 (Lambda and API Gateway bill per request); per-text cost needs a timing")
    return notes
