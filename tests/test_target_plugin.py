"""A third target, registered by entry point from a package in ``tests/plugins/fake`` (found as an
installed distribution is: its ``dist-info`` on ``sys.path``), is deployed, listed, probed, operated and
destroyed through the Python API, the magics (a real IPython shell) and the server extension (a real
Jupyter server), none of which names it. Broken plugins give one warning each and break nothing else.
"""
from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
from IPython.core.error import UsageError

import nimbus_jupyter as nj
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.runtime.fields import doc_to_result
from nimbus_jupyter.targets.base import capabilities_of
from nimbus_jupyter.targets.registry import TargetPluginWarning, catalog, check_options, get_target, target_class
from pipelines import textcat_pipeline

pytest_plugins = ["pytest_jupyter.jupyter_server"]
PLUGINS = Path(__file__).with_name("plugins")
SAMPLES = ["great phone, love it", "arrived broken, avoid"]
HISTORY_COLUMNS = ["kind", "version", "from_version", "when", "who", "hash", "components", "note", "ref", "serving",
                   "available"]


@pytest.fixture(scope="module", autouse=True)
def fake_plugin():
    """The plugin's folder on sys.path, as `pip install nimbus-fake-target` would put it (first: its
    deployments are destroyed, by the nimbus_home fixture, while it is still there)."""
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(PLUGINS / "fake"))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def v2_nlp():
    return textcat_pipeline(epochs=2, seed=1)


def kernel_cats(nlp, texts):
    return [doc_to_result(doc, ["cats"]) for doc in nlp.pipe(texts)]


def test_the_registry_finds_the_plugin_by_its_entry_point() -> None:
    classes = catalog().classes
    assert list(classes) == ["local", "aws", "fake"]
    assert classes["fake"].__module__ == "nimbus_fake_target" and capabilities_of(classes["fake"]) == ["operate"]
    (entry,) = [e for e in importlib.metadata.entry_points(group="nimbus_jupyter.targets") if e.name == "fake"]
    assert entry.value == "nimbus_fake_target:FakeTarget" and entry.dist.name == "nimbus-fake-target"


def test_the_python_api_deploys_lists_probes_operates_and_destroys_it(nimbus_home, textcat_nlp, v2_nlp) -> None:
    d = nj.deploy(textcat_nlp, "fk-api", target="fake", samples=SAMPLES, fake_threads=2, fake_label="py", show=False)
    assert (d.status, d.target, d.version) == ("ready", "fake", 1) and d.parity.ok
    assert d.options == {"fake_threads": 2, "fake_label": "py", "fake_color": "blue", "fake_quiet": None}
    assert d.predict(SAMPLES, ["cats"]) == kernel_cats(textcat_nlp, SAMPLES)
    listed = {x.name: x for x in nj.list_deployments()}
    assert (listed["fk-api"].status, listed["fk-api"].target) == ("ready", "fake")
    scored = nj.batch(SAMPLES * 5, "fk-api", fields=["cats"], progress=False)
    assert (scored.error == "").all() and scored.attrs["nimbus"].via == "http"
    report = nj.status_report("fk-api")
    assert report.health == "ok" and report.last_hour.requests >= 3 and report.cost_detail == "fake target: free"

    v2 = nj.deploy(v2_nlp, "fk-api", target="fake", samples=SAMPLES, show=False)
    assert v2.version == 2 and v2.predict(SAMPLES, ["cats"]) == kernel_cats(v2_nlp, SAMPLES)
    history = nj.history("fk-api")
    assert list(history.columns) == HISTORY_COLUMNS
    assert list(zip(history.kind, history.version, history.serving, history.ref)) == [
        ("deploy", 1, False, "fake-1"), ("deploy", 2, True, "fake-2")]
    result = nj.rollback("fk-api")
    assert (result.target, result.from_version, result.to_version) == ("fake", 2, 1)
    assert nj.get_deployment("fk-api").predict(SAMPLES, ["cats"]) == kernel_cats(textcat_nlp, SAMPLES)
    assert list(nj.history("fk-api").kind) == ["deploy", "deploy", "rollback"]

    lines = nj.recent_logs("fk-api", since="1h", limit=100)
    assert any(line.message.startswith("POST /predict 200") for line in lines)
    stream = nj.follow_logs("fk-api", since="1h")
    assert next(stream).message.startswith("POST /predict 200")  # the first request it answered: the smoke test
    stream.close()
    assert nj.destroy("fk-api") == "destroyed 'fk-api': stopped the fake server and removed its files"
    assert "fk-api" not in {x.name for x in nj.list_deployments()}


def test_the_magics_deploy_list_status_history_rollback_logs_destroy_it(ip, nimbus_home, textcat_nlp, v2_nlp,
                                                                       capsys) -> None:
    ip.user_ns.update(nlp=textcat_nlp, nlp2=v2_nlp)
    cell = "d = %nimbus_deploy nlp --name fk-magic --target fake --fake-threads 3 --fake-color green --fake-quiet"
    assert ip.run_cell(cell + " --samples 'great phone' 'arrived broken'").success
    out = capsys.readouterr().out
    assert "Deploying 'fk-magic' to fake" in out and "✔ start" in out and "parity: OK, 2 sample(s)" in out
    assert ip.user_ns["d"].options == {"fake_threads": 3, "fake_label": None, "fake_color": "green", "fake_quiet": True}
    table = ip.run_line_magic("nimbus_list", "").set_index("name")
    assert (table.loc["fk-magic", "target"], table.loc["fk-magic", "status"]) == ("fake", "ready")
    capsys.readouterr()
    report = ip.run_cell("%nimbus_status fk-magic").result
    assert report.health == "ok" and "\nfk-magic: ok in " in capsys.readouterr().out
    assert ip.run_cell("%nimbus_deploy nlp2 --name fk-magic --target fake --fake-quiet --samples 'fine'").success
    history = ip.run_line_magic("nimbus_history", "fk-magic")
    assert list(history.columns) == HISTORY_COLUMNS and list(history.version) == [1, 2]
    capsys.readouterr()
    assert ip.run_cell("%nimbus_rollback fk-magic").success
    assert "rolled 'fk-magic' back from v2 to v1" in capsys.readouterr().out
    assert ip.run_cell("%nimbus_logs fk-magic").success
    assert "no log lines for 'fk-magic'" in capsys.readouterr().out  # --fake-quiet reached the server
    assert ip.run_cell("%nimbus_destroy fk-magic").success
    assert "destroyed 'fk-magic'" in capsys.readouterr().out


def test_deploy_help_shows_each_targets_options_in_a_group_of_its_own(ip) -> None:
    doc = ip.find_line_magic("nimbus_deploy").getdoc()  # what %nimbus_deploy? shows
    marks = ["local target:", "--workers", "--max-queue", "aws target:", "--memory", "--rate", "--alarm-email",
             "fake target:", "--fake-threads", "--fake-color", "--fake-quiet"]
    at = doc.index("local target:")
    for mark in marks:  # each after the one before: every option under its own target's heading
        assert mark in doc[at:], f"{mark} is not after the one before it:\n{doc}"
        at = doc.index(mark, at)
    assert "where to deploy: local, aws, fake (default: local)" in " ".join(doc.split())


def test_deploy_help_through_ipython_question_mark(ip, capsys) -> None:
    ip.run_cell("%nimbus_deploy?")
    shown = capsys.readouterr().out
    assert "fake target:" in shown and "--fake-threads" in shown and "--workers" in shown


@pytest.mark.parametrize("cell, expected", [
    ("%nimbus_deploy nlp --name fk-bad --target fake --workers 2", "workers: option(s) of the local target, not of fake"),
    ("%nimbus_deploy nlp --name fk-bad --target fake --fake-threads 0", "fake_threads must be from 1 to 16, not 0"),
    ("%nimbus_deploy nlp --name fk-bad --fake-color green", "fake_color: option(s) of the fake target, not of local"),
    ("%nimbus_deploy nlp --name fk-bad --target fake --fake-color red", "invalid choice: 'red'"),
    ("%nimbus_deploy nlp --name fk-bad --target mars", "unknown target 'mars'"),
])
def test_options_of_another_target_and_bad_values_are_usage_errors(ip, nimbus_home, textcat_nlp, cell, expected) -> None:
    ip.user_ns["nlp"] = textcat_nlp
    result = ip.run_cell(cell)
    assert isinstance(result.error_in_exec, UsageError) and expected in str(result.error_in_exec)
    assert "fk-bad" not in {x.name for x in nj.list_deployments()}


def test_broken_plugins_give_one_warning_each_and_the_others_keep_working(ip, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS / "broken"))
    with pytest.warns(TargetPluginWarning) as caught:
        found = catalog()
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert messages[0].startswith("the target plugin 'badopt' (nimbus_badopt_target:BadOptionTarget) is not usable: "
                                  "option 'replicas' has default 'three', which is not a whole number")
    assert messages[1].startswith("the target plugin 'crashy' (nimbus_crashy_target:CrashyTarget) failed to import: "
                                  "ModuleNotFoundError: No module named 'nimbus_some_missing_dependency'")
    assert all("pip uninstall nimbus-broken-targets" in m and "the other targets work meanwhile" in m for m in messages)
    assert list(found.classes) == ["local", "aws", "fake"]
    with pytest.raises(UserInputError) as info:
        get_target("crashy")
    assert "the target 'crashy' could not be loaded: it failed to import" in info.value.what
    assert "pip uninstall nimbus-broken-targets" in info.value.todo
    with pytest.raises(UserInputError, match="the target 'badopt' could not be loaded: it is not usable"):
        check_options("badopt", {})
    with pytest.raises(UserInputError) as info:
        target_class("mars")
    assert info.value.what == "unknown target 'mars'" and info.value.todo == "use one of: local, aws, fake"
    doc = ip.find_line_magic("nimbus_deploy").getdoc()
    assert "fake target:" in doc and "crashy" not in doc and "--replicas" not in doc
    assert check_options("local", {"workers": 1})["workers"] == 1


# -- the server extension ---------------------------------------------------------------------------------
@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nimbus_jupyter": True}}}


@pytest.fixture(scope="module")
def side(nimbus_home, textcat_nlp):
    d = nj.deploy(textcat_nlp, "fk-side", target="fake", samples=SAMPLES, fake_label="side", show=False)
    yield d
    try:
        nj.destroy("fk-side")
    except Exception:
        pass


async def fetch(jp_fetch, *parts, **kwargs):
    response = await jp_fetch("nimbus", "api", *parts, **kwargs)
    return response.code, json.loads(response.body)


async def test_the_targets_route_lists_every_target_with_its_options(jp_fetch) -> None:
    code, body = await fetch(jp_fetch, "targets")
    assert code == 200 and body["default"] == "local" and set(body) == {"targets", "default"}
    targets = {t["name"]: t for t in body["targets"]}
    assert list(targets) == ["local", "aws", "fake"]
    assert {name: t["capabilities"] for name, t in targets.items()} == {
        "local": ["operate", "jobs"], "aws": ["operate", "discover", "jobs", "rotate_key"], "fake": ["operate"]}
    fake = targets["fake"]
    assert set(fake) == {"name", "title", "stages", "capabilities", "options"}
    assert fake["stages"] == ["serialize", "package", "start", "smoke test"]
    assert fake["options"][0] == {"name": "fake_threads", "flag": "--fake-threads", "type": "int", "default": 4,
                                  "help": "requests the fake server reads and writes at once (default 4)",
                                  "choices": None, "metavar": "N"}
    assert [(o["name"], o["type"], o["choices"]) for o in fake["options"][1:]] == [
        ("fake_label", "str", None), ("fake_color", "choice", ["blue", "green"]), ("fake_quiet", "bool", None)]
    assert [o["flag"] for o in targets["local"]["options"]] == ["--workers", "--max-queue"]
    arch = next(o for o in targets["aws"]["options"] if o["name"] == "arch")
    assert (arch["type"], arch["default"], arch["choices"]) == ("choice", "x86_64", ["x86_64", "arm64"])
    assert next(o for o in targets["aws"]["options"] if o["name"] == "throttle_rate")["flag"] == "--rate"


async def test_the_deployment_routes_serve_it_like_any_other(jp_fetch, side, textcat_nlp) -> None:
    code, body = await fetch(jp_fetch, "deployments")
    [row] = [d for d in body["deployments"] if d["name"] == "fk-side"]
    assert (row["target"], row["status"], row["url"]) == ("fake", "ready", side.url)
    code, body = await fetch(jp_fetch, "deployments", "fk-side")
    assert code == 200 and body["status"] == "ready"
    code, body = await fetch(jp_fetch, "deployments", "fk-side", "predict", method="POST",
                             body=json.dumps({"texts": SAMPLES, "fields": ["cats"]}))
    assert code == 200 and body["results"] == kernel_cats(textcat_nlp, SAMPLES) and body["version"] == "1"
    code, body = await fetch(jp_fetch, "deployments", "fk-side", "status")
    assert code == 200 and body["health"] == "ok" and body["last_hour"]["requests"] >= 2
    code, body = await fetch(jp_fetch, "deployments", "fk-side", method="DELETE")
    assert code == 200 and "stopped the fake server" in body["message"]
    code, body = await fetch(jp_fetch, "deployments")
    assert "fk-side" not in {d["name"] for d in body["deployments"]}
