"""Fields-aware execution: only the components a field needs run, with the full pipeline's results."""
from __future__ import annotations

import pytest
import spacy

from nimbus_jupyter.runtime.fields import FIELDS, PipelineFields, doc_to_result
from pipelines import core_pipeline

TEXTS = ["Apple is buying a startup in London .", "Sara flew to Paris on Monday .",
         "The committee met in Berlin and Rome last week .", "Nobody expected the results ."]


@pytest.fixture(scope="module", params=[False, True], ids=["ner-listens", "ner-own-tok2vec"])
def nlp(request):
    return core_pipeline(ner_own_tok2vec=request.param)


def test_ents_need_only_ner_and_what_it_listens_to(nlp):
    fields = PipelineFields(nlp)
    needed = fields.needed_components(["ents"])
    listens = "ner" in nlp.get_pipe("tok2vec").listening_components
    assert needed == (["tok2vec", "ner"] if listens else ["ner"])


def test_sentences_need_the_parser_and_its_tok2vec(core_nlp):
    assert PipelineFields(core_nlp).needed_components(["sents"]) == ["tok2vec", "parser"]


def test_tokens_need_everything(core_nlp):
    assert PipelineFields(core_nlp).needed_components(["tokens"]) == core_nlp.pipe_names


@pytest.mark.parametrize("fields", [["ents"], ["sents"], ["ents", "sents"], ["cats"], ["tokens"], ["spans"]])
def test_selected_components_give_the_full_pipelines_results(nlp, fields):
    full = [doc_to_result(doc, fields) for doc in nlp.pipe(TEXTS)]
    disabled = PipelineFields(nlp).disabled_for(fields)
    partial = [doc_to_result(doc, fields) for doc in nlp.pipe(TEXTS, disable=disabled)]
    assert partial == full


def test_components_without_metadata_always_run():
    nlp = spacy.blank("en")

    @spacy.Language.component("nimbus_test_unknown_effect")
    def unknown_effect(doc):
        return doc

    nlp.add_pipe("nimbus_test_unknown_effect")
    nlp.add_pipe("sentencizer")
    fields = PipelineFields(nlp)
    assert fields.needed_components(["cats"]) == ["nimbus_test_unknown_effect"]
    assert fields.needed_components(["sents"]) == ["nimbus_test_unknown_effect", "sentencizer"]


def test_default_fields_follow_what_the_pipeline_declares(core_nlp, textcat_nlp):
    assert PipelineFields(core_nlp).default_fields() == ["ents"]
    assert PipelineFields(textcat_nlp).default_fields() == ["ents", "cats"]
    assert PipelineFields(spacy.blank("en")).default_fields() == ["tokens"]
    assert set(FIELDS) == {"ents", "cats", "tokens", "sents", "spans"}
