"""The deploy widget renders events and results, says what happened, and keeps the API key out of its text."""
from __future__ import annotations

from nimbus_jupyter.api import DeployResult
from nimbus_jupyter.api.deployment import Deployment
from nimbus_jupyter.api.parity import ParityReport
from nimbus_jupyter.api.results import StageTiming
from nimbus_jupyter.core.progress import DONE, FAILED, RUNNING, SKIPPED, StageEvent
from nimbus_jupyter.core.records import DeploymentRecord
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.faces.ui.deploy_view import WidgetDeployView
from nimbus_jupyter.faces.ui.render import samples_html

KEY = "nmb_supersecretkeyvalue_1234"
STAGES = ["serialize", "package", "start", "smoke test"]


def fake_result(tmp_path, differences=(), registered=True):
    home = tmp_path / "home"
    registry = Registry(home)
    key_file = tmp_path / "api_key"
    key_file.write_text(KEY)
    record = DeploymentRecord("reviews", "local", version=2, url="http://127.0.0.1:5000", key_file=str(key_file),
                              created="2026-01-01T00:00:00Z")
    if registered:
        registry.put(record)
    d = Deployment("reviews", "local", "http://127.0.0.1:5000", 2, "ready", "ab" * 32, "en",
                   ["textcat", "ner"], "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 2, key_file=str(key_file),
                   record=record, registry=registry)
    texts = ["Apple is great", "meh"]
    results = [{"ents": [{"text": "Apple", "label": "ORG", "start": 0, "end": 5}], "cats": {"POS": 0.9, "NEG": 0.1}},
               {"ents": [], "cats": {"POS": 0.2, "NEG": 0.8}}]
    parity = ParityReport(texts, ["ents", "cats"], results, results, list(differences))
    stages = [StageTiming("serialize", DONE, 0.25, "2.2 MB"), StageTiming("package", DONE, 0.01, "v2"),
              StageTiming("start", DONE, 1.5, "2 worker(s)"), StageTiming("smoke test", DONE, 0.02, "2 answered")]
    return DeployResult(d, False, texts, results, ["ents", "cats"], parity, stages=stages, seconds=1.78,
                        previous_version=1)


def finished_view(tmp_path, **kwargs):
    view = WidgetDeployView("reviews", "local", STAGES)
    for stage in STAGES:
        view(StageEvent(stage, DONE, f"{stage} detail", 0.25))
    view.finish(fake_result(tmp_path, **kwargs))
    return view


def test_widget_shows_stages_then_url_masked_key_samples_and_parity(ip, tmp_path):
    view = WidgetDeployView("reviews", "local", STAGES)
    view(StageEvent("serialize", RUNNING))
    assert "◐" in view.table.value and "deploying" in view.title.value
    for stage in STAGES:
        view(StageEvent(stage, DONE, f"{stage} detail", 0.25))
    assert view.bar.value == 4 and "0.25 s" in view.table.value and "start detail" in view.table.value
    view.finish(fake_result(tmp_path))
    endpoint, _key_row, _problem, samples = view.result.children
    assert "http://127.0.0.1:5000" in endpoint.value
    assert view.key.value == "nmb_••••••••1234" and KEY not in view.key.value
    view.reveal.value = True
    assert view.key.value == KEY and view.reveal.description == "Hide"
    view.reveal.value = False
    assert view.key.value == "nmb_••••••••1234"
    assert "Apple" in samples.value and "ORG" in samples.value and "<b>POS 0.900</b>" in samples.value
    assert "✔ parity: OK" in samples.value
    assert view.bar.bar_style == "success"


def test_the_title_says_what_happened_when_the_deploy_is_done(ip, tmp_path):
    view = finished_view(tmp_path)
    assert "deploying" not in view.title.value
    assert "updated &#x27;reviews&#x27; on local from v1 to v2 in 1.78 s" in view.title.value
    failed = WidgetDeployView("broken", "local", STAGES)
    failed(StageEvent("start", FAILED, "boom", 0.1))
    failed.fail(RuntimeError("the server died"))
    assert "deploying" not in failed.title.value and "failed" in failed.title.value


def test_reveal_on_a_destroyed_deployment_says_so_in_the_widget(ip, tmp_path):
    view = finished_view(tmp_path)
    Registry(tmp_path / "home").remove("reviews")
    (tmp_path / "api_key").unlink()  # what destroy does
    view.reveal.value = True  # before: FileNotFoundError in the observer, shown only in the log console
    assert "&#x27;reviews&#x27; was destroyed" in view.problem.value and "deploy it again" in view.problem.value
    assert view.key.value == "" and view.reveal.disabled


def test_widget_tables_have_cell_padding(ip, tmp_path):
    view = finished_view(tmp_path)
    assert "padding:2px 10px" in view.table.value
    assert "padding:2px 10px" in view.result.children[-1].value  # the categories table


def test_the_text_twin_of_a_deploy_shows_stage_durations(tmp_path):
    text = fake_result(tmp_path).text()
    assert text.splitlines()[0] == "reviews: ready on local, version 2"
    assert "updated 'reviews' on local from v1 to v2 in 1.78 s" in text
    for line in ("✔ serialize   0.25 s  2.2 MB", "✔ start       1.50 s  2 worker(s)"):
        assert line in text
    assert KEY not in text and "nmb_••••••••1234" in text


def test_widget_lists_parity_differences_and_failures(ip, tmp_path):
    view = WidgetDeployView("reviews", "local", ["serialize"])
    view.finish(fake_result(tmp_path, ["sample 1 cats: kernel 0.1 != endpoint 0.2"]))
    assert "sample 1 cats" in view.result.children[-1].value and view.bar.bar_style == "warning"
    assert "⚠" in view.title.value
    view(StageEvent("serialize", FAILED, "boom", 0.1))
    view.fail(RuntimeError("the server died"))
    assert view.bar.bar_style == "danger" and "the server died" in view.result.children[0].value


def test_skipped_stages_show_as_skipped(ip):
    view = WidgetDeployView("reviews", "local", STAGES)
    view(StageEvent("package", SKIPPED, "unchanged"))
    assert "– package" in view.table.value and "unchanged" in view.table.value


def test_entities_render_with_displacy_and_categories_as_a_table():
    out = samples_html(["Apple is great"], [{"ents": [{"text": "Apple", "label": "ORG", "start": 0, "end": 5}],
                                             "cats": {"POS": 0.9, "NEG": 0.1}}])
    assert "<mark" in out and "ORG" in out and "<table" in out
