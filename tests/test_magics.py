"""The magics through a real IPython shell: what a notebook user types, sees and gets back."""
from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError

from nimbus_jupyter.api.deployment import Deployment
from nimbus_jupyter.api.parity import check_parity
from pipelines import textcat_pipeline


def run(ip, cell):
    result = ip.run_cell(cell)
    return result


def usage_error(ip, cell) -> str:
    result = ip.run_cell(cell)
    assert isinstance(result.error_in_exec, UsageError), f"{cell!r} gave {result.error_in_exec!r}"
    return str(result.error_in_exec)


@pytest.fixture(scope="module")
def shell(ip, nimbus_home, textcat_nlp):
    ip.user_ns["nlp"] = textcat_nlp
    ip.user_ns["reviews"] = ["great phone, love it", "arrived broken, avoid"]
    return ip


def test_deploy_shows_stages_endpoint_samples_and_parity_and_returns_a_deployment(shell, capsys):
    assert run(shell, "d = %nimbus_deploy nlp --name magic --samples-from reviews --workers 1").success
    out = capsys.readouterr().out
    d = shell.user_ns["d"]
    assert isinstance(d, Deployment) and d.status == "ready" and d.name == "magic" and d.target == "local"
    for stage in ("serialize", "package", "start", "smoke test"):
        assert f"✔ {stage}" in out
    assert d.url in out and d.masked_key in out and d.api_key not in out
    assert "'great phone, love it'" in out and "cats: POS" in out
    assert "parity: OK, 2 sample(s) identical" in out


def test_unchanged_redeploy_says_so(shell, capsys):
    assert run(shell, "%nimbus_deploy nlp --name magic --samples 'great phone' 'broken laptop'").success
    out = capsys.readouterr().out
    assert "already serves this pipeline" in out and "nothing to do" in out


def test_dry_run_prints_the_plan_and_changes_nothing(shell, capsys):
    shell.user_ns["nlp_v2"] = textcat_pipeline(epochs=2)
    assert run(shell, "%nimbus_deploy nlp_v2 --name magic --dry-run").success
    out = capsys.readouterr().out
    assert "create  bundle v2" in out and "update  local server" in out
    assert shell.run_line_magic("nimbus_status", "magic").version == 1


def test_list_is_a_table_of_every_deployment(shell):
    table = shell.run_line_magic("nimbus_list", "")
    assert isinstance(table, pd.DataFrame)
    row = table.set_index("name").loc["magic"]
    assert row["target"] == "local" and row["status"] == "ready" and row["version"] == 1
    assert row["components"] == "textcat, entity_ruler" and row["url"].startswith("http://127.0.0.1:")


def test_help_documents_the_options(shell):
    doc = shell.find_line_magic("nimbus_deploy").__doc__
    for option in ("--name", "--target", "--samples", "--samples-from", "--workers", "--dry-run", "--force"):
        assert option in doc


@pytest.mark.parametrize("cell, expected", [
    ("%nimbus_deploy missing_nlp", "no variable 'missing_nlp'"),
    ("%nimbus_deploy reviews --name x", "not a spaCy pipeline"),
    ("%nimbus_deploy nlp --name Bad_Name", "e.g. 'bad-name'"),
    ("%nimbus_deploy nlp --name ok --target mars", "unknown target 'mars'"),
    ("%nimbus_deploy nlp --name ok --workers 0", "at least 1"),
    ("%nimbus_deploy nlp --name ok --samples a --samples-from reviews", "either --samples or --samples-from"),
    ("%nimbus_deploy nlp --name ok --samples-from nlp", "--samples-from nlp"),
    ("%nimbus_deploy nlp --name ok --bogus", "unrecognized arguments"),
    ("%nimbus_status nowhere", "no deployment named 'nowhere'"),
    ("%nimbus_destroy nowhere", "no deployment named 'nowhere'"),
    ("%nimbus_list extra", "takes no arguments"),
])
def test_user_mistakes_are_usage_errors_that_say_what_to_do(shell, cell, expected):
    assert expected in usage_error(shell, cell)


def test_taken_name_needs_force(shell):
    shell.run_cell("import spacy\nother = spacy.blank('en')\nother.add_pipe('sentencizer')")
    message = usage_error(shell, "%nimbus_deploy other --name magic")
    assert "taken by another pipeline" in message and "--force" in message


NOTEBOOK_COMPONENT = '''
import spacy
from spacy.language import Language
LOUD_WORDS = ["amazing", "awful"]

@Language.component("nimbus_test_loudness", assigns=["doc.cats"])
def loudness(doc):
    doc.cats["LOUD"] = float(sum(t.lower_ in LOUD_WORDS for t in doc)) / max(len(doc), 1)
    return doc

loud = spacy.blank("en")
loud.add_pipe("nimbus_test_loudness")
'''


def test_a_notebook_defined_component_round_trips(shell, capsys):
    assert run(shell, NOTEBOOK_COMPONENT).success
    assert run(shell, "dl = %nimbus_deploy loud --name loud --samples 'amazing, simply amazing' 'fine' --workers 1").success
    assert "parity: OK" in capsys.readouterr().out
    texts = ["an amazing and awful day", "nothing here"]
    endpoint = shell.user_ns["dl"].predict(texts, fields=["cats"])
    assert endpoint == [{"cats": doc.cats} for doc in shell.user_ns["loud"].pipe(texts)]
    assert endpoint[0]["cats"]["LOUD"] == pytest.approx(2 / 5)


DIFFERENT_IN_THE_CLOUD = '''
import os
import spacy
from spacy.language import Language

@Language.component("nimbus_test_env_dependent", assigns=["doc.cats"])
def env_dependent(doc):
    doc.cats["DEPLOYED"] = 1.0 if os.environ.get("NIMBUS_DEPLOYMENT") else 0.0
    return doc

sneaky = spacy.blank("en")
sneaky.add_pipe("nimbus_test_env_dependent")
'''


def test_parity_check_catches_a_pipeline_that_differs_at_the_endpoint(shell, capsys):
    assert run(shell, DIFFERENT_IN_THE_CLOUD).success
    assert run(shell, "ds = %nimbus_deploy sneaky --name sneaky --samples 'one' 'two' --workers 1").success
    out = capsys.readouterr().out
    assert "parity: 2 difference(s)" in out
    assert "sample 1 cats: kernel {'DEPLOYED': 0.0} != endpoint {'DEPLOYED': 1.0}" in out


def test_parity_check_catches_a_different_model(shell):
    d = shell.user_ns["d"]
    texts = ["great phone, love it", "arrived broken, avoid"]
    other = textcat_pipeline(epochs=1, seed=3)
    report = check_parity(other, texts, d.predict(texts, fields=["cats"]), ["cats"])
    assert not report.ok and len(report.differences) == 2 and "cats" in report.differences[0]
    same = check_parity(shell.user_ns["nlp"], texts, d.predict(texts, fields=["cats"]), ["cats"])
    assert same.ok


def test_destroy_removes_it_from_the_list(shell, capsys):
    for name in ("magic", "loud", "sneaky"):
        assert run(shell, f"%nimbus_destroy {name}").success
        assert f"destroyed '{name}'" in capsys.readouterr().out
    assert shell.run_line_magic("nimbus_list", "").empty
