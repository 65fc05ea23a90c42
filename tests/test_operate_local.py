"""Operating a local deployment against real servers: counters, /metrics, request logs, follow,
history and rollback, and the magics over them. No timed assertions: requests are held by a file gate."""
from __future__ import annotations

import getpass
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import requests
from IPython.core.error import UsageError
from prometheus_client.parser import text_string_to_metric_families

import nimbus_jupyter as nj
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.api.logs import follow_logs, recent_logs
from nimbus_jupyter.core.registry import Registry
from pipelines import gate_pipeline, textcat_pipeline

TEXTS = ["great phone, love it", "arrived broken, avoid this laptop", "fine"]
SECRET_TEXT = "my secret review EXPLODE"


def post(d, body, key=None):
    return requests.post(f"{d.url}/predict", json=body, headers={"x-api-key": d.api_key if key is None else key}, timeout=60)


def wait_for(condition, what: str, limit: float = 60.0) -> None:
    """Poll until ``condition()``; the limit only stops a broken test from hanging."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def gate(nimbus_home):
    # one worker and no queue: while a request is held, the next one is a 429, for certain
    return nj.deploy(gate_pipeline(), "gate", workers=1, max_queue=0, samples=["fine"], show=False)


@pytest.fixture(scope="module")
def mix(gate, tmp_path_factory):
    """A known mix of answers to /predict (the deploy's smoke test made one 200 before)."""
    opened = tmp_path_factory.mktemp("gate") / "open"
    answers = {"ok": [post(gate, {"texts": ["a", "b"]}) for _ in range(3)],
               "bad": post(gate, {"texts": "not a list"}),
               "unauthorized": post(gate, {"texts": ["a"]}, key="nmb_wrong"),
               "failed": post(gate, {"texts": [SECRET_TEXT]})}
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(post, gate, {"texts": [f"WAIT:{opened}"]})
        wait_for(lambda: requests.get(f"{gate.url}/health", timeout=5).json()["workers"]["busy"] == 1, "the held request")
        answers["throttled"] = post(gate, {"texts": ["x"]})
        opened.touch()
        answers["held"] = held.result()
    codes = {k: ([a.status_code for a in v] if isinstance(v, list) else v.status_code) for k, v in answers.items()}
    # a text the pipeline raises on is its row's error in a 200 (counted as an error, not retried)
    assert codes == {"ok": [200] * 3, "bad": 400, "unauthorized": 401, "failed": 200, "throttled": 429, "held": 200}
    assert answers["failed"].json()["results"][0]["error"]["type"] == "ValueError"
    return answers


def ids_of(answers) -> dict:
    return {k: ([a.headers["x-nimbus-request-id"] for a in v] if isinstance(v, list) else v.headers["x-nimbus-request-id"])
            for k, v in answers.items()}


# -- counters and /metrics ----------------------------------------------------------------------------
def test_status_report_counts_the_mix_by_class(gate, mix):
    report = nj.status_report("gate")
    assert report.health == "ok" and report.health_ms is not None and report.version == 1
    for window in (report.last_hour, report.last_day):
        assert (window.requests, window.errors, window.client_errors, window.throttled) == (9, 1, 2, 1)
        assert 0 < window.p50_ms <= window.p99_ms
        assert window.cold_starts is None
    assert report.cost_this_month_usd is None and report.cost_detail == "local target: no cost"
    assert report.metrics_detail == ""


def test_metrics_route_needs_the_key_and_parses_as_prometheus_text(gate, mix):
    assert requests.get(f"{gate.url}/metrics", timeout=5).status_code == 401
    response = requests.get(f"{gate.url}/metrics", headers={"x-api-key": gate.api_key}, timeout=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests_by = {(s.labels["route"], s.labels["status"]): s.value for s in families["nimbus_requests"].samples
                   if s.name == "nimbus_requests_total"}
    predict = {status: n for (route, status), n in requests_by.items() if route == "/predict"}
    assert predict == {"200": 6, "400": 1, "401": 1, "429": 1}
    assert [s.value for s in families["nimbus_row_errors"].samples if s.name == "nimbus_row_errors_total"] == [1]
    assert requests_by[("/metrics", "401")] == 1
    throttled = [s.value for s in families["nimbus_throttled"].samples if s.name == "nimbus_throttled_total"]
    assert throttled == [1]
    latency = {s.labels["route"]: s.value for s in families["nimbus_request_duration_seconds"].samples
               if s.name == "nimbus_request_duration_seconds_count"}
    assert latency["/predict"] == 9
    workers = {s.labels["state"]: s.value for s in families["nimbus_workers"].samples}
    assert workers["size"] == 1 and workers["busy"] == 0
    assert [(s.labels["version"], s.value) for s in families["nimbus_version_info"].samples] == [("1", 1)]
    assert families["nimbus_uptime_seconds"].samples[0].value > 0


def test_unknown_routes_get_one_label_not_one_series_each(gate):
    for path in ("/a", "/b", "/c"):
        requests.get(f"{gate.url}{path}", headers={"x-api-key": gate.api_key}, timeout=5)
    text = requests.get(f"{gate.url}/metrics", headers={"x-api-key": gate.api_key}, timeout=5).text
    assert 'route="other"' in text and 'route="/a"' not in text


# -- request logs ------------------------------------------------------------------------------------------
def test_each_request_has_one_log_line_with_the_id_of_its_answer(gate, mix):
    lines = recent_logs("gate", since="1h", limit=1000)
    by_id = {l.request_id: l for l in lines if l.request_id}
    ids = ids_of(mix)
    for key, value in ids.items():
        for rid in value if isinstance(value, list) else [value]:
            assert rid in by_id, key
    ok = by_id[ids["ok"][0]].message
    assert ok.startswith("POST /predict 200 ") and " ms texts=2 " in ok
    failed = by_id[ids["failed"]].message
    assert failed.startswith("POST /predict 200 ") and "row_errors=1" in failed and "the pipeline failed on 1 of 1" in failed
    assert "401" in by_id[ids["unauthorized"]].message and "API key" in by_id[ids["unauthorized"]].message
    log = (Registry().deployment_dir("gate") / "server.log").read_text()
    assert "my secret review" not in log and gate.api_key not in log


def test_errors_shows_failures_and_their_traceback_only(gate, mix):
    lines = recent_logs("gate", since="1h", errors=True, limit=1000)
    ids = ids_of(mix)
    got = {l.request_id for l in lines if l.request_id}
    assert {ids["bad"], ids["unauthorized"], ids["failed"], ids["throttled"]} <= got
    assert not got & set(ids["ok"] + [ids["held"]])
    text = "\n".join(l.text() for l in lines)
    assert f"request {ids['failed']} failed" in text and "Traceback" in text and "ValueError" in text


def test_since_filters_by_the_lines_own_times(gate, mix):
    from nimbus_jupyter.targets.registry import get_target

    after_mix = time.time()
    new = post(gate, {"texts": ["later"]})
    record = Registry().get("gate")
    lines = get_target("local").logs(record, after_mix, False, 100)
    assert [l.request_id for l in lines] == [new.headers["x-nimbus-request-id"]]
    with pytest.raises(UserInputError, match="not a duration"):
        recent_logs("gate", since="yesterday")


def test_follow_yields_a_request_made_while_following(gate):
    stream = follow_logs("gate", since="1s")
    made, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            made.append(post(gate, {"texts": ["followed"]}).headers["x-nimbus-request-id"])
            time.sleep(0.05)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        for line in stream:
            if line.request_id in made:
                break
    finally:
        stop.set()
        thread.join()
        stream.close()
    assert line.message.startswith("POST /predict 200")


# -- history and rollback ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def roll(nimbus_home):
    first, second = textcat_pipeline(epochs=5, seed=0), textcat_pipeline(epochs=1, seed=3)
    v1 = nj.deploy(first, "roll", workers=2, samples=TEXTS, show=False)
    v1_answers = v1.predict(TEXTS, fields=["cats"])
    v2 = nj.deploy(second, "roll", workers=2, samples=TEXTS, show=False)
    assert v2.version == 2 and v2.predict(TEXTS, fields=["cats"]) != v1_answers
    return v1, v1_answers


def test_rollback_serves_the_previous_version_and_no_request_fails(roll):
    v1, v1_answers = roll
    seen, stop = [], threading.Event()

    def hammer():
        session = requests.Session()
        while not stop.is_set():
            r = session.post(f"{v1.url}/predict", json={"texts": ["x"]}, headers={"x-api-key": v1.api_key}, timeout=60)
            seen.append((r.status_code, r.json().get("version")))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(seen) >= 5, "requests before the rollback")
        result = nj.rollback("roll")
        count = len(seen)
        wait_for(lambda: len(seen) >= count + 5, "requests after the rollback")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert (result.from_version, result.to_version, result.target) == (2, 1, "local") and result.seconds > 0
    assert "v2 to v1" in result.text()
    assert all(code == 200 for code, _ in seen), [s for s in seen if s[0] != 200][:5]
    assert seen[0][1] == "2" and seen[-1][1] == "1"
    d = nj.get_deployment("roll")
    assert d.status == "ready" and d.version == 1 and d.url == v1.url
    assert d.predict(TEXTS, fields=["cats"]) == v1_answers
    last = Registry().get("roll").history[-1]
    assert (last.kind, last.version, last.from_version, last.note) == ("rollback", 1, 2, "rollback from v2")


def test_after_a_rollback_new_versions_get_new_numbers_and_pruned_ones_are_refused(roll, ip):
    third = nj.deploy(textcat_pipeline(epochs=2, seed=1), "roll", workers=2, samples=TEXTS, show=False)
    fourth = nj.deploy(textcat_pipeline(epochs=3, seed=2), "roll", workers=2, samples=TEXTS, show=False)
    assert (third.version, fourth.version) == (3, 4)  # not 2: that number (and bundle) is taken
    with pytest.raises(UserInputError) as info:
        nj.rollback("roll", to=1)
    assert "v1 of 'roll' is not on disk" in str(info.value) and "v2, v3, v4 (serving)" in str(info.value)
    result = ip.run_cell("%nimbus_rollback roll --to v1")
    assert isinstance(result.error_in_exec, UsageError) and "v2, v3, v4 (serving)" in str(result.error_in_exec)
    history = nj.history("roll")
    assert list(history.columns) == ["kind", "version", "from_version", "when", "who", "hash", "components", "note",
                                     "ref", "serving", "available"]
    assert list(zip(history.kind, history.version, history.note)) == [
        ("deploy", 1, ""), ("deploy", 2, ""), ("rollback", 1, "rollback from v2"), ("deploy", 3, ""), ("deploy", 4, "")]
    assert [None if pd.isna(v) else int(v) for v in history.from_version] == [None, None, 2, None, None]
    assert list(history.available) == [False, True, False, True, True]
    assert list(history.serving) == [False, False, False, False, True]
    assert all(who == getpass.getuser() and len(h) == 64 and c == ["textcat", "entity_ruler"]
               for who, h, c in zip(history.who, history.hash, history.components))
    table = ip.run_line_magic("nimbus_history", "roll")
    assert list(table.columns) == list(history.columns)
    assert list(table["version"]) == [1, 2, 1, 3, 4] and table["hash"].str.len().max() == 12


def test_rollback_to_the_serving_version_or_an_unknown_name_says_what_to_do(roll):
    current = Registry().get("roll").version
    with pytest.raises(UserInputError, match="already serves"):
        nj.rollback("roll", to=current)
    with pytest.raises(UserInputError, match="not a version"):
        nj.rollback("roll", to="latest")
    with pytest.raises(UserInputError, match="no deployment named 'nowhere'"):
        nj.rollback("nowhere")


# -- magics ---------------------------------------------------------------------------------------------
def test_status_magic_returns_the_report_which_prints_its_text(gate, mix, ip, capsys):
    capsys.readouterr()
    report = ip.run_cell("%nimbus_status gate").result  # the cell's value, shown by IPython's displayhook
    out = capsys.readouterr().out
    assert report.health == "ok" and report.last_hour.requests >= 9
    assert "\ngate: ok in " in out and "last hour" in out and "last day" in out and "p99" in out
    assert "cost: n/a (local target: no cost)" in out and "checked at 20" in out
    assert "StatusReport(" not in out and "VBox(" not in out
    assert "health='ok'" in repr(report) and str(report) == report.text()


def test_status_of_a_dead_server_says_down_and_what_to_do(nimbus_home, textcat_nlp):
    from nimbus_jupyter.targets.local.process import stop_server
    from nimbus_jupyter.targets.local.files import DeploymentFiles

    nj.deploy(textcat_nlp, "gone", workers=1, samples=["fine"], show=False)
    stop_server(DeploymentFiles(Registry().deployment_dir("gone")))
    report = nj.status_report("gone")
    assert report.health == "down" and "%nimbus_deploy" in report.health_detail
    assert report.last_hour is None and report.metrics_detail.startswith("metrics unavailable")
    nj.destroy("gone")


def test_logs_magic_filters_and_follow_stops_quietly_on_interrupt(gate, mix, ip, capsys, monkeypatch):
    ip.run_line_magic("nimbus_logs", "gate --errors")
    out = capsys.readouterr().out
    assert ids_of(mix)["failed"] in out and ids_of(mix)["ok"][0] not in out
    assert isinstance(ip.run_cell("%nimbus_logs gate --since 5x").error_in_exec, UsageError)

    made, stop, following = [], threading.Event(), threading.Event()

    class Terminal:
        """Stands for the notebook's output: Ctrl-C arrives once a line of ours is on screen."""

        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> int:
            self.text += text
            if "following" in text:
                following.set()
            if any(rid in text for rid in made):
                raise KeyboardInterrupt
            return len(text)

        def flush(self) -> None:
            pass

    def client():
        following.wait(60)
        while not stop.is_set():
            made.append(post(gate, {"texts": ["followed"]}).headers["x-nimbus-request-id"])
            time.sleep(0.05)

    terminal = Terminal()
    thread = threading.Thread(target=client)
    thread.start()
    monkeypatch.setattr(sys, "stdout", terminal)
    try:
        result = ip.run_cell("%nimbus_logs gate --follow --since 1s")
    finally:
        monkeypatch.undo()
        stop.set()
        thread.join()
    assert result.error_in_exec is None and result.result is None
    assert "following 'gate'" in terminal.text and any(rid in terminal.text for rid in made)


# -- the windows' arithmetic (a clock the test sets, the real class) -------------------------------------
def test_windows_keep_a_day_of_minutes_and_quantiles_within_a_bin():
    from nimbus_jupyter.targets.local.stats import DAY_BUCKETS, Windows

    now = [1_000_000.0]
    windows = Windows(clock=lambda: now[0])
    for ms in range(1, 101):
        windows.record(200, float(ms))
    windows.record(503, 5.0)
    now[0] += 2 * 3600  # two hours later: out of the last hour, still in the last day
    windows.record(429, 1.0)
    windows.record(404, 1.0)
    hour, day = windows.window("1h", 3600), windows.window("24h", 86400)
    assert (hour["requests"], hour["throttled"], hour["client_errors"], hour["errors"]) == (2, 1, 1, 0)
    assert (day["requests"], day["errors"]) == (103, 1)
    assert 47 <= day["p50_ms"] <= 53 and 95 <= day["p99_ms"] <= 105  # the true values are 50 and 99
    for _ in range(DAY_BUCKETS + 10):
        now[0] += 60
        windows.record(200, 1.0)
    assert len(windows.buckets) == DAY_BUCKETS and windows.window("24h", 86400)["requests"] == 1440  # the current minute and 1439 before it
    assert Windows().window("1h", 3600)["p50_ms"] is None


def test_rollback_result_says_back_or_forward() -> None:
    from nimbus_jupyter.core.operate import RollbackResult

    assert RollbackResult("r", "local", 3, 2, 1.25, "switch").text() == "rolled 'r' back from v3 to v2 in 1.2 s (switch)"
    assert RollbackResult("r", "aws", 2, 3, 0.4, "alias").text() == "moved 'r' forward from v2 to v3 in 0.4 s (alias)"
