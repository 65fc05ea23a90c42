"""Fields are checked before any row is sent, against what the deployment says it can give (its OpenAPI
enum; /health's extensions): one error naming the field and the fix, and not one /predict request."""
from __future__ import annotations

import pytest
import requests
import spacy
from IPython.core.error import UsageError

import nimbus_jupyter as nj
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.runtime.fields import PipelineFields
from pipelines import no_sentences_pipeline


def predicts(d) -> int:
    return sum(requests.get(f"{d.url}/health", timeout=5).json()["requests"].values())


@pytest.fixture(scope="module")
def no_sents(nimbus_home):
    return nj.deploy(no_sentences_pipeline(), "no-sents", workers=1, show=False)


def test_sents_on_a_pipeline_without_sentence_boundaries_is_one_error_and_no_request(no_sents):
    before = predicts(no_sents)
    with pytest.raises(UserInputError) as caught:
        nj.batch([f"a phone {i}" for i in range(1000)], "no-sents", fields=["ents", "sents"], progress=False)
    message = str(caught.value)
    assert "field 'sents' is not available from deployment 'no-sents': no component of its pipeline sets sentence boundaries" in message
    assert "add a component that sets sentence boundaries ('sentencizer', 'senter' or 'parser'" in message
    assert "or leave 'sents' out" in message and "no row was sent" in message
    assert predicts(no_sents) == before  # not one /predict request
    df = nj.batch(["a phone"], "no-sents", fields=["ents"], progress=False)  # what it can give still works
    assert (df.error == "").all() and df.ents[0] == [{"text": "phone", "label": "PRODUCT", "start": 2, "end": 7}]


def test_an_extension_the_pipeline_does_not_register_is_named_with_the_fix(no_sents):
    before = predicts(no_sents)
    with pytest.raises(UserInputError, match=r"field 'ext:sentiment' is not available from deployment 'no-sents': "
                                             r"its pipeline registers no Doc extension 'sentiment'") as caught:
        nj.batch(["x"], "no-sents", fields=["ext:sentiment"], progress=False)
    assert "Doc.set_extension('sentiment', default=None)" in str(caught.value)
    assert predicts(no_sents) == before


def test_the_magic_says_the_same_as_a_usage_error(no_sents, ip):
    ip.user_ns["reviews"] = ["a phone", "a laptop"]
    result = ip.run_cell("%%nimbus_batch no-sents --fields ents,sents\nreviews")
    assert isinstance(result.error_in_exec, UsageError)
    assert "field 'sents' is not available from deployment 'no-sents'" in str(result.error_in_exec)


def test_sents_is_offered_only_when_a_component_declares_sentence_boundaries(core_nlp):
    assert "sents" not in PipelineFields(no_sentences_pipeline()).available_fields()
    for factory in ("sentencizer", "senter"):
        nlp = no_sentences_pipeline()
        nlp.add_pipe(factory)
        assert "sents" in PipelineFields(nlp).available_fields(), factory
    assert "sents" in PipelineFields(core_nlp).available_fields()  # its parser
    assert "sents" not in PipelineFields(spacy.blank("en")).available_fields()
