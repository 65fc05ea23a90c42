"""The aws target: plan (pre-flight, artifacts, synth; creates nothing in AWS) and apply (CDK deploy).

One CloudFormation stack per deployment, ``nimbus-<name>``, made by the bundled CDK app from a
``StackSpec``. The layer comes from the cache when the kernel's spaCy stack is unchanged.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ...errors import DeployFailed, UserInputError
from ...plan import CREATE, KEEP, UPDATE, Change, Plan
from ...progress import Progress, ProgressEvent
from ...registry import Registry, nimbus_cache, nimbus_home
from .. import STAGES, check_same_pipeline
from . import cdk_cli
from .aws_client import AwsClient, StackInfo, make_session
from . import operations
from .cost import estimate
from .spec import ARCHITECTURES, MODEL_S3, StackSpec, stack_name_for

READY_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")
DEFAULTS: Dict[str, Any] = {"memory": 2048, "arch": "x86_64", "timeout": 60, "reserved_concurrency": None,
                            "throttle_rate": 50.0, "throttle_burst": 100, "quota": 1_000_000, "log_retention_days": 14,
                            "alarm_email": None, "python": None}  # python: --python 3.X, else runtime_select chooses
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
MB = 1024 * 1024  # AWS's "MB" in its Lambda limits
LIMIT_UNZIPPED = 250 * MB  # bytes, function + layers


def kernel_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def check_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Merged defaults and user options, each checked against Lambda's and API Gateway's limits."""
    known = set(DEFAULTS) | {"region", "profile"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserInputError(f"unknown option(s) for the aws target: {', '.join(unknown)}",
                             f"the options are: {', '.join(sorted(known))}")
    merged = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    _whole(merged, "memory", 128, 10240, "MB (Lambda's range is 128-10240)")
    _whole(merged, "timeout", 1, 900, "seconds (Lambda's limit is 900)")
    if merged["arch"] not in ARCHITECTURES:
        raise UserInputError(f"arch {merged['arch']!r} is not a Lambda architecture", "use --arch x86_64 or --arch arm64")
    if merged["reserved_concurrency"] is not None:
        _whole(merged, "reserved_concurrency", 0, 1000, "(0 turns the function off; 1000 is the default account limit)")
    if not isinstance(merged["throttle_rate"], (int, float)) or merged["throttle_rate"] <= 0:
        raise UserInputError(f"throttle_rate must be a positive number of requests per second, not {merged['throttle_rate']!r}",
                             "e.g. --rate 50")
    _whole(merged, "throttle_burst", 1, 5000, "requests")
    if merged["quota"] is not None:
        _whole(merged, "quota", 1, 10 ** 12, "requests a month")
    _whole(merged, "log_retention_days", 1, 3653, "days")
    if merged["alarm_email"] is not None and not (isinstance(merged["alarm_email"], str) and EMAIL.match(merged["alarm_email"])):
        raise UserInputError(f"alarm_email {merged['alarm_email']!r} does not look like an email address",
                             "give one address, e.g. --alarm-email ops@example.com (SNS emails it to confirm first)")
    return merged  # the Lambda runtime is chosen in the plan (runtime_select.py), not the kernel's minor


def _whole(options: Dict[str, Any], key: str, low: int, high: int, unit: str) -> None:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserInputError(f"{key} must be a whole number from {low} to {high} {unit}, not {value!r}",
                             f"e.g. {key}={DEFAULTS.get(key) or low}")


class AwsTarget:
    name = "aws"
    stages = STAGES["aws"]
    wants_timing = True  # the plan's cost estimate uses the kernel's measured time per text

    def __init__(self, registry: Registry, workers: Optional[int] = None, **options: Any) -> None:
        if workers is not None:
            raise UserInputError("workers is an option of the local target", "on aws, Lambda scales by itself; drop --workers")
        self.registry = registry
        self.options = check_options(options)
        self.region: Optional[str] = options.get("region")
        self.profile: Optional[str] = options.get("profile")
        self.seconds_per_text: Optional[float] = None
        self._preflight: Any = None

    # -- plan: reads AWS, builds local artifacts, creates nothing in AWS ------------------------------
    def plan(self, name: str, bundle: Any, current: Optional[Dict[str, Any]], force: bool = False,
             progress: Optional[Progress] = None, dry_run: bool = False) -> Plan:
        progress = progress or Progress(self.stages)
        if current is not None and current.get("target") != self.name:
            raise UserInputError(f"{name!r} is deployed on target {current.get('target')!r}",
                                 f"destroy it first (%nimbus_destroy {name}) or choose another --name")
        if current is not None:
            check_same_pipeline(name, bundle, current, force)
        if not dry_run:
            with progress.stage("pre-flight") as stage:
                self._preflight = self._run_preflight(progress)
                stage.detail = self._preflight.text()
            self.region = self._preflight.identity.region
        live = self._preflight.client.stack(stack_name_for(name)) if self._preflight else None
        if current and live and live.status in READY_STATES and self._unchanged(bundle, current):
            return Plan(name, self.name, int(current["version"]), [
                Change(KEEP, f"stack {live.name} ({live.status})", "the pipeline and the options are unchanged")],
                bundle, current, {**self.options, "region": self.region, "profile": self.profile})
        if current is None:
            version = 1
        elif bundle.hash == current.get("hash"):
            version = int(current["version"])
        else:  # past every version so far: after a rollback, the record's version is an older one
            version = max([int(current["version"])] + [int(e["version"]) for e in current.get("history", [])]) + 1
        work = self._work_dir(name, version, dry_run)
        layer, spec, assembly = self._artifacts(name, version, bundle, work, progress)
        return self._describe(name, version, bundle, current, live, layer, spec, assembly, work)

    def _run_preflight(self, progress: Progress) -> Any:
        from .preflight import run_preflight

        return run_preflight(self.profile, self.region, on_line=progress.message)

    def _unchanged(self, bundle: Any, current: Dict[str, Any]) -> bool:
        return bundle.hash == current.get("hash") and all(current.get("options", {}).get(k) == v for k, v in self.options.items())

    def _work_dir(self, name: str, version: int, dry_run: bool) -> Path:
        if dry_run:
            import tempfile

            staging = nimbus_home() / "staging"
            staging.mkdir(exist_ok=True, mode=0o700)
            return Path(tempfile.mkdtemp(prefix=f"aws-{name}-", dir=staging))
        work = self.registry.deployment_dir(name) / "aws" / f"v{version}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, mode=0o700)
        return work

    def _artifacts(self, name: str, version: int, bundle: Any, work: Path, progress: Progress) -> Tuple[Any, StackSpec, Path]:
        from .layer import build_layer
        from .package import build_function_code, choose_model_mode, dir_size
        from .requirements import extra_distributions

        from .runtime_select import select_runtime

        arch = self.options["arch"]
        with progress.stage("layer") as stage:
            self.runtime_choice, pins = select_runtime(arch, extra_distributions(bundle), self.options.get("python"))
            python = self.runtime_choice.python
            layer = build_layer(python, arch, nimbus_cache() / "layers", pins=pins, langs=[bundle.manifest["lang"]],
                                on_step=lambda step, detail: progress.message(f"layer: {step} {detail}".strip()))
            stage.detail = (f"{'cached' if layer.cached else 'built'}: {layer.unzipped_bytes / MB:.0f} MB unzipped "
                            f"for python{python} {arch}")
        with progress.stage("package") as stage:
            model_bytes = dir_size(bundle.path)
            probe_code = build_function_code(bundle.path, work / "code-probe", inline=False)
            mode, ephemeral = choose_model_mode(layer.unzipped_bytes, dir_size(probe_code), model_bytes)
            shutil.rmtree(probe_code, ignore_errors=True)
            code = build_function_code(bundle.path, work / "code", inline=mode != MODEL_S3)
            model_dir = None
            if mode == MODEL_S3:
                model_dir = work / "model"
                shutil.copytree(bundle.path, model_dir)
            o = self.options
            spec = StackSpec(name=name, version=version, bundle_hash=bundle.hash, python=python, arch=arch,
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
            if self._preflight is not None:
                env = {"CDK_DEFAULT_ACCOUNT": self._preflight.identity.account, "CDK_DEFAULT_REGION": self.region or ""}
            assembly = cdk_cli.synth(work / "spec.json", work / "cdk.out", env)
            stage.detail = f"{time.perf_counter() - started:.1f} s"
        return layer, spec, assembly

    def _describe(self, name: str, version: int, bundle: Any, current: Optional[Dict[str, Any]], live: Optional[StackInfo],
                  layer: Any, spec: StackSpec, assembly: Path, work: Path) -> Plan:
        from .package import dir_size

        template = json.loads((assembly / f"{spec.stack_name}.template.json").read_text("utf-8"))
        kinds: Dict[str, int] = {}
        for resource in template.get("Resources", {}).values():
            kinds[resource["Type"]] = kinds.get(resource["Type"], 0) + 1
        where = f"{self._preflight.identity.account}/{self.region}" if self._preflight else (self.region or "the default region")
        action = UPDATE if live else CREATE
        why = (f"the pipeline changed (hash {bundle.hash[:12]})" if current and bundle.hash != current.get("hash")
               else "the options changed" if live else "new deployment")
        changes = [Change(action, f"stack {spec.stack_name} in {where}: {len(template.get('Resources', {}))} resources", why)]
        changes += [Change(action if live else CREATE, f"{count} x {kind}", why) for kind, count in sorted(kinds.items())
                    if kind != "AWS::CDK::Metadata"]
        code_bytes = dir_size(Path(spec.code_dir))
        total = layer.unzipped_bytes + code_bytes
        choice = getattr(self, "runtime_choice", None)
        notes = (choice.lines() if choice else []) + [
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
        if self.seconds_per_text:
            for via_gateway in (False, True):
                notes.append("cost: " + estimate(self.seconds_per_text, spec.memory_mb, spec.arch,
                                                 through_api_gateway=via_gateway, stored_bytes=stored).text())
        else:
            notes.append("cost: idle about $0 (Lambda and API Gateway bill per request); per-text cost needs a timing")
        options = {**self.options, "region": self.region, "profile": self.profile, "work": str(work),
                   "assembly": str(assembly), "spec": spec, "resources": len(template.get("Resources", {})),
                   "layer_key": getattr(layer, "key", "")}
        return Plan(name, self.name, version, changes, bundle, current, options, notes=notes)

    # -- apply -------------------------------------------------------------------------------------
    def apply(self, plan: Plan, progress: Progress) -> Dict[str, Any]:
        from .stack_watch import StackWatcher

        pre = self._preflight
        if pre is None:
            raise DeployFailed("apply needs the pre-flight of a real plan", "plan without dry_run first", where="deploy")
        spec: StackSpec = plan.options["spec"]
        env = {"AWS_REGION": pre.identity.region, "AWS_DEFAULT_REGION": pre.identity.region}
        if self.profile:
            env["AWS_PROFILE"] = self.profile
        existed = pre.client.stack(spec.stack_name) is not None
        with progress.stage("deploy") as stage:
            if not pre.bootstrapped:
                progress.message(f"bootstrapping CDK in {pre.identity.account}/{pre.identity.region} "
                                 "(once per account and region: a stack named CDKToolkit with an asset bucket)")
                cdk_cli.bootstrap(pre.cli, pre.identity.account, pre.identity.region, env,
                                  lambda line: _cli_line(progress, line))
            outputs_file = Path(plan.options["work"]) / "outputs.json"

            def report(done: int, total: int, detail: str) -> None:
                progress.emit(ProgressEvent("deploy", done, total, detail))

            watcher = StackWatcher(pre.client, spec.stack_name, plan.options["resources"], report)
            try:
                with watcher:
                    cdk_cli.deploy(pre.cli, Path(plan.options["assembly"]), spec.stack_name, outputs_file, env,
                                   lambda line: _cli_line(progress, line))
            except DeployFailed as exc:
                raise self._failed(exc, watcher.failure_reason(), spec.stack_name, existed, pre.client)
            stack = pre.client.stack(spec.stack_name)
            if stack is None or stack.status not in READY_STATES:
                raise self._failed(DeployFailed("the stack is not complete", "", where="deploy"),
                                   stack.reason if stack else "it is missing", spec.stack_name, existed, pre.client)
            stage.detail = f"{stack.name} {stack.status}"
        return self._record(plan, stack, pre)

    def _failed(self, exc: DeployFailed, reason: Optional[str], stack: str, existed: bool, client: AwsClient) -> DeployFailed:
        """Say CloudFormation's reason; a new stack that failed is deleted so nothing is left half made."""
        if existed:
            return DeployFailed(f"CloudFormation could not update {stack}: {reason or exc.what}",
                                "CloudFormation rolled the stack back: the previous version still serves. "
                                "Fix the cause and deploy again", where="deploy")
        left = client.stack(stack)
        if left is None or left.status == "DELETE_COMPLETE":
            return DeployFailed(f"the deploy stopped before CloudFormation created {stack}: {reason or exc.what}",
                                "nothing was created; fix the cause and deploy again", where="deploy")
        client.delete_stack(stack)
        return DeployFailed(f"CloudFormation could not create {stack}: {reason or exc.what}",
                            "the stack was rolled back and deleted; fix the cause and deploy again", where="deploy")

    def _record(self, plan: Plan, stack: StackInfo, pre: Any) -> Dict[str, Any]:
        spec: StackSpec = plan.options["spec"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        key_file = self._save_key(plan.name, stack, pre.client)
        manifest = plan.bundle.manifest
        function, alias_name = stack.outputs.get("FunctionName", ""), stack.outputs.get("AliasName", "")
        alias = pre.client.alias(function, alias_name) if function and alias_name else None
        lambda_version = alias.version if alias else None
        history = list((plan.current or {}).get("history", []))
        if not history or history[-1]["version"] != plan.version or "rollback_from" in history[-1]:
            history.append({"version": plan.version, "hash": manifest["hash"], "created": now,
                            "components": manifest["components"], "by": pre.identity.arn,
                            "lambda_version": lambda_version})
        options = {k: plan.options[k] for k in DEFAULTS}
        return {
            "name": plan.name, "target": self.name, "status": "ready", "version": plan.version,
            "hash": manifest["hash"], "lang": manifest["lang"], "components": manifest["components"],
            "size_bytes": manifest["size_bytes"], "url": stack.outputs.get("Url", "").rstrip("/"),
            "key_file": str(key_file) if key_file else None, "dir": str(self.registry.deployment_dir(plan.name)),
            "region": pre.identity.region, "account": pre.identity.account, "profile": self.profile,
            "stack_name": stack.name,
            # function_name is what invokes call: the alias ("fn:live"), so a rollback moves batch traffic too
            "function_name": f"{function}:{alias_name}" if function and alias_name else function,
            "lambda_function": function, "alias_name": alias_name or None,
            "alias_arn": stack.outputs.get("AliasArn") or (alias.arn if alias else None), "lambda_version": lambda_version,
            "log_group": stack.outputs.get("LogGroupName", ""), "api_key_id": stack.outputs.get("ApiKeyId", ""),
            "options": options, "model_mode": spec.model_mode, "timeout_s": spec.timeout_s,
            "created": (plan.current or {}).get("created", now), "updated": now, "history": history[-20:],
        }

    def _save_key(self, name: str, stack: StackInfo, client: AwsClient) -> Optional[Path]:
        key_id = stack.outputs.get("ApiKeyId")
        if not key_id:
            return None
        from botocore.exceptions import ClientError

        try:
            value = client.api_key_value(key_id)
        except ClientError:
            return None
        return write_key(self.registry.deployment_dir(name) / "api_key", value)

    # -- other operations ----------------------------------------------------------------------------
    def client_for(self, record: Dict[str, Any]) -> AwsClient:
        return AwsClient(make_session(record.get("profile") or self.profile, record.get("region") or self.region))

    def live_status(self, record: Dict[str, Any]) -> Tuple[str, str]:
        """From CloudFormation now: ready, updating, failed or gone (never assumed from the registry)."""
        try:
            stack = self.client_for(record).stack(record.get("stack_name") or stack_name_for(record["name"]))
        except Exception as exc:  # no credentials, no network: say so instead of guessing
            return "unknown", f"could not ask AWS ({type(exc).__name__}: {str(exc)[:120]})"
        return stack_status(stack)

    def logs(self, record: Dict[str, Any], start: float, errors: bool, limit: int) -> List[Any]:
        """The function's CloudWatch log lines since ``start``; with ``errors``, only failures."""
        from ...logs import ERROR_WORDS, LogLine, is_error

        group = operations.log_group_of(record)
        pattern = " ".join(f'?"{word}"' for word in ERROR_WORDS) if errors else ""
        lines = []
        for event in self.client_for(record).log_events(group, start, limit=limit, pattern=pattern):
            message = str(event.get("message", "")).rstrip()
            if errors and not is_error(message):
                continue
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.get("timestamp", 0) / 1000))
            lines.append(LogLine(stamp, message))
        return lines

    # -- operating it (operations.py holds the how) -------------------------------------------------
    def metrics(self, record: Dict[str, Any]) -> Tuple[Any, Any, Optional[float], str]:
        """Last hour, last day (CloudWatch metrics; cold starts from REPORT lines) and this month's cost."""
        return operations.metrics(self.client_for(record), record)

    def history(self, record: Dict[str, Any]) -> List[Any]:
        """Deployed versions (the record's) merged with the Lambda versions still there."""
        return operations.history(self.client_for(record), record)

    def rollback(self, record: Dict[str, Any], to_version: Optional[Any] = None) -> Tuple[Dict[str, Any], Any]:
        """Serve the previous (or ``to_version``) version again by moving the alias ``live``: no
        redeploy, no CloudFormation. CloudFormation still believes the alias is at the version it
        deployed; the next deploy publishes a new version and moves the alias there, so nothing drifts
        for long, but a stack update that leaves the function unchanged does not move it back."""
        return operations.rollback(self.client_for(record), record, to_version)

    def follow_logs(self, record: Dict[str, Any], start: float, errors: bool) -> Iterator[Any]:
        """New log lines until the caller stops (KeyboardInterrupt)."""
        return operations.follow_logs(self.client_for(record), record, start, errors)

    def destroy(self, record: Dict[str, Any]) -> str:
        client = self.client_for(record)
        stack_name = record.get("stack_name") or stack_name_for(record["name"])
        final = client.delete_stack(stack_name)
        if final.status != "DELETE_COMPLETE":
            raise DeployFailed(f"CloudFormation could not delete {stack_name}: {final.reason or final.status}",
                               f"see the stack's events, fix the cause, then run %nimbus_destroy {record['name']} again",
                               where="destroy")
        shutil.rmtree(self.registry.deployment_dir(record["name"]), ignore_errors=True)
        return (f"deleted the stack {stack_name} (function and its versions, alias, layer, API, key, usage plan, log group, role, alarm and its SNS topic if any) in "
                f"{record.get('region') or client.region}. Left in place: the CDK bootstrap stack CDKToolkit and its "
                "asset bucket, which every CDK app in this account and region shares (it costs cents a month for the "
                "uploaded zips); remove it only if nothing else uses CDK here")


def write_key(path: Path, value: str) -> Path:
    """The API key, readable by this user only (as the local target keeps its keys)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return path


def stack_status(stack: Optional[StackInfo]) -> Tuple[str, str]:
    if stack is None:
        return "gone", "the stack no longer exists in AWS; deploy again, or %nimbus_destroy NAME to forget it"
    if stack.status in READY_STATES:
        return "ready", ""
    if stack.status.endswith("_IN_PROGRESS"):
        return "updating", f"CloudFormation: {stack.status}"
    return "failed", f"CloudFormation: {stack.status} {stack.reason}".strip()


def _cli_line(progress: Progress, line: str) -> None:
    """Forward the CLI's lines that a user wants to see (asset uploads, bootstrap, errors); drop the noise."""
    keep = ("Publishing", "Published", "Bootstrapping", "bootstrapped", "❌", "Error", "failed")
    if any(k in line for k in keep):
        progress.message(line.strip())
