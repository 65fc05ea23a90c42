"""The magics as IPython users expect them, through a real IPython shell (``ip.run_cell``): quotes, help,
``%config``, readable text for every magic, samples that fit, a pipeline that changes its components."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from nimbus_jupyter.api import samples as sampling
from nimbus_jupyter.core.errors import DeploymentGone, NimbusError
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.faces.magics import NimbusMagics, parse
from pipelines import textcat_pipeline

MAGICS = ("nimbus_deploy", "nimbus_batch", "nimbus_list", "nimbus_status", "nimbus_history", "nimbus_rollback",
          "nimbus_destroy", "nimbus_logs")


def usage_error(ip, cell) -> str:
    result = ip.run_cell(cell)
    assert isinstance(result.error_in_exec, UsageError), f"{cell!r} gave {result.error_in_exec!r}"
    return str(result.error_in_exec)


def ok(ip, cell):
    result = ip.run_cell(cell)
    assert result.success, f"{cell!r} failed: {result.error_in_exec or result.error_before_exec!r}"
    return result.result


@pytest.fixture(scope="module")
def shell(ip, nimbus_home, textcat_nlp):
    sampling.forget()
    ip.user_ns.update(nlp=textcat_nlp, reviews=["great phone, love it", "arrived broken, avoid"])
    yield ip
    ip.run_cell("%config NimbusMagics.default_target = 'local'\n%config NimbusMagics.workers = None")
    sampling.forget()


@pytest.fixture(scope="module")
def quoted(shell):
    ok(shell, """q = %nimbus_deploy nlp --name "quoted" --samples "great phone, love it" 'arrived broken' --workers 1""")
    return shell.user_ns["q"]


# -- one shell-like split: quotes work everywhere ------------------------------------------------------------
def test_quoted_name_and_samples_lose_their_quotes(quoted):
    assert quoted.name == "quoted" and quoted.samples == ["great phone, love it", "arrived broken"]


def test_quoted_fields_and_out_in_a_batch(shell, quoted, capsys):
    ok(shell, '%%nimbus_batch quoted --fields "ents,cats" --out "scored"\n["great phone", "broken laptop"]')
    scored = shell.user_ns["scored"]
    assert list(scored.columns) == ["text", "ents", "cats", "label", "score", "error"] and list(scored.error) == ["", ""]
    assert "2 rows in" in capsys.readouterr().out


def test_quotes_reach_every_option_the_targets_declare():
    NimbusMagics.nimbus_deploy.getdoc()  # builds the parser with the targets' options
    args = parse(NimbusMagics.nimbus_deploy, """nlp --target aws --alarm-email "ops@example.com" --region 'eu-west-1'""")
    assert (args.alarm_email, args.region, args.target) == ("ops@example.com", "eu-west-1", "aws")
    args = parse(NimbusMagics.nimbus_deploy, """nlp --samples "a b" 'c' "it's fine" """)
    assert args.samples == ["a b", "c", "it's fine"]


def test_an_unclosed_quote_is_a_usage_error(shell):
    assert "close the quote" in usage_error(shell, '%nimbus_deploy nlp --name "oops')


# -- ? and --help on every magic -------------------------------------------------------------------------------
@pytest.mark.parametrize("magic", MAGICS)
def test_help_flag_prints_the_usage_and_does_nothing_else(shell, capsys, magic):
    capsys.readouterr()
    ok(shell, f"%{magic} --help")
    out = capsys.readouterr().out
    doc = getattr(NimbusMagics, magic).__doc__ or ""
    assert out.lstrip().startswith("::") and f"%{magic}" in out
    assert doc.split("::")[-1].strip().splitlines()[0] in out  # the first line of the magic's description


@pytest.mark.parametrize("magic", MAGICS)
def test_question_mark_shows_the_docstring(shell, capsys, magic):
    capsys.readouterr()
    ok(shell, f"%{magic}?")
    out = capsys.readouterr().out
    assert f"%{magic}" in out and "not found" not in out


def test_deploy_help_lists_every_target_group_and_batch_help_its_options(shell, capsys):
    ok(shell, "%nimbus_deploy --help")
    out = capsys.readouterr().out
    assert "local target:" in out and "aws target:" in out and "--workers" in out and "--alarm-email" in out
    ok(shell, "%nimbus_batch?")
    out = capsys.readouterr().out
    assert "--fields" in out and "--column" in out and "%%nimbus_batch reviews --out scored" in out


def test_the_line_form_of_batch_says_it_is_a_cell_magic(shell):
    assert "is a cell magic: start the cell with %%nimbus_batch quoted" in usage_error(shell, "%nimbus_batch quoted")


# -- %config NimbusMagics --------------------------------------------------------------------------------------
def test_config_lists_the_settings(shell, capsys):
    ok(shell, "%config NimbusMagics")
    out = capsys.readouterr().out
    for trait in ("default_target", "workers", "region", "profile", "widgets"):
        assert f"NimbusMagics.{trait}" in out


def test_config_default_target_and_workers_apply_to_deploys(shell):
    ok(shell, '%config NimbusMagics.default_target = "mars"')
    assert "unknown target 'mars'" in usage_error(shell, "%nimbus_deploy nlp --name cfg --samples fine")
    ok(shell, '%config NimbusMagics.default_target = "local"')
    ok(shell, "%config NimbusMagics.workers = 1")
    try:
        ok(shell, "c = %nimbus_deploy nlp --name cfg --samples fine")
    finally:
        ok(shell, "%config NimbusMagics.workers = None")
    assert shell.user_ns["c"].workers == 1 and shell.user_ns["c"].target == "local"
    ok(shell, "%nimbus_destroy cfg")


def test_config_region_and_profile_fill_the_aws_options_only(shell):
    magics = shell.magics_manager.registry["NimbusMagics"]
    ok(shell, '%config NimbusMagics.region = "eu-central-1"\n%config NimbusMagics.profile = "team"')
    try:
        assert magics._configured("aws", {}) == {"region": "eu-central-1", "profile": "team"}
        assert magics._configured("aws", {"region": "us-east-1"}) == {"profile": "team"}  # the line wins
        assert magics._configured("local", {}) == {}
    finally:
        ok(shell, "%config NimbusMagics.region = None\n%config NimbusMagics.profile = None")


# -- readable text in a terminal IPython -----------------------------------------------------------------------
def test_status_history_and_rollback_print_their_text(shell, quoted, capsys):
    capsys.readouterr()
    report = ok(shell, "%nimbus_status quoted")
    out = capsys.readouterr().out
    assert report.name == "quoted" and "quoted: ok in" in out and "last hour" in out
    assert "StatusReport(" not in out and "VBox(" not in out
    shell.user_ns["nlp_v2"] = textcat_pipeline(epochs=2)
    ok(shell, "%nimbus_deploy nlp_v2 --name quoted --samples fine")
    capsys.readouterr()
    assert ok(shell, "%nimbus_rollback quoted") is None
    assert "rolled 'quoted' back from v2 to v1 in" in capsys.readouterr().out
    table = ok(shell, "%nimbus_history quoted")
    assert list(table.kind) == ["deploy", "deploy", "rollback"]


# -- samples that fit ------------------------------------------------------------------------------------------
def test_without_samples_a_deploy_takes_texts_from_the_last_batch(shell, quoted, capsys):
    sampling.forget()
    ok(shell, '%%nimbus_batch quoted --out scored\n["the kettle is lovely", "the lid broke on day two", ""]')
    shell.user_ns["fresh"] = textcat_pipeline(epochs=1, seed=5)
    capsys.readouterr()
    ok(shell, "f = %nimbus_deploy fresh --name quoted --workers 1")
    out = capsys.readouterr().out
    assert shell.user_ns["f"].samples == ["the kettle is lovely", "the lid broke on day two"]
    assert "samples (ents, cats) from the input of the last batch to 'quoted'" in out
    assert "generic" not in out


def test_without_any_texts_seen_the_samples_are_said_to_be_generic(shell, capsys):
    sampling.forget()
    capsys.readouterr()
    ok(shell, "g = %nimbus_deploy nlp --name generic --workers 1")
    out = capsys.readouterr().out
    assert "the samples are generic (spaCy's example sentences for 'en'), not your data" in out
    assert "--samples" in out and "--samples-from VAR" in out
    assert shell.user_ns["g"].result.generic_samples
    ok(shell, "%nimbus_destroy generic")


# -- the same pipeline may change its components; another one may not take the name ----------------------------
def test_a_pipeline_that_gains_or_loses_components_is_a_new_version(shell, capsys):
    shell.user_ns["grow"] = textcat_pipeline(epochs=1)
    ok(shell, "%nimbus_deploy grow --name grow --samples fine --workers 1")
    assert Registry().get("grow").origin["variable"] == "grow"
    shell.run_cell("grow.add_pipe('sentencizer')")
    capsys.readouterr()
    ok(shell, "%nimbus_deploy grow --name grow --dry-run")
    plan_text = capsys.readouterr().out
    assert "update  components + sentencizer (textcat, entity_ruler -> textcat, entity_ruler, sentencizer)" in plan_text
    ok(shell, "g2 = %nimbus_deploy grow --name grow --samples fine")
    out = capsys.readouterr().out
    g2 = shell.user_ns["g2"]
    assert g2.version == 2 and g2.components == ["textcat", "entity_ruler", "sentencizer"]
    assert "components + sentencizer (textcat, entity_ruler -> textcat, entity_ruler, sentencizer)" in out
    assert g2.result.components.added == ["sentencizer"]
    shell.run_cell("grow.remove_pipe('sentencizer')")
    ok(shell, "g3 = %nimbus_deploy grow --name grow --samples fine")
    assert shell.user_ns["g3"].version == 3 and shell.user_ns["g3"].result.components.removed == ["sentencizer"]


def test_another_pipeline_claiming_the_name_needs_force(shell):
    shell.run_cell("import spacy\nstranger = spacy.blank('en')\nstranger.add_pipe('sentencizer')")
    message = usage_error(shell, "%nimbus_deploy stranger --name grow --samples fine")
    assert "taken by another pipeline" in message and "deployed from the variable 'grow'" in message
    assert "--force" in message
    ok(shell, "s = %nimbus_deploy stranger --name grow --samples fine --force")
    assert shell.user_ns["s"].components == ["sentencizer"]


# -- a destroyed deployment's handle ---------------------------------------------------------------------------
def test_predict_and_api_key_after_destroy_raise_a_clear_nimbus_error(shell):
    ok(shell, "%nimbus_destroy grow")
    s = shell.user_ns["s"]
    with pytest.raises(DeploymentGone) as info:
        s.predict(["hello"])
    assert isinstance(info.value, NimbusError) and "'grow' was destroyed" in str(info.value)
    with pytest.raises(DeploymentGone):
        s.api_key
    assert s.masked_key == "" and "api_key=''" in repr(s)
