"""example_notebooks/deploy_to_aws.ipynb runs headless without credentials: its dry-run path prints the plan."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_aws_notebook_dry_run_path(tmp_path: Path) -> None:
    env = dict(os.environ, NIMBUS_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, str(ROOT / "example_notebooks" / "run.py"), str(ROOT / "example_notebooks" / "deploy_to_aws.ipynb")],
                         capture_output=True, text=True, timeout=1200, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "AWS credentials: none" in text
    assert "Plan for 'reviews' on target 'aws': version 1 will serve" in text
    assert "create  stack nimbus-reviews" in text and "AWS::Lambda::Function" in text
    assert "the live stack is unknown: no credentials" in text and "pre-flight: unknown: no credentials (looked in" in text
    assert "of Lambda's 250 MB limit" in text
    assert "per 1,000 texts, $" in text and "per million, by direct invoke" in text and "idle $0.00/month" in text
    assert "stopping after the plan" in text
    assert not (tmp_path / "home" / "deployments").exists() or not any((tmp_path / "home" / "deployments").iterdir())
    assert list((tmp_path / "home" / "staging").iterdir()) == []  # the dry run's artifacts are gone
