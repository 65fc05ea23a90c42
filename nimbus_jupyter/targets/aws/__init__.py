"""The ``aws`` target: the bundled CDK app puts the pipeline on Lambda (layer from manylinux wheels, no Docker).

Modules, each owning one thing:
- ``target``: ``AwsTarget``, the target contract wired to the modules below.
- ``options``: the options it declares, each checked against Lambda's and API Gateway's limits.
- ``planner``: pre-flight, the live stack, the artifacts in staging, the plan (creates nothing in AWS).
- ``apply``: bootstrap, the CDK deploy watched through CloudFormation's events, the record.
- ``state``: what the record's ``target_data`` holds for aws (``AwsState``), a stack's status.
- ``spec``: the stack spec, the data the CDK app reads (plan is data).
- ``layer``: builds and caches the spaCy dependency layer from manylinux wheels.
- ``requirements``: which installed distributions join the layer.
- ``package``: assembles the function code (runtime + bundle when it fits) and sizes it against the limits.
- ``preflight``, ``cdk_cli``, ``aws_client`` (every AWS call), ``stack_watch``: the machinery.
- ``operations``: versions and rollback, metrics, cold starts, following the log; ``discover``: stacks
  deployed from elsewhere; ``cost``: the dated price table and the estimates made from it.
"""
