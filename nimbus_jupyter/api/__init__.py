"""The Python API: what the magics, the sidebar and user code call (``nimbus_jupyter.api``)."""
from __future__ import annotations

from .orchestration import (DeployResult, check_name, deploy, destroy, get_deployment, get_record, history,
                            list_deployments, rollback, run_deploy, status_report)

__all__ = ["DeployResult", "check_name", "deploy", "destroy", "get_deployment", "get_record", "history",
           "list_deployments", "rollback", "run_deploy", "status_report"]
