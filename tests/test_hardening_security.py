"""Security promises of the local target, checked against a real server: every route but health needs
the key, keys and request texts stay out of logs and errors, files are private, bundles are not unpickled."""
from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.endpoint.client import EndpointClient
from nimbus_jupyter.core.errors import EndpointError
from nimbus_jupyter.core.registry import Registry
from pipelines import fails_on_pipeline

PACKAGE = Path(nj.__file__).resolve().parent
SECRET_TEXT = "Zanzibar-7f3e91 private note: the patient's card is 4111 1111 1111 1111 EXPLODE"


@pytest.fixture(scope="module")
def touchy(nimbus_home):
    return nj.deploy(fails_on_pipeline(), "touchy", samples=["fine"], workers=1, show=False)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND"])
@pytest.mark.parametrize("path", ["/predict", "/openapi.json", "/health", "/", "/nope", "/predict/", "/Predict", "//predict"])
def test_every_route_and_method_but_get_health_needs_the_key(touchy, method, path):
    answer = requests.request(method, touchy.url + path, json={"texts": ["x"]}, timeout=10)
    if (method, path) == ("GET", "/health"):
        assert answer.status_code == 200
        return
    assert answer.status_code in (401, 405), (method, path, answer.status_code)
    if answer.status_code == 405:  # a method no route takes: refused before anything else, and no data
        assert method == "PROPFIND" and answer.json()["error"] == "method_not_allowed"
        return
    if method != "HEAD":
        assert answer.json()["error"] == "unauthorized"
    last = touchy.api_key[-1]
    one_char_off = touchy.api_key[:-1] + ("B" if last == "A" else "A")  # never the key itself
    assert one_char_off != touchy.api_key
    wrong = requests.request(method, touchy.url + path, headers={"x-api-key": one_char_off}, timeout=10)
    assert wrong.status_code == 401


def test_the_key_is_compared_in_constant_time():
    source = (PACKAGE / "targets" / "local" / "server.py").read_text()
    assert "hmac.compare_digest(provided, self.key)" in source
    assert "== self.key" not in source and "self.key ==" not in source


def test_a_failing_text_is_its_rows_error_and_neither_answer_nor_log_holds_it_or_the_key(touchy):
    answer = requests.post(f"{touchy.url}/predict", json={"texts": ["ok", SECRET_TEXT]},
                           headers={"x-api-key": touchy.api_key}, timeout=30)
    assert answer.status_code == 200 and answer.json()["errors"] == 1
    ok, failed = answer.json()["results"]
    assert ok == {"cats": {"OK": 1.0}}
    assert failed["error"]["type"] == "ValueError"
    assert "redacted" in failed["error"]["message"] and "it contains EXPLODE" in failed["error"]["message"]
    assert "Zanzibar-7f3e91" not in answer.text and "4111 1111" not in answer.text
    log = (Registry().deployment_dir("touchy") / "server.log").read_text("utf-8", "replace")
    assert "ValueError" in log and "redacted" in log  # the failure is logged, its text is not
    assert "Zanzibar-7f3e91" not in log and "4111 1111" not in log
    assert touchy.api_key not in log


def test_errors_and_reprs_never_carry_the_key(touchy):
    key = touchy.api_key
    assert key not in repr(touchy) and key not in str(touchy)
    with pytest.raises(EndpointError) as caught:
        EndpointClient.over_http(touchy.url, key).predict([SECRET_TEXT], fields=["no-such-field"])  # a 400
    assert key not in str(caught.value) and "no-such-field" in str(caught.value)
    with pytest.raises(EndpointError) as caught:
        touchy.predict([SECRET_TEXT], fields=["no-such-field"])  # through its target's transport: a 400
    assert key not in str(caught.value) and SECRET_TEXT not in str(caught.value)
    with pytest.raises(EndpointError) as caught:
        EndpointClient.over_http("http://127.0.0.1:9", key).predict(["x"])  # nothing listens on port 9
    assert key not in str(caught.value)


def test_state_files_are_private(touchy):
    home = Registry().home
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    root = Registry().deployment_dir("touchy")
    for path in [home / "registry.json", root / "api_key", root / "server.json", root / "status.json", root / "server.log"]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_loading_a_bundle_never_unpickles(tmp_path, textcat_nlp, monkeypatch):
    """spaCy's to_disk/from_disk use msgpack and JSON; nothing the runtime does on a bundle unpickles."""
    import pickle

    from nimbus_jupyter.runtime.loader import load_bundle

    bundle = build_bundle(textcat_nlp, tmp_path / "b", "b", namespace={})
    calls = []
    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, lambda *a, _n=name, **k: calls.append(_n))
    monkeypatch.setattr(pickle, "Unpickler", lambda *a, **k: calls.append("Unpickler"))
    nlp, manifest = load_bundle(bundle.path)
    assert nlp.pipe_names == textcat_nlp.pipe_names and not calls
    for path in (PACKAGE / "runtime").glob("*.py"):  # and the code shipped to Lambda imports no pickle at all
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {"pickle", "cloudpickle", "dill", "joblib"} & imported, path


def test_a_client_that_hangs_up_mid_body_leaves_no_traceback_in_the_log(touchy):
    import socket
    import time

    log = Registry().deployment_dir("touchy") / "server.log"
    before = log.read_text("utf-8", "replace")
    port = int(touchy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nx-api-key: {touchy.api_key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"texts\": [".encode())
        time.sleep(0.2)
    time.sleep(0.5)
    added = log.read_text("utf-8", "replace")[len(before):]
    assert "Traceback" not in added and "Exception in ASGI application" not in added, added[-2000:]
    assert requests.get(f"{touchy.url}/health", timeout=10).status_code == 200
