"""A POST that may have run is never sent again, a timeout fails only its own rows, and requests are sized
to the measured time per text. Real local servers; the pipeline counts on the server side every text it
receives (a file each worker appends to), so "sent once" is what the server saw."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

import nimbus_jupyter as nj
from nimbus_jupyter.core.registry import Registry
from pipelines import slow_on_pipeline


def seen(path: Path, expected: int, within: float = 30.0) -> Counter:
    """The texts the server's pipeline saw, once ``expected`` lines are there (or ``within`` s passed):
    a request the client gave up on still runs to its end on the server."""
    deadline = time.monotonic() + within
    lines: list = []
    while time.monotonic() < deadline:
        lines = path.read_text("utf-8").splitlines() if path.exists() else []
        if len(lines) >= expected:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # anything sent twice would arrive by now
    return Counter(path.read_text("utf-8").splitlines())


def predict_sizes(name: str, since: float) -> list:
    """Texts per /predict request, from the server's own request log."""
    sizes = []
    for line in (Registry().deployment_dir(name) / "server.log").read_text("utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("route") == "/predict" and entry.get("texts") and _epoch(entry["time"]) >= since:
            sizes.append(entry["texts"])
    return sizes


def _epoch(stamp: str) -> float:
    from nimbus_jupyter.targets.local.requestlog import epoch_of

    return epoch_of(stamp)


def test_a_request_slower_than_its_deadline_reaches_the_server_once_and_fails_only_its_rows(nimbus_home, tmp_path):
    log = tmp_path / "seen.txt"
    d = nj.deploy(slow_on_pipeline(str(log), seconds=1.5), "slowpoke", workers=2, samples=["fine"], show=False)
    log.unlink()  # the deploy's sample (through the kernel's pipeline and the server's)
    texts = [f"text {i}" + (" SLOW" if i in (5, 17) else "") for i in range(24)]
    df = nj.batch(texts, d, chunk_size=4, concurrency=1, chunk_timeout=1.0, progress=False)
    summary = df.attrs["nimbus"]
    counts = seen(log, len(texts))
    assert counts == Counter(texts)  # every text reached the server exactly once: nothing was resent
    failed = df.error != ""
    slow_chunks = {4, 5, 6, 7, 16, 17, 18, 19}  # the requests holding a SLOW text (sized 1 after the first timeout)
    assert set(df.index[failed]) <= slow_chunks and {5, 17} <= set(df.index[failed])
    assert df.error[5].startswith("no answer within 1 s (the read timeout); not sent again, as the endpoint may still be running it")
    assert (df.cats[~failed] == {"OK": 1.0}).all()  # a timeout is that chunk's failure, not "endpoint down"
    assert summary.timed_out == 2 and not summary.stopped and summary.deadline_seconds == 1.0
    assert "2 request(s) got no answer within 1 s and were not resent" in summary.text()
    nj.destroy("slowpoke")


def test_requests_are_sized_to_the_time_per_text_and_the_next_batch_starts_from_it(nimbus_home, tmp_path):
    log = tmp_path / "seen.txt"
    d = nj.deploy(slow_on_pipeline(str(log), seconds=0.05, trigger=" "), "measured", workers=1, samples=["fine"],
                  show=False)
    # 0.05 s per text and a 4 s deadline: a request should hold at most 0.25 * 4 / 0.05 = 20 texts
    since = time.time()
    texts = [f"text {i}" for i in range(100)]
    df = nj.batch(texts, d, chunk_size=40, concurrency=1, chunk_timeout=4.0, progress=False)
    assert (df.error == "").all() and df.attrs["nimbus"].timed_out == 0
    sizes = predict_sizes("measured", since)
    assert sizes[0] == 40 and max(sizes[1:]) <= 20 and sum(sizes) == 100  # the first one measured, then sized
    assert df.attrs["nimbus"].requests == len(sizes) > df.attrs["nimbus"].chunks
    since = time.time()
    again = nj.batch([f"other {i}" for i in range(40)], d, chunk_size=40, concurrency=1, chunk_timeout=4.0,
                     progress=False)
    assert (again.error == "").all() and max(predict_sizes("measured", since)) <= 20  # the saved time per text
    served = [line for line in log.read_text("utf-8").splitlines() if line != "fine"]  # the deploy's sample, twice
    assert Counter(served) == Counter(texts + [f"other {i}" for i in range(40)])
    nj.destroy("measured")


@pytest.mark.parametrize("text, factor", [("plain words only " * 20, 1.0), ('"quoted" \\ "words" ' * 20, 1.6)])
def test_the_invoke_envelope_counts_in_the_byte_budget(text, factor):
    """Over invoke (and through API Gateway) the body is a JSON string inside a Lambda event: every quote
    and backslash of the texts is escaped once more, and the 6 MB limit counts that."""
    from nimbus_jupyter.api.batching import text_cost
    from nimbus_jupyter.endpoint.transport import HttpTransport

    local, gateway = HttpTransport("http://127.0.0.1:1", ""), HttpTransport.for_api_gateway("https://x", "")
    body = len(json.dumps(text).encode())
    assert text_cost(text, local) == body
    assert text_cost(text, gateway) == pytest.approx(body * factor, rel=0.15) and text_cost(text, gateway) >= body
