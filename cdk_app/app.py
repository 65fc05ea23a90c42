"""The bundled CDK app: one ``NimbusStack`` for the deployment described by a ``StackSpec`` JSON file.

Only wiring lives here (the stack is in ``nimbus_stack.py``). The spec path comes from CDK context
``nimbus_spec`` (``cdk synth -c nimbus_spec=PATH``, or ``CDK_CONTEXT_JSON`` as the CLI passes it) or else
from the environment variable ``NIMBUS_SPEC``. Account and region come from CDK_DEFAULT_ACCOUNT and
CDK_DEFAULT_REGION, which the CLI sets from the caller's credentials.

Run as a script by the CDK CLI (``<python> <dir>/app.py``) or imported as ``nimbus_jupyter.cdk_app.app``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import aws_cdk as cdk

from nimbus_jupyter.targets.aws.spec import SPEC_CONTEXT_KEY, StackSpec

if __package__:  # imported: nimbus_jupyter.cdk_app (wheel) or the source checkout's cdk_app
    from .nimbus_stack import NimbusStack
else:  # run as a script: this file's directory is sys.path[0]
    from nimbus_stack import NimbusStack

SPEC_ENV = "NIMBUS_SPEC"


def spec_path(app: cdk.App) -> Path:
    """The spec file named by context ``nimbus_spec`` or env ``NIMBUS_SPEC``; a clear error without one."""
    value = app.node.try_get_context(SPEC_CONTEXT_KEY) or os.environ.get(SPEC_ENV)
    if not value:
        raise SystemExit(f"nimbus cdk_app: no stack spec given; pass -c {SPEC_CONTEXT_KEY}=PATH to the CDK CLI "
                         f"or set {SPEC_ENV}=PATH (a StackSpec JSON written by the aws target)")
    path = Path(value)
    if not path.is_file():
        raise SystemExit(f"nimbus cdk_app: the stack spec {path} does not exist; deploy again to write it")
    return path


def build(app: Optional[cdk.App] = None, spec: Optional[StackSpec] = None) -> Tuple[cdk.App, NimbusStack]:
    """The app and its one stack, not yet synthesized."""
    app = app or cdk.App()
    spec = spec or StackSpec.read(spec_path(app))
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    stack = NimbusStack(app, spec.stack_name, spec, env=env)
    return app, stack


def main() -> None:
    app, _ = build()
    app.synth()


if __name__ == "__main__":
    main()
