"""Every layer the project builds, run by the real awslambdaric against a Lambda Runtime API emulator.

x86_64 natively and arm64 under qemu-aarch64 (tests/lambda_harness.py says how each is isolated). The
layer is built by ``build_layer`` for the runtime ``runtime_select`` picks for this kernel (python3.14 for
a 3.11 kernel with numpy 2.4: Debian's CPython, extracted on first use, runs it and compiles its .pyc),
plus one on python3.13; the function code by ``build_function_code``: what a deploy ships.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, Iterator

import pytest

import lambda_harness as lh
from lambda_events import http_v2, rest_v1
from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.targets.aws.layer import build_layer
from nimbus_jupyter.targets.aws.package import build_function_code

# (arch, runtime): None is the runtime a deploy of this kernel gets (runtime_select), on both arches; and
# python3.13 natively, the runtime before it, on this machine's own CPython (pyenv) rather than Debian's.
CONFIGS = [("x86_64", None), ("arm64", None), ("x86_64", "3.13")]
TEXTS = ["very happy with this phone", "arrived broken, avoid the laptop", "Sara flew to Paris on Monday ."]


def _chosen(arch: str) -> str:
    """The runtime this kernel deploys to for ``arch``: the newest GA one with a wheel for every pin."""
    from nimbus_jupyter.targets.aws.runtime_select import select_runtime

    return select_runtime(arch)[0].python


def _require(python: str, arch: str) -> None:
    """The interpreter (extracted from Debian on first use) and the .pyc compiler; CI fails, not skips."""
    try:
        lh.interpreter(python, arch)
        lh.compile_python(python)
    except lh.HarnessUnavailable as exc:
        if "CI" in os.environ:
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="session", params=CONFIGS, ids=lambda c: f"{c[0]}-{'chosen' if c[1] is None else 'py' + c[1]}")
def built(request, shared_cache: Path) -> Dict:
    arch, python = request.param
    chosen = _chosen(arch)
    if python is not None and python == chosen:
        pytest.skip(f"python{python} is the chosen runtime already")
    python = python or chosen
    _require(python, arch)
    layer = build_layer(python, arch, shared_cache / "layers", langs=["en"])
    assert layer.compiled, layer.notes  # the .pyc layer: what a deploy ships when the runtime's Python is here
    return {"arch": arch, "python": python, "layer": layer, "chosen": python == chosen}


@pytest.fixture(scope="session")
def raiser_nlp(textcat_nlp):
    import raising_component  # noqa: F401  (registers the factory; code capture ships its module)
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_raises_on_boom")
    return nlp


def _function(built: Dict, nlp, name: str, root: Path, **env_extra) -> lh.LambdaFunction:
    bundle = build_bundle(nlp, root / "bundle", name)
    code = build_function_code(bundle.path, root / "code", inline=True)
    env = lh.Environment(layer_dir=built["layer"].path, code_dir=code, python=built["python"], arch=built["arch"],
                         timeout_s=60, env={"NIMBUS_BUNDLE_DIR": "/var/task/bundle", "NIMBUS_DEPLOYMENT": name,
                                            "NIMBUS_VERSION": "1", **env_extra})
    api = lh.RuntimeApi(timeout_s=env.timeout_s).__enter__()
    function = lh.LambdaFunction(env, api, root / "function.log")
    function.api_handle = api
    return function


@pytest.fixture(scope="module")
def textcat_function(built, textcat_nlp, tmp_path_factory) -> Iterator[lh.LambdaFunction]:
    """Started once per layer (a cold start under qemu is most of a minute); the tests below invoke it."""
    function = _function(built, textcat_nlp, "reviews", tmp_path_factory.mktemp("reviews"))
    function.start()
    yield function
    function.close()
    function.api_handle.__exit__()


def _body(inv: lh.Invocation) -> dict:
    assert inv.status == "ok", (inv.error_type, inv.payload)
    return json.loads(inv.payload["body"])


def _predicts_what_the_kernel_predicts(function: lh.LambdaFunction, nlp, fields) -> None:
    inv = function.invoke(rest_v1("POST", "/predict", {"texts": TEXTS, "fields": fields}, path="/nlp/predict/"))
    assert inv.payload["statusCode"] == 200, inv.payload
    expected = [doc_to_result(doc, fields) for doc in nlp.pipe(TEXTS)]
    assert _body(inv)["results"] == json.loads(json.dumps(expected))


def test_layer_inits_under_awslambdaric_and_predicts_what_the_kernel_predicts(built, textcat_function, textcat_nlp):
    assert textcat_function.init_seconds > 0 and textcat_function.cold_starts == 1
    assert textcat_function.api.init_error is None
    health = textcat_function.invoke(rest_v1("GET", "/health"))
    assert health.payload["statusCode"] == 200 and _body(health)["name"] == "reviews"
    _predicts_what_the_kernel_predicts(textcat_function, textcat_nlp, ["ents", "cats"])
    assert textcat_function.api.errors == 0
    log = textcat_function.log_text()
    assert "Traceback" not in log and "nimbus: init failed" not in log


def test_http_api_v2_events_get_a_4xx_naming_their_shape(built, textcat_function):
    inv = textcat_function.invoke(http_v2("POST", "/predict", {"texts": ["hi"]}, function_url=True))
    assert inv.payload["statusCode"] == 400 and "Lambda function URL" in _body(inv)["message"]


def _tokens_just_under_six_mb(nlp, n_texts: int = 1500):
    """``n_texts`` texts whose ``tokens`` answer has a body under 6 MiB (the old, body-only check passed it)
    and a serialized envelope over Lambda's 6,291,556 bytes (issue 12's 1,500-text case): the most words
    per text that keep the body under 6 MiB."""
    from nimbus_jupyter.runtime.limits import MAX_PAYLOAD_BYTES

    best = None
    for words in range(20, 80):
        texts = [" ".join(f"w{i}x{j}" for j in range(words)) for i in range(n_texts)]
        results = [doc_to_result(doc, ["tokens"]) for doc in nlp.pipe(texts)]
        body = json.dumps({"results": results, "fields": ["tokens"], "version": "1", "errors": 0}, separators=(",", ":"))
        if len(body) >= MAX_PAYLOAD_BYTES:
            break
        best = (texts, body)
    assert best is not None, "even 20 words per text make a body over 6 MiB"
    texts, body = best
    envelope = len(json.dumps({"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body,
                               "isBase64Encoded": False}))
    assert len(body) < MAX_PAYLOAD_BYTES < lh.RESPONSE_LIMIT < envelope, (len(body), envelope)
    return texts


def test_1500_texts_asking_for_tokens_get_the_413_style_error_not_a_crashed_runtime(built, textcat_function,
                                                                                   textcat_nlp):
    """Lambda measures the serialized response: the handler refuses an answer whose envelope is over
    6,291,556 bytes with its own 413 JSON (which batch splits on), so the Runtime API never sees an oversize
    response, the runtime client does not crash and Lambda counts no error."""
    texts = _tokens_just_under_six_mb(textcat_nlp)
    errors, starts = textcat_function.api.errors, textcat_function.cold_starts
    inv = textcat_function.invoke(rest_v1("POST", "/predict", {"texts": texts, "fields": ["tokens"]}))
    assert inv.status == "ok" and inv.runtime_status == 202, (inv.error_type, inv.payload)
    assert inv.payload["statusCode"] == 413 and _body(inv)["error"] == "response_too_large"
    assert "6,291,556-byte response limit" in _body(inv)["message"]
    half = textcat_function.invoke(rest_v1("POST", "/predict", {"texts": texts[:750], "fields": ["tokens"]}))
    assert half.payload["statusCode"] == 200 and len(_body(half)["results"]) == 750  # what batch's split sends
    assert textcat_function.api.errors == errors and textcat_function.cold_starts == starts
    assert textcat_function.process.poll() is None  # the same environment serves on


def test_a_trained_tagger_parser_ner_pipeline_predicts_what_the_kernel_predicts(built, core_nlp, tmp_path):
    if built["arch"] != lh.HOST_ARCH:
        pytest.skip("native arch only: another cold start under qemu is most of a minute; textcat covers arm64")
    function = _function(built, core_nlp, "core", tmp_path)
    try:
        function.start()
        _predicts_what_the_kernel_predicts(function, core_nlp, ["ents", "tokens", "sents"])
        assert function.api.errors == 0
    finally:
        function.close()
        function.api_handle.__exit__()


def test_a_raising_component_moves_the_alarm_metric_not_lambda_errors(built, raiser_nlp, tmp_path):
    function = _function(built, raiser_nlp, "raiser", tmp_path)
    try:
        function.start()
        good = function.invoke(rest_v1("POST", "/predict", {"texts": ["fine"]}))
        assert good.payload["statusCode"] == 200
        assert function.emf_metrics().get("PipelineErrors", 0) == 0
        bad = function.invoke(rest_v1("POST", "/predict", {"texts": ["this goes boom", "fine"]}))
        assert bad.payload["statusCode"] == 200 and _body(bad)["errors"] == 1  # the row is an error, its neighbour not
        assert "error" in _body(bad)["results"][0] and "error" not in _body(bad)["results"][1]
        assert function.api.errors == 0  # a row error in a 200 is no Lambda error: Errors alone would stay blind
        assert function.emf_metrics()["PipelineErrors"] == 1  # the metric the stack's alarm adds
        assert "this goes boom" not in function.log_text()  # the text is redacted from the log
    finally:
        function.close()
        function.api_handle.__exit__()


# ------------------------------------------------------------------- the sandbox and the emulator's limits

@pytest.fixture
def probe(built, tmp_path) -> Iterator[lh.LambdaFunction]:
    code = tmp_path / "code"
    shutil.copytree(Path(__file__).with_name("harness_probe"), code)
    env = lh.Environment(layer_dir=built["layer"].path, code_dir=code, python=built["python"], arch=built["arch"],
                         timeout_s=3, tmp_mb=16, handler="probe.handler")
    api = lh.RuntimeApi(timeout_s=env.timeout_s).__enter__()
    function = lh.LambdaFunction(env, api, tmp_path / "probe.log")
    function.start()
    yield function
    function.close()
    api.__exit__()


def test_sandbox_paths_env_and_read_only_code(probe, built):
    out = probe.invoke({"op": "env"}).payload
    assert out["python"] == built["python"] and out["cwd"] == "/var/task"
    assert out["machine"] == {"x86_64": "x86_64", "arm64": "aarch64"}[built["arch"]]
    env = out["env"]
    assert "HOME" not in env and env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_python{built['python']}"
    first = list(dict.fromkeys(out["sys_path"]))  # -m puts the working directory (/var/task) first too
    assert first[:3] == ["/var/task", f"/opt/python/lib/python{built['python']}/site-packages", "/opt/python"], first
    assert not any("site-packages" in p and not p.startswith("/opt") for p in out["sys_path"]), out["sys_path"]
    assert 0 < out["remaining_ms"] <= 3000
    chrooted = lh.interpreter(built["python"], built["arch"]).mode == "chroot"
    for path in ("/var/task/new.txt", "/opt/python/new.txt") + (("/new.txt", "/var/new.txt") if chrooted else ()):
        wrote = probe.invoke({"op": "write", "path": path}).payload
        assert wrote["written"] is False and wrote["errno"] == 30, wrote  # EROFS
    assert probe.invoke({"op": "write", "path": "/tmp/ok.txt", "bytes": 1024}).payload["written"] is True
    full = probe.invoke({"op": "write", "path": "/tmp/big.bin", "bytes": 17 * 1024 * 1024}).payload
    assert full["written"] is False and full["errno"] == 28  # ENOSPC: /tmp is the function's 16 MB


def test_the_layers_pyc_are_the_runtimes_own(probe, built):
    for module in ("spacy", "numpy", "thinc"):  # top-level: found, not imported
        pyc = probe.invoke({"op": "pyc", "module": module}).payload
        assert pyc["origin"].startswith("/opt/python/"), pyc
        assert pyc["exists"] and pyc["magic_ok"], pyc  # else every cold start compiles it again, in memory
        assert pyc["flags"] == 0b01, pyc  # unchecked hash: /opt's mtimes after Lambda's unzip do not matter


def test_responses_over_6291556_bytes_are_413_and_count_as_errors(probe):
    fits = probe.invoke({"op": "big", "bytes": lh.RESPONSE_LIMIT - 2})  # JSON quotes: exactly the limit
    assert fits.status == "ok" and fits.runtime_status == 202
    over = probe.invoke({"op": "big", "bytes": lh.RESPONSE_LIMIT - 1})
    assert over.runtime_status == 413 and over.error_type == "Function.ResponseSizeTooLarge"
    assert probe.api.errors == 1
    # awslambdaric 4.2.2 raises on the 413 and its process exits (as on Lambda): the next invoke cold-starts
    assert probe.process.wait(timeout=30) != 0 and "Failed to post invocation response" in probe.log_text()
    assert probe.invoke({"op": "ping"}).payload == {"op": "ping"} and probe.cold_starts == 2


def test_requests_over_6_mb_never_reach_the_function(probe):
    inv = probe.invoke({"op": "ping", "pad": "x" * lh.REQUEST_LIMIT})
    assert inv.status == "refused" and inv.error_type == "RequestTooLargeException"
    assert probe.api.errors == 0


def test_raised_exceptions_and_timeouts_count_as_lambda_errors(probe, built):
    raised = probe.invoke({"op": "raise"})
    assert raised.status == "error" and raised.payload["errorType"] == "ValueError"
    assert probe.api.errors == 1
    if built["arch"] != lh.HOST_ARCH:
        return  # the timeout is scaled under qemu; one arch shows it
    slow = probe.invoke({"op": "sleep", "seconds": 10})
    assert slow.error_type == "Sandbox.Timedout" and probe.api.errors == 2
    assert probe.process.poll() is not None  # the environment is gone; the next invoke is a cold start
