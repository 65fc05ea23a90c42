"""Jobs on the aws target: Step Functions Distributed Map over S3 shards, in the deployment's jobs stack.

plan (reads only): the function version the alias ``live`` points at now (the job pins it: the map
invokes ``<function>:<version>``, never the alias), the source (an S3 prefix: same region as the
deployment, readable, holding CSV/JSONL/Parquet files; or a local file/staged frame that nimbus will
write as shards), the output (same checks; refused when it holds results unless overwrite), the map's
concurrency (bounded by the function's reserved concurrency, else the account's unreserved capacity)
and the cost (``jobs_cost``). submit: the jobs stack when it is missing (or lacks a grant for a user's
prefix), the pyarrow zip, the input shards and the shard list, then ``StartExecution`` named by the
job id. status: ``DescribeExecution`` and the map run's item counts (or, where a service answers no
map run, the result shards present), the manifest once it is written; cost so far = shards finished
x the estimate per shard.
"""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import urlparse

from ...core.errors import DeployFailed, UserInputError
from ...core.jobs import (CANCELLED, FAILED, MANIFEST, QUEUED, RUNNING, SUCCEEDED, JobResult, JobSpec, JobStatus,
                          JobStore, Manifest, SHARD_PATTERN)
from ...core.paths import nimbus_cache
from ...core.records import DeploymentRecord
from ...core.registry import Registry
from ..base import JobPlan
from .aws_client import AwsClient, make_session
from .jobs_cost import DEFAULT_MS_PER_TEXT, job_cost
from .jobs_spec import DEFAULT_SHARD_ROWS, JOBS_PREFIX, PYARROW_KEY, Grant, JobsStackSpec, jobs_stack_name
from .spec import parse_version_description
from .state import AwsState

EXECUTION_STATES = {"RUNNING": RUNNING, "SUCCEEDED": SUCCEEDED, "FAILED": FAILED, "TIMED_OUT": FAILED,
                    "ABORTED": CANCELLED, "PENDING_REDRIVE": RUNNING}
ACCOUNT_DEFAULT_CONCURRENCY = 1000
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
BYTES_PER_TEXT_GUESS = 150  # rows of an S3 source, before it is read: review-length texts


def split_s3(uri: str) -> Tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UserInputError(f"{uri!r} is not an s3://bucket/prefix address", "e.g. s3://my-bucket/reviews/")
    return parsed.netloc, parsed.path.lstrip("/")


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class AwsJobs:
    """The ``Jobs`` capability of the aws target (mixed into ``AwsTarget``)."""

    registry: Registry
    name: str
    client_for: Any  # AwsTarget's: the client of a record's region and profile

    def _job_client(self, spec: JobSpec) -> AwsClient:
        data = spec.target_data
        return AwsClient(make_session(data.get("profile"), data.get("region")))

    # -- plan: reads only ------------------------------------------------------------------------------
    def plan_job(self, record: DeploymentRecord, spec: JobSpec, overwrite: bool) -> JobPlan:
        from botocore.exceptions import BotoCoreError, ClientError

        state = AwsState.of(record)
        client = self.client_for(record)
        region = state.region or client.region
        try:
            pinned, function = self._pinned_version(client, state, record)
            stack = client.stack(jobs_stack_name(record.name))
            staging = (stack.outputs.get("BucketName") if stack is not None else None)
            shard_rows = spec.shard_rows or DEFAULT_SHARD_ROWS
            items, rows, grants_in = self._plan_source(client, spec, region, shard_rows)
            out_bucket, out_prefix, grants_out = self._plan_output(client, spec, region, staging, overwrite)
            shards = len(items) if items else max(1, math.ceil((rows or 0) / shard_rows))  # a local source: its shards
            concurrency, bound = self._concurrency(client, state.function_base, spec.concurrency, shards)
            ms, measured = self._ms_per_text(client, function, pinned)
        except (ClientError, BotoCoreError) as exc:
            raise UserInputError(f"AWS refused a check of the job: {exc}",
                                 "check your credentials and their permissions (s3, lambda, states) in "
                                 f"{region}; nothing was started")
        memory, arch = int(function.get("MemorySize") or 2048), (function.get("Architectures") or ["x86_64"])[0]
        cost = job_cost(rows or 0, shards, ms, memory, arch, measured, staged_input=spec.source.kind != "s3")
        output = f"s3://{out_bucket or '<staging bucket>'}/{out_prefix}"
        lines = [f"job {spec.id}: {spec.source.describe()} -> {output}",
                 f"{rows:,} rows" + (" (estimated from the objects' sizes)" if spec.source.kind == "s3" else "")
                 + f" in {shards:,} shards, {record.name} v{record.version} = Lambda version {pinned} (pinned), "
                 f"{concurrency} at once ({bound})",
                 cost.text()]
        if stack is None:
            lines.append(f"first job of {record.name!r}: creates the stack {jobs_stack_name(record.name)} (Step Functions "
                         "state machine, its role, a staging bucket); %nimbus_destroy removes it")
        data = {"region": region, "account": state.account, "profile": state.profile, "function": state.function_base,
                "function_arn": function.get("FunctionArn", "").rsplit(":", 1)[0] if function.get("Version") else
                function.get("FunctionArn", ""), "function_role_arn": function.get("Role", ""),
                "pinned": pinned, "items": items, "rows": rows, "concurrency": concurrency, "cost": cost.to_json(),
                "output_bucket": out_bucket, "output_prefix": out_prefix, "overwrite": overwrite,
                "grants_in": [g.__dict__ for g in grants_in], "grants_out": [g.__dict__ for g in grants_out],
                "arch": arch, "memory": memory, "python": _runtime_python(function)}
        spec = spec.evolve(shard_rows=shard_rows, rows_total=spec.rows_total if spec.rows_total is not None else
                           (rows if spec.source.kind != "s3" else None), version_ref=pinned, output=output,
                           estimate=cost.to_json(), concurrency=concurrency)
        return JobPlan(spec, lines, cost.usd, data)

    def _pinned_version(self, client: AwsClient, state: AwsState, record: DeploymentRecord) -> Tuple[str, Dict[str, Any]]:
        """The Lambda version behind the alias now, checked to be the record's nimbus version."""
        alias = client.alias(state.function_base, state.alias_name or "live")
        version = alias.version if alias else state.lambda_version
        if not version:
            raise UserInputError(f"the function of {record.name!r} has no published version to pin a job to",
                                 f"deploy it again: %nimbus_deploy PIPELINE --name {record.name} --target aws")
        function = client.client("lambda").get_function(FunctionName=state.function_base, Qualifier=version)["Configuration"]
        described = parse_version_description(function.get("Description", ""))
        if described is not None and described[0] != record.version:
            raise UserInputError(f"the alias of {record.name!r} points at nimbus v{described[0]}, the registry says "
                                 f"v{record.version}", f"%nimbus_status {record.name} refreshes it; then submit again")
        return str(version), function

    def _plan_source(self, client: AwsClient, spec: JobSpec, region: str,
                     shard_rows: int) -> Tuple[List[Dict[str, Any]], int, List[Grant]]:
        source = spec.source
        if source.kind != "s3":
            from ...core.job_data import count_rows

            return [], spec.rows_total if spec.rows_total is not None else count_rows(source), []
        bucket, prefix = split_s3(source.uri)
        self._check_bucket(client, bucket, region, "source")
        objects = []
        for page in client.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                suffix = Path(item["Key"]).suffix.lower()
                if suffix in FORMATS and not Path(item["Key"]).name.startswith(("_", ".")):
                    objects.append((item["Key"], FORMATS[suffix], int(item.get("Size") or 0)))
        if not objects:
            raise UserInputError(f"there are no CSV, JSONL or Parquet files under {source.uri}",
                                 "check the prefix (aws s3 ls " + source.uri + ")")
        items = [{"number": n, "bucket": bucket, "key": key, "format": kind, "column": source.column,
                  "index_column": None, "first_row": 0, "rows": max(1, size // BYTES_PER_TEXT_GUESS)}
                 for n, (key, kind, size) in enumerate(sorted(objects))]
        return items, sum(i["rows"] for i in items), [Grant(bucket, prefix)]

    def _plan_output(self, client: AwsClient, spec: JobSpec, region: str, staging: Optional[str],
                     overwrite: bool) -> Tuple[Optional[str], str, List[Grant]]:
        if not spec.output:
            return staging, f"{JOBS_PREFIX}{spec.id}/output/", []
        if not spec.output.startswith("s3://"):
            raise UserInputError(f"the output {spec.output} is not in S3; an AWS job writes to s3://bucket/prefix/",
                                 "give output='s3://bucket/prefix/', or leave it out (the jobs stack's staging bucket)")
        bucket, prefix = split_s3(spec.output)
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._check_bucket(client, bucket, region, "output")
        held = [o["Key"] for o in client.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=200)
                .get("Contents", []) if o["Key"][len(prefix):] == MANIFEST or SHARD_PATTERN.match(o["Key"][len(prefix):])]
        if held and not overwrite:
            raise UserInputError(f"the output s3://{bucket}/{prefix} already holds results ({', '.join(held[:3])})",
                                 "choose another output, or pass overwrite=True to replace them")
        return bucket, prefix, [Grant(bucket, prefix)]

    def _check_bucket(self, client: AwsClient, bucket: str, region: str, what: str) -> None:
        from botocore.exceptions import ClientError

        s3 = client.client("s3")
        try:
            s3.head_bucket(Bucket=bucket)
            where = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket"):
                raise UserInputError(f"the {what} bucket {bucket!r} does not exist", "check the bucket name")
            if code in ("403", "AccessDenied"):
                raise UserInputError(f"you have no access to the {what} bucket {bucket!r}",
                                     "use a bucket your credentials can read and write (s3:ListBucket, GetObject, PutObject)")
            raise
        if where != region:
            raise UserInputError(f"the {what} bucket {bucket!r} is in {where}, the deployment in {region}",
                                 f"use a bucket in {region} (cross-region reads are slower and billed per GB), or "
                                 f"copy the data: aws s3 sync s3://{bucket}/... s3://BUCKET-IN-{region}/...")

    def _concurrency(self, client: AwsClient, function: str, asked: Optional[int], shards: int) -> Tuple[int, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        bound, why = ACCOUNT_DEFAULT_CONCURRENCY, "Lambda's default account limit"
        try:
            reserved = client.client("lambda").get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
            if reserved is not None:
                bound, why = int(reserved), "the function's reserved concurrency"
            else:
                limits = client.client("lambda").get_account_settings().get("AccountLimit", {})
                if limits.get("UnreservedConcurrentExecutions"):
                    bound, why = int(limits["UnreservedConcurrentExecutions"]), "the account's unreserved concurrency"
        except (ClientError, BotoCoreError):
            pass
        if asked is not None and asked > bound:
            raise UserInputError(f"concurrency={asked} is over {why} ({bound})", f"use concurrency={bound} or less")
        return min(asked or bound, shards, bound), f"bounded by {why}, {bound}"

    def _ms_per_text(self, client: AwsClient, function: Dict[str, Any], version: str) -> Tuple[float, str]:
        """One invoke of the pinned version with 32 review-like texts; its REPORT line's Duration / 32."""
        import base64
        import re

        texts = ["The kettle arrived broken and the seller never answered my emails about it."] * 32
        event = {"httpMethod": "POST", "path": "/predict", "resource": "/predict", "isBase64Encoded": False,
                 "headers": {"content-type": "application/json"}, "body": json.dumps({"texts": texts})}
        try:
            answer = client.client("lambda").invoke(FunctionName=f"{function['FunctionName']}:{version}",
                                                    Payload=json.dumps(event).encode(), LogType="Tail")
            log = base64.b64decode(answer.get("LogResult") or b"").decode("utf-8", "replace")
            found = re.search(r"\tDuration: ([\d.]+) ms", log)
            if found:
                return float(found.group(1)) / len(texts), "measured by one invoke"
            return DEFAULT_MS_PER_TEXT, "assumed (the invoke gave no REPORT line)"
        except Exception as exc:
            return DEFAULT_MS_PER_TEXT, f"assumed (could not measure: {type(exc).__name__})"

    # -- submit ----------------------------------------------------------------------------------------
    def submit_job(self, plan: JobPlan) -> JobSpec:
        spec, data = plan.spec, plan.data
        client = AwsClient(make_session(data["profile"], data["region"]))
        outputs = ensure_jobs_stack(client, self.registry, spec.deployment, data)
        staging, machine = outputs["BucketName"], outputs["StateMachineArn"]
        out_bucket = data["output_bucket"] or staging
        out_prefix = data["output_prefix"]
        s3 = client.client("s3")
        if data.get("overwrite"):
            for o in s3.list_objects_v2(Bucket=out_bucket, Prefix=out_prefix).get("Contents", []):
                s3.delete_object(Bucket=out_bucket, Key=o["Key"])
        pyarrow = upload_pyarrow(client, staging, data.get("arch", "x86_64"), data.get("python") or "")
        items = data["items"] or self._stage_input(s3, staging, spec)
        shard_list = f"{JOBS_PREFIX}{spec.id}/shards.json"
        s3.put_object(Bucket=staging, Key=shard_list, Body=json.dumps(items).encode())
        job = {"id": spec.id, "deployment": spec.deployment, "version": str(spec.version), "bundle_hash": spec.bundle_hash,
               "function": f"{data['function']}:{data['pinned']}", "fields": spec.fields, "output_bucket": out_bucket,
               "output_prefix": out_prefix, "pyarrow": pyarrow, "source": spec.source.describe(), "created": spec.created,
               "version_ref": data["pinned"]}
        execution = client.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=spec.id,
            input=json.dumps({"job": job, "bucket": staging, "shard_list": shard_list,
                              "concurrency": int(data["concurrency"]), "spec": spec.to_json()}))
        target_data = {"region": data["region"], "profile": data["profile"], "execution_arn": execution["executionArn"],
                       "state_machine_arn": machine, "staging_bucket": staging, "output_bucket": out_bucket,
                       "output_prefix": out_prefix, "shard_rows": [int(i.get("rows") or 0) for i in items],
                       "per_shard_usd": (plan.estimate_usd or 0.0) / max(1, len(items))}
        return spec.evolve(output=f"s3://{out_bucket}/{out_prefix}", target_data=target_data,
                           rows_total=spec.rows_total if spec.rows_total is not None else
                           (None if spec.source.kind == "s3" else sum(target_data["shard_rows"])))

    def _stage_input(self, s3: Any, staging: str, spec: JobSpec) -> List[Dict[str, Any]]:
        """A local source as Parquet shards in the staging bucket (index + text), streamed."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ...core.job_data import index_array, shards

        items = []
        for number, first, index, texts in shards(spec.source, spec.shard_rows):
            table = pa.Table.from_arrays([index_array(list(index)), pa.array(texts, pa.string())], names=["index", "text"])
            sink = io.BytesIO()
            pq.write_table(table, sink)
            key = f"{JOBS_PREFIX}{spec.id}/input/part-{number:05d}.parquet"
            s3.put_object(Bucket=staging, Key=key, Body=sink.getvalue())
            items.append({"number": number, "bucket": staging, "key": key, "format": "parquet", "column": "text",
                          "index_column": "index", "first_row": first, "rows": len(texts)})
        return items

    # -- status, cancel, result ---------------------------------------------------------------------
    def job_status(self, spec: JobSpec) -> JobStatus:
        data = spec.target_data
        client = self._job_client(spec)
        sfn = client.client("stepfunctions")
        execution = sfn.describe_execution(executionArn=data["execution_arn"])
        state = EXECUTION_STATES.get(execution["status"], RUNNING)
        done_shards, failed_shards = self._progress(client, sfn, spec)
        shard_rows: List[int] = data.get("shard_rows") or []
        rows_done = sum(shard_rows[:done_shards]) if shard_rows else 0
        rows_failed, failures, detail = 0, [], ""
        manifest = self._manifest(client, spec) if state in (SUCCEEDED, FAILED, CANCELLED) else None
        if manifest is not None:
            rows_done, rows_failed = manifest["rows"], manifest["rows_failed"]
            failures = [{"shard": f.get("number"), "reason": f"{f.get('error')}: {f.get('reason')}"}
                        for f in manifest.get("failed_shards", [])]
        if state in (FAILED, CANCELLED):
            detail = f"Step Functions: {execution['status']} {execution.get('cause') or execution.get('error') or ''}".strip()
        started = execution.get("startDate")
        stopped = execution.get("stopDate")
        elapsed = ((stopped or _now_dt(started)) - started).total_seconds() if started else 0
        rate = rows_done / elapsed if elapsed > 0 and rows_done else None
        total = spec.rows_total
        eta = (total - rows_done) / rate if rate and total and state == RUNNING else None
        cost = round(done_shards * float(data.get("per_shard_usd") or 0.0), 6)
        return JobStatus(spec.id, state if state != RUNNING or done_shards or rows_done else (QUEUED if not started else RUNNING),
                         rows_done, total, rows_failed, spec.deployment, spec.version, spec.target, spec.output,
                         done_shards, len(shard_rows) or None, rate, eta, failures, cost, spec.created,
                         _iso(started), _iso(stopped), detail)

    def _progress(self, client: AwsClient, sfn: Any, spec: JobSpec) -> Tuple[int, int]:
        """(shards done, shards failed): the map run's item counts; where there is no map run to read (a
        stand-in service), the result shards present in the output."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            runs = sfn.list_map_runs(executionArn=spec.target_data["execution_arn"]).get("mapRuns", [])
            if runs:
                counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
                return int(counts.get("succeeded", 0)) + int(counts.get("failed", 0)), int(counts.get("failed", 0))
        except (ClientError, BotoCoreError, KeyError):
            pass
        data = spec.target_data
        listed = client.client("s3").list_objects_v2(Bucket=data["output_bucket"], Prefix=data["output_prefix"]).get("Contents", [])
        return sum(1 for o in listed if SHARD_PATTERN.match(o["Key"][len(data["output_prefix"]):])), 0

    def _manifest(self, client: AwsClient, spec: JobSpec) -> Optional[Dict[str, Any]]:
        from botocore.exceptions import ClientError

        data = spec.target_data
        try:
            body = client.client("s3").get_object(Bucket=data["output_bucket"], Key=data["output_prefix"] + MANIFEST)["Body"]
            return json.loads(body.read())
        except ClientError:
            return None

    def cancel_job(self, spec: JobSpec) -> JobStatus:
        sfn = self._job_client(spec).client("stepfunctions")
        if sfn.describe_execution(executionArn=spec.target_data["execution_arn"])["status"] == "RUNNING":
            sfn.stop_execution(executionArn=spec.target_data["execution_arn"], error="nimbus.Cancelled",
                               cause="cancelled with nimbus_jupyter (job.cancel / %nimbus_job --cancel)")
        return self.job_status(spec)

    def resume_job(self, spec: JobSpec) -> JobStatus:
        """Step Functions' own redrive: the failed or aborted execution runs again, its map only the items
        that did not succeed. A running or succeeded execution has nothing to resume: its status is the answer,
        as on the local target, and Step Functions is not asked."""
        from botocore.exceptions import ClientError

        sfn = self._job_client(spec).client("stepfunctions")
        arn = spec.target_data["execution_arn"]
        if EXECUTION_STATES.get(sfn.describe_execution(executionArn=arn)["status"], RUNNING) in (RUNNING, SUCCEEDED):
            return self.job_status(spec)
        try:
            sfn.redrive_execution(executionArn=arn)
        except ClientError as exc:  # e.g. ExecutionNotRedrivable: more than 14 days old, or its map cannot run again
            error = exc.response.get("Error", {})
            raise UserInputError(f"AWS Step Functions would not resume job {spec.id}: {error.get('Code')}: {error.get('Message')}",
                                 f"submit it again (nimbus_jupyter.submit) with the same source and a new output") from None
        return self.job_status(spec)

    def job_result(self, spec: JobSpec) -> JobResult:
        """The output's shards and manifest, downloaded once into the job's directory."""
        data = spec.target_data
        client = self._job_client(spec)
        s3 = client.client("s3")
        local = JobStore(self.registry.home).dir(spec.id) / "result"
        local.mkdir(parents=True, exist_ok=True)
        files = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=data["output_bucket"], Prefix=data["output_prefix"]):
            for item in page.get("Contents", []):
                name = item["Key"][len(data["output_prefix"]):]
                if SHARD_PATTERN.match(name) or name == MANIFEST:
                    path = local / name
                    if not path.exists() or path.stat().st_size != item["Size"]:
                        s3.download_file(data["output_bucket"], item["Key"], str(path))
                    if name != MANIFEST:
                        files.append(path)
        raw = self._manifest(client, spec)
        manifest = Manifest.from_json(raw) if raw else None
        return JobResult(spec.output, sorted(files), manifest)

    def revive_job(self, spec: JobSpec) -> Optional[str]:
        return None  # Step Functions keeps running it: nothing here to start again

    def remote_jobs(self, known: Set[str]) -> List[JobSpec]:
        """Executions of nimbus jobs state machines in the default account/region (quick; [] without credentials)."""
        try:
            session = make_session()
            if session.get_credentials() is None or not session.region_name:
                return []
            client = AwsClient(session, quick=True)
            sfn = client.client("stepfunctions")
            found = []
            for machine in sfn.list_state_machines().get("stateMachines", []):
                if not (machine["name"].startswith("nimbus-") and machine["name"].endswith("-jobs")):
                    continue
                for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"]).get("executions", []):
                    if execution["name"] in known:
                        continue
                    described = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
                    spec = JobSpec.from_json(described["spec"])
                    found.append(spec.evolve(target_data={**spec.target_data, "execution_arn": execution["executionArn"],
                                                          "region": session.region_name}))
            return found
        except Exception:
            return []


# -- the jobs stack ------------------------------------------------------------------------------------------
def _spec_file(registry: Registry, name: str) -> Path:
    return registry.deployment_dir(name) / "jobs-stack.json"


def ensure_jobs_stack(client: AwsClient, registry: Registry, name: str, data: Dict[str, Any]) -> Dict[str, str]:
    """The jobs stack's outputs, creating it (or adding a grant for a user's prefix) when needed."""
    stack_name = jobs_stack_name(name)
    stack = client.stack(stack_name)
    saved = _spec_file(registry, name)
    current = JobsStackSpec.from_dict(json.loads(saved.read_text())) if saved.is_file() else None
    wanted = current or JobsStackSpec(name, data["function_arn"], data["function_role_arn"], data["region"],
                                      data.get("account") or "")
    grants = wanted.with_grants([Grant(**g) for g in data.get("grants_in", [])], [Grant(**g) for g in data.get("grants_out", [])])
    if stack is not None and stack.status.endswith("_COMPLETE") and "ROLLBACK" not in stack.status and grants is None:
        return stack.outputs
    spec = grants or wanted
    template = synth_jobs_template(spec)
    cfn = client.client("cloudformation")
    args = {"StackName": stack_name, "TemplateBody": json.dumps(template), "Capabilities": ["CAPABILITY_IAM"],
            "Tags": [{"Key": "nimbus:deployment", "Value": name}, {"Key": "nimbus:managed-by", "Value": "nimbus-jupyter"},
                     {"Key": "nimbus:part", "Value": "jobs"}]}
    if stack is None:
        cfn.create_stack(**args)
        waiter = "stack_create_complete"
    else:
        cfn.update_stack(**args)
        waiter = "stack_update_complete"
    try:
        cfn.get_waiter(waiter).wait(StackName=stack_name, WaiterConfig={"Delay": 3, "MaxAttempts": 400})
    except Exception as exc:
        raise DeployFailed(f"CloudFormation could not make the jobs stack {stack_name}: {exc}",
                           f"see the stack's events; %nimbus_destroy {name} removes what was made", where="jobs")
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(spec.to_json(), "utf-8")
    made = client.stack(stack_name)
    return made.outputs if made else {}


def synth_jobs_template(spec: JobsStackSpec) -> Dict[str, Any]:
    """The jobs stack's template, synthesized by the bundled CDK app in a subprocess (jsii stays out of the kernel)."""
    from .app_location import cdk_app_dir

    with tempfile.TemporaryDirectory(prefix="nimbus-jobs-synth-") as work:
        spec_path, out = Path(work) / "spec.json", Path(work) / "template.json"
        spec_path.write_text(spec.to_json(), "utf-8")
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import aws_cdk as cdk; from jobs_stack import NimbusJobsStack;"
                "from nimbus_jupyter.targets.aws.jobs_spec import JobsStackSpec;"
                "spec = JobsStackSpec.from_dict(json.load(open(sys.argv[2]))); app = cdk.App();"
                "NimbusJobsStack(app, spec.stack_name, spec, env=cdk.Environment(account=spec.account or None, region=spec.region or None));"
                "json.dump(app.synth().get_stack_by_name(spec.stack_name).template, open(sys.argv[3], 'w'))")
        done = subprocess.run([sys.executable, "-c", code, str(cdk_app_dir()), str(spec_path), str(out)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not out.exists():
            raise DeployFailed(f"the jobs stack did not synthesize: {done.stderr.strip().splitlines()[-3:]}",
                               "this is a bug in nimbus-jupyter; please report it with this message", where="jobs")
        return json.loads(out.read_text())


def _runtime_python(function: Dict[str, Any]) -> str:
    """The pinned function's Python minor ("python3.13" -> "3.13"): the pyarrow zip is built for it, not
    for the kernel (a deploy picks the runtime; see runtime_select)."""
    runtime = str(function.get("Runtime") or "")
    return runtime[len("python"):] if runtime.startswith("python") else ""


def upload_pyarrow(client: AwsClient, bucket: str, arch: str, python: str = "") -> Dict[str, str]:
    """The trimmed pyarrow zip for the function's Python and arch in the staging bucket (uploaded once per build)."""
    import platform

    from botocore.exceptions import ClientError

    from .jobs_pyarrow import build_pyarrow_zip

    python = python or ".".join(platform.python_version_tuple()[:2])
    built = build_pyarrow_zip(python, arch, nimbus_cache() / "pyarrow")
    key = PYARROW_KEY + built.key
    s3 = client.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        s3.upload_file(str(built.path), bucket, key)
    return {"bucket": bucket, "key": key}


def destroy_jobs(client: AwsClient, registry: Registry, record: DeploymentRecord) -> str:
    """Delete the jobs stack (its staging bucket emptied first); what it leaves in users' buckets."""
    stack_name = jobs_stack_name(record.name)
    stack = client.stack(stack_name)
    if stack is None:
        return ""
    bucket = stack.outputs.get("BucketName")
    if bucket:
        s3 = client.client("s3")
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objects = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    final = client.delete_stack(stack_name)
    if final.status != "DELETE_COMPLETE":
        raise DeployFailed(f"CloudFormation could not delete {stack_name}: {final.reason or final.status}",
                           f"see the stack's events, then run %nimbus_destroy {record.name} again", where="destroy")
    saved = _spec_file(registry, record.name)
    spec = JobsStackSpec.from_dict(json.loads(saved.read_text())) if saved.is_file() else None
    left = sorted({f"s3://{g.bucket}/{g.prefix}" for g in (spec.outputs if spec else [])})
    said = f" Deleted the jobs stack {stack_name} (state machine, its role, the staging bucket and all it held)."
    if left:
        said += " Left in your own buckets: the job results under " + ", ".join(left) + " (delete them yourself if unwanted)."
    return said


def _now_dt(like: Any) -> Any:
    import datetime as dt

    return dt.datetime.now(like.tzinfo if like is not None else dt.timezone.utc)


def _iso(stamp: Any) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp is not None else ""

