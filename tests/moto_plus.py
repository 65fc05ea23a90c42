"""``moto.server`` with what the Nimbus stack and its metrics need and moto (5.2) lacks.

moto's Lambda API has versions and aliases, but its CloudFormation has no ``AWS::Lambda::Alias`` (a
stack with one fails: the permissions that ``Ref`` it lose their FunctionName) and publishes an
``AWS::Lambda::Version`` without its Description. Both are added here on top of moto's own Lambda
backend (``create_alias`` / ``publish_version``), so the real CDK deploy runs against moto and the
alias, versions and rollback behave as moto's Lambda API makes them. moto's CloudWatch answers no
percentile statistic (``p50``, ``p99``: its server fails on the empty value); they are added as
nearest-rank percentiles of the raw values put. moto's Lambda has no GetAccountSettings ("Not yet
implemented"): it is added with Lambda's default account limits (1,000 concurrent executions, less what
the functions reserve, as moto's own PutFunctionConcurrency counts them; ``MOTO_LAMBDA_CONCURRENCY_QUOTA``
sets the limit as it does there). Nothing of Nimbus is stood in.

Run as ``python tests/moto_plus.py -H 127.0.0.1 -p PORT`` (the arguments of ``python -m moto.server``).
"""
from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Dict

from moto.awslambda import models as lambda_models
from moto.awslambda import urls as lambda_urls
from moto.awslambda.responses import LambdaResponse
from moto.cloudwatch import models as cloudwatch_models
from moto.core.common_models import CloudFormationModel


class CfnLambdaAlias(CloudFormationModel):
    """``AWS::Lambda::Alias``: Ref is the alias ARN, as CloudFormation gives it."""

    __module__ = "moto.awslambda.nimbus_plus"  # moto files its models by the module's second part

    def __init__(self, alias: Any, function_name: str, account_id: str, region: str) -> None:
        self.alias, self.function_name, self.account_id, self.region = alias, function_name, account_id, region

    @property
    def physical_resource_id(self) -> str:
        return self.alias.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("AliasArn",)

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.alias.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> "CfnLambdaAlias":
        props = cloudformation_json["Properties"]
        backend = lambda_models.lambda_backends[account_id][region_name]
        function = backend.get_function(props["FunctionName"]).function_name
        alias = backend.create_alias(props["Name"], function, str(props["FunctionVersion"]),
                                     props.get("Description", ""), None)
        return cls(alias, function, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: Dict[str, Any], account_id: str, region_name: str
                                        ) -> "CfnLambdaAlias":
        props = cloudformation_json["Properties"]
        original_resource.alias.update(props.get("Description"), str(props["FunctionVersion"]), None)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        props = cloudformation_json["Properties"]
        backend = lambda_models.lambda_backends[account_id][region_name]
        try:
            backend.delete_alias(props["Name"], backend.get_function(props["FunctionName"]).function_name)
        except Exception:
            pass  # the function went first


def _publish_with_description(cls: Any, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
                              region_name: str, **kwargs: Any) -> Any:
    props = cloudformation_json["Properties"]
    backend = lambda_models.lambda_backends[account_id][region_name]
    function = backend.publish_version(props["FunctionName"], props.get("Description", ""))
    return lambda_models.LambdaVersion({"Version": function.version})


def _version_attribute(self: Any, attribute_name: str) -> str:
    if attribute_name == "Version":
        return str(self.version)
    raise NotImplementedError(attribute_name)


def _with_percentiles(original: Any) -> Any:
    def statistic(self: Any, stat: str) -> Any:
        if stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit():
            values = sorted(self.metric_single_values_list)
            if not values:
                return None
            rank = max(1, math.ceil(float(stat[1:]) / 100 * len(values)))
            return values[rank - 1]
        return original(self, stat)
    return statistic


def _account_settings(self: Any) -> Any:
    """GetAccountSettings as Lambda answers it (AccountLimit with the concurrency figures, AccountUsage)."""
    limit = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000"))
    functions = list(self.backend.list_functions())
    reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
    return 200, {}, json.dumps({
        "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                         "ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": limit - reserved},
        "AccountUsage": {"TotalCodeSize": sum(int(getattr(f, "code_size", 0) or 0) for f in functions), "FunctionCount": len(functions)}})


LambdaResponse.get_account_settings = _account_settings
lambda_urls.url_paths[r"{0}/(?P<api_version>[^/]+)/account-settings/?$"] = LambdaResponse.dispatch
cloudwatch_models.Statistics.get_statistics_for_type = _with_percentiles(cloudwatch_models.Statistics.get_statistics_for_type)
lambda_models.LambdaVersion.create_from_cloudformation_json = classmethod(_publish_with_description)
lambda_models.LambdaVersion.get_cfn_attribute = _version_attribute
lambda_models.LambdaVersion.has_cfn_attr = classmethod(lambda cls, attr: attr == "Version")


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
