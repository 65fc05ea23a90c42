"""The README's curl example works as written against a real local deployment."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nimbus_jupyter as nj

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_example_works_as_written(nimbus_home, textcat_nlp):
    block = re.search(r"```bash\n(URL=.*?)```", README.read_text(), re.S).group(1)
    nj.deploy(textcat_nlp, "reviews", workers=1, samples=["fine"])
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", block], capture_output=True, text=True, timeout=60, env=env, check=True)
    answer = json.loads(out.stdout)
    assert len(answer["results"]) == 1 and set(answer["results"][0]) == {"cats", "ents"}
    nj.destroy("reviews")
