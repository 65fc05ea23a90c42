"""What the user sees when a batch cannot finish: the progress bar stops where the batch stopped, and
one message says what was done and what to run (redeploy, then run the same batch again)."""
from __future__ import annotations

import io
import json
import os
import signal
import threading

import pytest
from tqdm import tqdm

import nimbus_jupyter as nj
import nimbus_jupyter.api.batching as batching
from nimbus_jupyter.api.batching import BatchWarning
from nimbus_jupyter.core.registry import Registry
from pipelines import sleepy_pipeline


def test_a_server_that_dies_mid_batch_stops_the_bar_there_and_says_to_redeploy_then_rerun(nimbus_home, monkeypatch, ip,
                                                                                          capsys):
    d = nj.deploy(sleepy_pipeline(0.01), "dies", workers=2, show=False)
    bars = []

    def recorded_bar(total, name):
        bars.append(tqdm(total=total, file=io.StringIO(), desc=name))
        return bars[-1]

    monkeypatch.setattr(batching, "_progress_bar", recorded_bar)
    pid = json.loads((Registry().deployment_dir("dies") / "status.json").read_text())["pid"]
    threading.Timer(0.8, lambda: os.killpg(pid, signal.SIGKILL)).start()
    ip.user_ns["texts"] = [f"review {i}" for i in range(600)]
    with pytest.warns(BatchWarning):
        result = ip.run_cell("%%nimbus_batch dies --out scored --chunk-size 10\ntexts")
    assert result.success, result.error_in_exec
    frame, summary = ip.user_ns["scored"], ip.user_ns["scored"].attrs["nimbus"]
    [bar] = bars
    assert 0 < bar.n == len(frame) - summary.not_sent < len(frame)  # stopped where the batch stopped
    assert (frame.error == "").sum() <= bar.n
    shown = capsys.readouterr().out
    assert "stopped: the endpoint of 'dies' went away after" in shown
    assert "To finish: redeploy it (%nimbus_deploy PIPELINE --name dies), then run the same batch again" in shown
    assert "Traceback" not in shown and "OSError" not in shown and "ConnectionError" not in shown.split("(")[0]
    nj.deploy(sleepy_pipeline(0.01), "dies", workers=2, show=False)
    again = nj.batch(ip.user_ns["texts"], "dies", chunk_size=10, progress=False)
    assert (again.error == "").all() and again.attrs["nimbus"].chunks_reused >= (frame.error == "").sum() // 10 - 2
    nj.destroy("dies")
