"""A batch is served by one version: a deploy from another process mid-batch never mixes two pipelines'
results, and checkpoints belong to the version that scored them (a rollback finds its own again).

Real local servers; the second deploy runs in a real second process (the way another kernel would)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.api.batching import BatchWarning
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.core.errors import EndpointError
from nimbus_jupyter.runtime import handler as runtime
from pipelines import versioned_pipeline

HERE = Path(__file__).resolve().parent
WORDS = ["great", "phone", "broken", "laptop", "love", "avoid", "fine", "slow", "fast", "cheap"]
ROWS, CHUNK = 6000, 64
CHUNKS = -(-ROWS // CHUNK)  # 94


def reviews(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) + f" phone #{i}" for i in range(n)]


def answered(d) -> int:
    """The server's own count of /predict requests it answered (any status)."""
    return sum(requests.get(f"{d.url}/health", timeout=5).json()["requests"].values())


def labels(frame) -> set:
    return {e["label"] for ents in frame.ents[frame.error == ""] for e in ents}


SECOND_KERNEL = textwrap.dedent("""
    import sys, time
    import requests
    sys.path.insert(0, {here!r})
    import nimbus_jupyter as nj
    from pipelines import versioned_pipeline
    nlp = versioned_pipeline("TWO", {seconds!r})
    print("ready", flush=True)
    url, trigger = sys.argv[1], int(sys.argv[2])
    deadline = time.time() + 120
    while time.time() < deadline:
        counts = requests.get(url + "/health", timeout=5).json()["requests"]
        if sum(counts.values()) >= trigger:
            break
        time.sleep(0.01)
    d = nj.deploy(nlp, "pinned", workers=2, show=False)
    print("deployed", d.version, flush=True)
""")


@pytest.fixture(scope="module")
def switched(nimbus_home):
    """v1 serving; a second process deploys v2 once 30% of the batch's chunks were answered."""
    seconds = 0.006  # per text: 6,000 rows take ~20 s on 2 workers, long enough for a deploy at 30%
    d = nj.deploy(versioned_pipeline("ONE", seconds), "pinned", workers=2, show=False)
    assert d.version == 1
    start = answered(d)
    other = subprocess.Popen([sys.executable, "-c", SECOND_KERNEL.format(here=str(HERE), seconds=seconds),
                              d.url, str(start + int(0.3 * CHUNKS))], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "ready"
        texts = reviews(ROWS)
        with pytest.warns(BatchWarning, match="changed from v1 to v2"):
            first = nj.batch(texts, "pinned", chunk_size=CHUNK, progress=False)
        out, _ = other.communicate(timeout=180)
        assert "deployed 2" in out
    finally:
        if other.poll() is None:
            other.kill()
    return texts, first


def test_a_deploy_from_another_process_mid_batch_never_mixes_versions(switched):
    texts, first = switched
    summary = first.attrs["nimbus"]
    done = first.error == ""
    assert summary.version == "1" and summary.bundle_hash
    assert labels(first) == {"ONE"}  # not one row of v2's
    assert 0.3 * ROWS <= done.sum() < ROWS
    assert first.error[~done].str.startswith("not sent: the deployment changed version during this batch").all()
    assert "version" not in first.columns  # one version scored every row
    assert first.text.tolist() == texts and len(first) == ROWS
    message = summary.stopped
    assert f"{int(done.sum()):,} of {ROWS:,} rows were done with v1 (saved)" in message
    assert f"{summary.not_sent:,} were not sent, so no row mixes two versions" in message
    assert "Run the same batch again to score every row with v2" in message
    assert "nimbus_jupyter.rollback('pinned', to=1)" in message and "%nimbus_rollback pinned --to 1" in message
    assert "stopped: deployment 'pinned' changed from v1 to v2" in summary.text()


def test_a_rerun_is_pinned_to_the_new_version_and_reuses_none_of_the_old(switched):
    texts, _ = switched
    second = nj.batch(texts, "pinned", chunk_size=CHUNK, progress=False)
    summary = second.attrs["nimbus"]
    assert (second.error == "").all() and labels(second) == {"TWO"}
    assert summary.version == "2" and summary.chunks_reused == 0 and not summary.stopped


def test_after_a_rollback_a_rerun_reuses_only_what_v1_itself_scored(switched):
    texts, first = switched
    done_chunks = sum(1 for c in range(CHUNKS) if (first.error[c * CHUNK:(c + 1) * CHUNK] == "").all())
    nj.rollback("pinned", to=1)
    third = nj.batch(texts, "pinned", chunk_size=CHUNK, progress=False)
    summary = third.attrs["nimbus"]
    assert (third.error == "").all() and labels(third) == {"ONE"}  # never v2's results as v1's
    assert summary.version == "1" and summary.chunks_reused == done_chunks
    done = first.error == ""
    assert third.ents[done].tolist() == first.ents[done].tolist()


def test_a_batch_that_asks_for_another_version_sends_nothing(switched):
    d = nj.get_deployment("pinned")
    before = answered(d)
    with pytest.raises(EndpointError, match=r"serves v1, not v2 that this batch asks for") as caught:
        nj.batch(["a phone"], "pinned", version=2, progress=False)
    assert "nimbus_jupyter.rollback('pinned', to=2)" in str(caught.value) and "no row was sent" in str(caught.value)
    assert answered(d) == before
    assert (nj.batch(["a phone"], "pinned", version=1, progress=False).error == "").all()


# -- the handler's check, as every transport reaches it (HTTP, API Gateway, invoke's proxy event) ------
@pytest.fixture(scope="module")
def v1_runtime(tmp_path_factory):
    bundle = build_bundle(versioned_pipeline("ONE"), tmp_path_factory.mktemp("b") / "v1", "pinned-rt", namespace={})
    runtime._loaded = None
    import os

    os.environ["NIMBUS_VERSION"] = "1"
    try:
        yield runtime.load(str(bundle.path)), bundle.hash
    finally:
        runtime._loaded = None
        os.environ.pop("NIMBUS_VERSION", None)


def predict(headers):
    event = {"path": "/predict", "httpMethod": "POST", "headers": {"Content-Type": "application/json", **headers},
             "body": json.dumps({"texts": ["a phone"]}), "requestContext": {"requestId": "r"}}
    answer = runtime.handler(event, None)
    return answer["statusCode"], json.loads(answer["body"])


def test_the_handler_answers_only_the_version_a_request_expects(v1_runtime):
    _, bundle_hash = v1_runtime
    status, body = predict({"x-nimbus-expect-version": "1", "X-Nimbus-Expect-Hash": bundle_hash})
    assert status == 200 and body["version"] == "1" and body["hash"] == bundle_hash
    assert predict({})[0] == 200  # a request that expects nothing is answered by whatever serves
    for headers in ({"x-nimbus-expect-version": "2"}, {"x-nimbus-expect-hash": "f" * 64},
                    {"x-nimbus-expect-version": "1", "x-nimbus-expect-hash": "f" * 64}):
        status, body = predict(headers)
        assert status == 409 and body["error"] == "version_changed" and "nothing was run" in body["message"]
        assert body["serving"] == {"version": "1", "hash": bundle_hash}
    assert runtime.texts_in_last_request() == 0  # refused before any text was read


def test_rows_reused_from_another_version_number_of_the_same_pipeline_get_a_version_column(nimbus_home):
    """Checkpoints are keyed by content: v3 that redeploys v1's pipeline reuses v1's chunks, and the
    frame then says which version scored each row."""
    texts = reviews(256, seed=4)
    v1 = nj.deploy(versioned_pipeline("ONE"), "renumbered", workers=1, show=False)
    first = nj.batch(texts[:128], "renumbered", chunk_size=CHUNK, progress=False)
    assert "version" not in first.columns and first.attrs["nimbus"].version == "1"
    nj.deploy(versioned_pipeline("TWO"), "renumbered", workers=1, show=False)
    v3 = nj.deploy(versioned_pipeline("ONE"), "renumbered", workers=1, show=False)
    assert v3.version == 3 and v3.bundle_hash == v1.bundle_hash
    again = nj.batch(texts, "renumbered", chunk_size=CHUNK, progress=False)
    summary = again.attrs["nimbus"]
    assert (again.error == "").all() and labels(again) == {"ONE"} and summary.version == "3"
    assert summary.chunks_reused == 2 and again.version.tolist() == ["1"] * 128 + ["3"] * 128
    nj.destroy("renumbered")
