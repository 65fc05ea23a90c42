"""Headless, in a real kernel (nbclient, as nbconvert runs notebooks): every magic leaves a readable text form.

What a saved notebook read as text, a CI log of ``jupyter nbconvert --execute`` or an editor without widgets
shows is each output's ``text/plain``: never ``VBox(children=(HTML(...`` or ``StatusReport(...)``.
"""
from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

WIDGET = "application/vnd.jupyter.widget-view+json"
CELLS = [
    "import spacy\nnlp = spacy.load(PIPELINE)",
    "%load_ext nimbus_jupyter",
    "d = %nimbus_deploy nlp --name headless --samples 'great phone, love it' 'arrived broken' --workers 1",
    "%nimbus_status headless",
    "%%nimbus_batch headless --out scored\n['the kettle is lovely', 'the lid broke']",
    "%nimbus_deploy nlp --name headless --dry-run",
    "%nimbus_history headless",
    "%nimbus_list",
    "d.result",
    "%nimbus_destroy headless",
    "d.predict(['still there?'])",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory, textcat_nlp):
    tmp = tmp_path_factory.mktemp("headless")
    home, pipeline = tmp / "home", tmp / "pipeline"
    textcat_nlp.to_disk(pipeline)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.replace("PIPELINE", repr(str(pipeline)))) for c in CELLS]
    env = {**os.environ, "NIMBUS_HOME": str(home)}
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp)}})
    client.execute(env=env)
    try:
        yield nb.cells
    finally:
        from nimbus_jupyter.api import destroy
        from nimbus_jupyter.core.registry import Registry

        registry = Registry(home)
        for record in registry.all():
            destroy(record.name, registry)


def texts(cell) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_no_output_is_a_widget_repr_or_a_dataclass_repr(executed):
    for cell in executed:
        text = texts(cell)
        assert "VBox(" not in text and "HTML(value" not in text and "StatusReport(" not in text, cell.source


def test_the_deploy_text_shows_what_happened_and_each_stages_duration(executed):
    text = texts(executed[2])
    assert "headless: ready on local, version 1" in text and "deployed 'headless' v1 to local in" in text
    for stage in ("serialize", "package", "start", "smoke test"):
        assert f"✔ {stage}" in text
    assert " s  " in text.split("✔ start", 1)[1].splitlines()[0]  # its duration, then its detail
    assert "parity: OK, 2 sample(s)" in text
    assert any(WIDGET in o.get("data", {}) for o in executed[2].outputs)  # the live widget, with this text twin


def test_status_is_its_text_with_a_live_panel_beside_it(executed):
    [output] = [o for o in executed[3].outputs if o.output_type == "execute_result"]
    text = output["data"]["text/plain"]
    assert text.startswith("headless: ok in ") and "last hour" in text and "checked at" in text
    assert WIDGET in output["data"] and "<table" in output["data"]["text/html"]


def test_batch_plan_history_list_and_result_read_as_text(executed):
    assert "2 rows in" in texts(executed[4]) and "0 failed" in texts(executed[4])
    assert "Plan for 'headless' on target 'local': nothing to change" in texts(executed[5])
    assert "deploy" in texts(executed[6]) and "version" in texts(executed[6])
    assert "headless" in texts(executed[7]) and "ready" in texts(executed[7])
    assert "headless: ready on local, version 1" in texts(executed[8]) and "✔ serialize" in texts(executed[8])


def test_after_destroy_the_handle_says_it_was_destroyed(executed):
    assert "destroyed 'headless'" in texts(executed[9])
    assert "DeploymentGone: 'headless' was destroyed" in texts(executed[10])
