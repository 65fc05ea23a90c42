"""The Python API: what the magics, the sidebar and user code call (``nimbus_jupyter.api``).

``orchestration``: deploy (serialize, plan, apply or show, smoke test, parity). ``deployments``: list,
get, destroy. ``operate``: status, history, rollback. ``keys``: rotate an API key. ``batching`` (+
``checkpoints``): score many texts. ``logs``: recent and followed log lines. ``deployment``: the
``Deployment`` handle. Views are not here: the faces add them as listeners.
"""
from __future__ import annotations

from ..core.errors import DeploymentNotFound, NimbusError, UserInputError
from .deployment import Deployment
from .deployments import destroy, get_deployment, get_record, list_deployments
from .keys import rotate_key
from .logs import follow_logs, recent_logs
from .operate import history, history_rows, parse_version, rollback, status_report
from .orchestration import NAME_PATTERN, DeployResult, check_name, deploy, deployment_of, run_deploy

__all__ = ["Deployment", "DeployResult", "DeploymentNotFound", "NAME_PATTERN", "NimbusError", "UserInputError",
           "check_name", "deploy", "deployment_of", "destroy", "follow_logs", "get_deployment", "get_record",
           "history", "history_rows", "list_deployments", "parse_version", "recent_logs", "rollback", "rotate_key",
           "run_deploy", "status_report"]
