"""The job magics in a real kernel (nbclient, as nbconvert runs notebooks): ``%nimbus_job`` follows a running
job in a live widget whose display keeps the final status as its text twin; the same magic after
``%config NimbusMagics.widgets = False`` is the status as text; ``%nimbus_jobs`` is a DataFrame; a ``Job``
displays itself (text and HTML)."""
from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

WIDGET = "application/vnd.jupyter.widget-view+json"
CELLS = [
    "import spacy, pandas as pd\nnlp = spacy.load(PIPELINE)\n"
    "texts = pd.Series([f'great phone number {i}, arrived broken' for i in range(12000)])",
    "%load_ext nimbus_jupyter",
    "d = %nimbus_deploy nlp --name nbjobs --samples 'great phone' --workers 1",
    "%%nimbus_batch nbjobs --detach --out job\ntexts",
    "%nimbus_job {job.id}",
    "%config NimbusMagics.widgets = False\nimport nimbus_jupyter\n"
    "job2 = nimbus_jupyter.submit(texts, 'nbjobs', quiet=True)\n%nimbus_job {job2.id}",
    "job2.wait(progress=False).state",
    "%nimbus_jobs",
    "job",
    "type(_).__name__, job.status().state",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory, textcat_nlp):
    tmp = tmp_path_factory.mktemp("nbjobs")
    home, pipeline = tmp / "home", tmp / "pipeline"
    textcat_nlp.to_disk(pipeline)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.replace("PIPELINE", repr(str(pipeline)))) for c in CELLS]
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp)}})
    client.execute(env={**os.environ, "NIMBUS_HOME": str(home)})
    try:
        yield nb.cells
    finally:
        from nimbus_jupyter.api import destroy
        from nimbus_jupyter.core.registry import Registry

        registry = Registry(home)
        for record in registry.all():
            destroy(record.name, registry)


def outputs(cell, kind=None):
    return [o for o in cell.outputs if kind is None or o.output_type == kind]


def test_no_cell_failed(executed):
    errors = [(i, o.ename, o.evalue) for i, c in enumerate(executed) for o in outputs(c, "error")]
    assert errors == []


def test_a_running_job_is_followed_in_a_widget_whose_text_twin_is_its_final_status(executed):
    [live] = [o for o in outputs(executed[4]) if WIDGET in o.get("data", {})]
    assert live["data"]["text/plain"].startswith("job j-") and ": succeeded, 12,000/12,000 rows" in live["data"]["text/plain"]
    assert "succeeded" in live["data"]["text/html"]


def test_with_widgets_off_a_running_job_is_its_status_as_text(executed):
    [result] = outputs(executed[5], "execute_result")
    text = result["data"]["text/plain"]
    assert WIDGET not in result["data"] and text.startswith("job j-"), result["data"]
    assert ": queued," in text or ": running," in text, text
    assert outputs(executed[6], "execute_result")[0]["data"]["text/plain"] == "'succeeded'"


def test_jobs_is_a_dataframe_and_a_job_displays_itself(executed):
    [frame] = outputs(executed[7], "execute_result")
    assert "<table" in frame["data"]["text/html"] and "nbjobs" in frame["data"]["text/plain"]
    [job] = outputs(executed[8], "execute_result")
    assert job["data"]["text/plain"].startswith("job j-") and "succeeded" in job["data"]["text/plain"]
    assert "<table>" in job["data"]["text/html"]
    [kind] = outputs(executed[9], "execute_result")
    assert kind["data"]["text/plain"] == "('Job', 'succeeded')"
