"""%%nimbus_batch and nimbus_jupyter.batch against real local servers: nothing lost, nothing doubled."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest
import requests
from IPython.core.error import UsageError

import nimbus_jupyter as nj
from nimbus_jupyter.api.checkpoints import CheckpointStore
from nimbus_jupyter.core.errors import DeploymentNotFound, EndpointError
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.runtime.fields import doc_to_result
from pipelines import sleepy_pipeline

WORDS = ["great", "phone", "broken", "laptop", "love", "avoid", "fine", "slow", "fast", "cheap"]


def reviews(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) + f" #{i}" for i in range(n)]


def answered(d) -> int:
    """The server's own count of /predict requests it answered."""
    counts = requests.get(f"{d.url}/health", timeout=5).json()["requests"]
    return sum(counts.values())


def server_pid(name: str) -> int:
    return json.loads((Registry().deployment_dir(name) / "status.json").read_text())["pid"]


def worker_pids(name: str) -> list:
    return json.loads((Registry().deployment_dir(name) / "status.json").read_text())["workers"]


@pytest.fixture(scope="module")
def fast(nimbus_home, textcat_nlp):
    return nj.deploy(textcat_nlp, "fast", workers=2, show=False)


def test_order_and_a_shuffled_index_are_kept_and_results_equal_the_kernels(fast, textcat_nlp):
    texts = reviews(300)
    index = np.random.default_rng(1).permutation([f"id-{i}" for i in range(300)])
    series = pd.Series(texts, index=index, name="review")
    df = nj.batch(series, fast, chunk_size=16, progress=False)
    assert list(df.index) == list(index) and list(df.text) == texts
    assert list(df.columns) == ["text", "ents", "cats", "label", "score", "error"]
    assert (df.error == "").all()
    expected = [doc_to_result(doc, ["ents", "cats"]) for doc in textcat_nlp.pipe(texts)]
    assert df.ents.tolist() == [e["ents"] for e in expected]
    for got, want in zip(df.cats, expected):
        assert got == pytest.approx(want["cats"], abs=1e-5)
    assert df.label.tolist() == [max(e["cats"], key=e["cats"].get) for e in expected]


def test_bad_cells_get_a_per_row_error_and_the_rest_is_scored(fast):
    values = ["great phone", None, float("nan"), 7, b"bytes", "bad \ud800 text", pd.NA, "avoid this laptop", ""]
    df = nj.batch(values, fast, fields=["cats"], progress=False)
    assert list(df.columns) == ["text", "cats", "label", "score", "error"]
    errors = df.error.tolist()
    assert errors[0] == errors[7] == errors[8] == ""
    assert errors[1] == errors[2] == errors[6] == "missing value (None/NaN): nothing to score"
    assert "a int is not text" in errors[3] and "a bytes is not text" in errors[4]
    assert "lone surrogate (U+D800) at character 4" in errors[5]
    assert df.attrs["nimbus"].failed == 6


def test_an_oversized_text_fails_only_its_row(fast):
    before = answered(fast)
    huge = "word " * 1_400_000  # 7 MB: more than one request may carry, refused before sending
    long = "a" * 1_100_000  # 1.1 MB, under the payload limit but over spaCy's max_length: the server says 413
    df = nj.batch(["fine", huge, "also fine", long, "last"], fast, fields=["ents"], chunk_size=10, progress=False)
    assert df.error.tolist()[0::2] == ["", "", ""]
    assert "over the 6,291,456-byte limit of one request" in df.error[1]
    assert "413" in df.error[3] and "max_length" in df.error[3]
    assert answered(fast) - before > 1  # the chunk holding the long text was split to find it


def test_ten_thousand_rows_finish_with_no_duplicates(fast):
    texts = reviews(10_000, seed=2)
    before = answered(fast)
    df = nj.batch(texts, fast, fields=["ents"], chunk_size=100, progress=False)
    assert len(df) == 10_000 and df.index.is_unique and list(df.index) == list(range(10_000))
    assert df.text.tolist() == texts and (df.error == "").all()
    assert answered(fast) - before == 100  # one request per chunk: nothing sent twice


def test_empty_input_gives_an_empty_frame_with_the_right_columns(fast):
    df = nj.batch([], fast, progress=False)
    assert df.empty and list(df.columns) == ["text", "ents", "cats", "label", "score", "error"]


def test_unknown_deployment_and_a_bad_key_fail_before_any_row(fast):
    with pytest.raises(DeploymentNotFound, match="no deployment named 'nope'"):
        nj.batch(["x"], "nope", progress=False)
    key_file = Registry().deployment_dir("fast") / "api_key"
    real = key_file.read_text()
    before = answered(fast)
    key_file.write_text("nmb_wrong")
    try:
        with pytest.raises(EndpointError, match="refused the API key"):
            nj.batch(reviews(50), "fast", progress=False)
    finally:
        key_file.write_text(real)
    assert answered(fast) == before


def test_a_saturated_server_is_survived(nimbus_home):
    d = nj.deploy(sleepy_pipeline(0.02), "saturated", workers=1, show=False)
    df = nj.batch(reviews(120), d, chunk_size=4, concurrency=6, progress=False)
    summary = df.attrs["nimbus"]
    assert (df.error == "").all() and len(df) == 120
    assert summary.retries > 0  # 429s were met and retried
    counts = requests.get(f"{d.url}/health", timeout=5).json()["requests"]
    assert counts.get("429", 0) > 0 and counts["200"] == 30 + 1  # the chunks and the deploy's smoke test
    nj.destroy("saturated")


def test_a_worker_killed_mid_batch_loses_no_row(nimbus_home):
    d = nj.deploy(sleepy_pipeline(0.01), "killed-worker", workers=2, show=False)
    victim = worker_pids("killed-worker")[0]
    killer = threading.Timer(0.8, lambda: os.kill(victim, signal.SIGKILL))
    killer.start()
    df = nj.batch(reviews(600, seed=3), d, chunk_size=10, progress=False)
    killer.join()
    assert len(df) == 600 and df.index.is_unique and (df.error == "").all()
    assert requests.get(f"{d.url}/health", timeout=5).json()["workers"]["replaced"] == 1
    nj.destroy("killed-worker")


INTERRUPTED_RUN = textwrap.dedent("""
    import sys
    import nimbus_jupyter as nj
    texts = [f"text number {i}" for i in range(400)]
    nj.batch(texts, "resumable", chunk_size=10, concurrency=2, progress=False)
""")


def test_interrupt_then_rerun_sends_only_the_unfinished_chunks(nimbus_home):
    d = nj.deploy(sleepy_pipeline(0.005), "resumable", workers=2, show=False)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while answered(d) < 10 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    last = err.strip().splitlines()[-2:]  # the interrupt's own two lines: what was kept, how to resume
    assert proc.returncode != 0 and last[0].startswith("nimbus_jupyter.core.errors.Interrupted: batch: batch on 'resumable' interrupted: ")
    assert "rows finished; the finished chunks are saved" in last[0] and "to resume" in last[1]
    assert "During handling" not in err  # the KeyboardInterrupt it replaced is not chained in
    saved = CheckpointStore(Registry().home / "checkpoints.sqlite").count("resumable")
    assert 0 < saved < 40
    before = answered(d)
    df = nj.batch([f"text number {i}" for i in range(400)], "resumable", chunk_size=10, concurrency=2, progress=False)
    assert (df.error == "").all() and len(df) == 400
    assert df.attrs["nimbus"].chunks_reused == saved
    assert answered(d) - before == 40 - saved
    nj.destroy("resumable")


def test_a_dead_server_mid_batch_stops_quickly_and_a_redeploy_resumes(nimbus_home):
    nlp = sleepy_pipeline(0.01)
    d = nj.deploy(nlp, "phoenix", workers=2, show=False)
    texts = reviews(400, seed=5)
    threading.Timer(0.6, lambda: os.killpg(server_pid("phoenix"), signal.SIGKILL)).start()
    started = time.time()
    first = nj.batch(texts, d, chunk_size=10, progress=False)
    assert time.time() - started < 60
    failed = first.error != ""
    assert failed.any() and (~failed).any()
    assert first.error[failed].str.contains("stopped answering").all()
    with pytest.raises(EndpointError, match="is dead"):
        nj.batch(texts, "phoenix", progress=False)
    nj.deploy(nlp, "phoenix", workers=2, show=False)
    second = nj.batch(texts, "phoenix", chunk_size=10, progress=False)
    assert (second.error == "").all()
    assert second.attrs["nimbus"].chunks_reused >= int((~failed).sum()) // 10
    nj.destroy("phoenix")


@pytest.fixture()
def shell(ip, fast):
    ip.user_ns["df"] = pd.DataFrame({"review": reviews(40), "stars": range(40)}, index=[f"r{i}" for i in range(40)])
    return ip


def test_batch_magic_puts_a_frame_in_the_namespace_and_prints_a_summary(shell, capsys):
    result = shell.run_cell('%%nimbus_batch fast --out scored --fields ents,cats\ndf["review"]')
    assert result.success, result.error_in_exec
    scored = shell.user_ns["scored"]
    assert list(scored.index) == [f"r{i}" for i in range(40)] and (scored.error == "").all()
    assert "40 rows in" in capsys.readouterr().out
    result = shell.run_cell("%%nimbus_batch fast --column review --fields ents --chunk-size 7\ndf")
    assert result.success and list(result.result.columns) == ["text", "ents", "error"]


@pytest.mark.parametrize("cell, expected", [
    ("%%nimbus_batch fast\ndf", "say which column holds the texts"),
    ("%%nimbus_batch fast --column nope\ndf", "no column 'nope'"),
    ("%%nimbus_batch fast\n", "the cell body is empty"),
    ("%%nimbus_batch fast\nx = 1", "one Python expression"),
    ("%%nimbus_batch fast --fields ents,colour\ndf.review", "'colour' is not available"),
    ("%%nimbus_batch fast --chunk-size 0\ndf.review", "chunk_size must be"),
    ("%%nimbus_batch fast\n'just one string'", "wrap it in a list"),
    ("%%nimbus_batch nope\ndf.review", "no deployment named 'nope'"),
])
def test_batch_magic_mistakes_are_usage_errors(shell, cell, expected):
    result = shell.run_cell(cell)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert expected in str(result.error_in_exec)
