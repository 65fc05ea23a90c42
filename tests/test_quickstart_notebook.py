"""The README's main job: the quickstart notebook runs headless, end to end, on the local target."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_notebook_runs_and_shows_endpoint_samples_and_parity(tmp_path):
    env = dict(os.environ, NIMBUS_HOME=str(tmp_path))
    saved = tmp_path / "saved.ipynb"
    out = subprocess.run([sys.executable, str(ROOT / "example_notebooks" / "run.py"), str(ROOT / "example_notebooks" / "quickstart.ipynb"),
                          "--save", str(saved)],
                         capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "quickstart: ready on local, version 1" in text
    assert "endpoint: http://127.0.0.1:" in text
    assert "ents: " in text and "/BRAND" in text and "cats: " in text
    assert "parity: OK, 3 sample(s) identical" in text
    assert "'label': 'BRAND'" in text  # the plain HTTP call from the notebook
    assert "100 rows in" in text and "0 failed" in text and "endpoint accuracy on the held-out set" in text
    assert "destroyed 'quickstart'" in text
    assert not (tmp_path / "deployments" / "quickstart").exists()
    notebook = saved.read_text("utf-8")  # as Jupyter would save it: outputs and widget state
    assert re.search(r"nmb_(•|\\u2022){8}", notebook), "the masked key should be shown"
    assert not re.findall(r"nmb_[A-Za-z0-9_-]{40,}", notebook), "the API key is in the saved notebook"
