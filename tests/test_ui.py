"""The deploy widget renders events and results, and keeps the API key out of its text."""
from __future__ import annotations

from nimbus_jupyter.api import DeployResult
from nimbus_jupyter.api.deployment import Deployment
from nimbus_jupyter.api.parity import ParityReport
from nimbus_jupyter.core.progress import DONE, FAILED, RUNNING, StageEvent
from nimbus_jupyter.faces.ui.deploy_view import WidgetDeployView
from nimbus_jupyter.faces.ui.render import samples_html

KEY = "nmb_supersecretkeyvalue_1234"


def fake_result(tmp_path, differences=()):
    key_file = tmp_path / "api_key"
    key_file.write_text(KEY)
    d = Deployment("reviews", "local", "http://127.0.0.1:5000", 2, "ready", "ab" * 32, "en",
                   ["textcat", "ner"], "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 2, key_file=str(key_file))
    texts = ["Apple is great", "meh"]
    results = [{"ents": [{"text": "Apple", "label": "ORG", "start": 0, "end": 5}], "cats": {"POS": 0.9, "NEG": 0.1}},
               {"ents": [], "cats": {"POS": 0.2, "NEG": 0.8}}]
    parity = ParityReport(texts, ["ents", "cats"], results, results, list(differences))
    return DeployResult(d, False, texts, results, ["ents", "cats"], parity)


def test_widget_shows_stages_then_url_masked_key_samples_and_parity(ip, tmp_path):
    view = WidgetDeployView("reviews", "local", ["serialize", "package", "start", "smoke test"])
    view(StageEvent("serialize", RUNNING))
    assert "◐" in view.table.value
    for stage in ("serialize", "package", "start", "smoke test"):
        view(StageEvent(stage, DONE, f"{stage} detail", 0.25))
    assert view.bar.value == 4 and "0.25 s" in view.table.value and "start detail" in view.table.value
    view.finish(fake_result(tmp_path))
    url, key_row, samples, parity = view.result.children
    assert "http://127.0.0.1:5000" in url.value
    key_text, reveal = key_row.children[1], key_row.children[2]
    assert key_text.value == "nmb_••••••••1234" and KEY not in key_text.value
    reveal.value = True
    assert key_text.value == KEY
    reveal.value = False
    assert key_text.value == "nmb_••••••••1234"
    assert "Apple" in samples.value and "ORG" in samples.value and "<b>POS 0.900</b>" in samples.value
    assert "✔" in parity.value
    assert view.bar.bar_style == "success"


def test_widget_lists_parity_differences_and_failures(ip, tmp_path):
    view = WidgetDeployView("reviews", "local", ["serialize"])
    view.finish(fake_result(tmp_path, ["sample 1 cats: kernel 0.1 != endpoint 0.2"]))
    assert "sample 1 cats" in view.result.children[-1].value and view.bar.bar_style == "warning"
    view(StageEvent("serialize", FAILED, "boom", 0.1))
    view.fail(RuntimeError("the server died"))
    assert view.bar.bar_style == "danger" and "the server died" in view.result.children[0].value


def test_entities_render_with_displacy_and_categories_as_a_table():
    out = samples_html(["Apple is great"], [{"ents": [{"text": "Apple", "label": "ORG", "start": 0, "end": 5}],
                                             "cats": {"POS": 0.9, "NEG": 0.1}}])
    assert "<mark" in out and "ORG" in out and "<table>" in out
