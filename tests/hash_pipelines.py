"""Run as a script (``python hash_pipelines.py OUT_DIR``): builds pipelines with every built-in spaCy
factory (and a component defined in ``__main__``, as a notebook cell would) with fixed seeds, writes
each as a bundle, and prints one JSON line: each bundle's content hash and the raw bytes' digest of
the files whose order depends on the process (so the test can see that what is written still varies
while the hash does not). The test runs it under several ``PYTHONHASHSEED`` values."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy
import spacy
from spacy.language import Language
from spacy.lookups import Lookups
from spacy.training import Example

from nimbus_jupyter.core.bundle import build_bundle

DATA = [
    ("Anna bought a Zento phone in Berlin .", ["NNP", "VBD", "DT", "NNP", "NN", "IN", "NNP", "."], [1, 1, 4, 4, 1, 1, 5, 1],
     ["nsubj", "ROOT", "det", "compound", "dobj", "prep", "pobj", "punct"], [(0, 4, "PERSON"), (14, 19, "ORG"), (29, 35, "GPE")],
     ["Anna", "buy", "a", "Zento", "phone", "in", "Berlin", "."]),
    ("The kettle broke on Monday .", ["DT", "NN", "VBD", "IN", "NNP", "."], [1, 2, 2, 2, 3, 2],
     ["det", "nsubj", "ROOT", "prep", "pobj", "punct"], [(20, 26, "DATE")], ["the", "kettle", "break", "on", "Monday", "."]),
]
PATTERNS = [{"label": "ORG", "pattern": "Acme Corp", "id": "acme"},
            {"label": "GPE", "pattern": [{"LOWER": "new"}, {"LOWER": "york"}]},
            {"label": "PRODUCT", "pattern": [{"LOWER": {"IN": ["phone", "kettle", "laptop"]}}]}]
TRAINED = ["tok2vec", "tagger", "morphologizer", "senter", "parser", "ner", "trainable_lemmatizer", "textcat_multilabel",
           "spancat", "entity_linker", "beam_ner", "beam_parser", "textcat"]
# Not buildable in spaCy 3.8, so not here: nn_labeller (its default model, spacy.MultiTask.v1, is not
# registered) and ja.morphologizer (needs SudachiPy and Japanese).
UNBUILDABLE = {"nn_labeller", "ja.morphologizer"}


def examples(nlp: Language) -> list:
    out = []
    for text, tags, heads, deps, ents, lemmas in DATA:
        spans = [(s, e, label) for s, e, label in ents]
        out.append(Example.from_dict(nlp.make_doc(text), {
            "tags": tags, "heads": heads, "deps": deps, "entities": ents, "lemmas": lemmas,
            "morphs": ["Number=Sing" if t.startswith("N") else "" for t in tags],
            "pos": ["PROPN" if t == "NNP" else "X" for t in tags],
            "cats": {"POS": 1.0, "NEG": 0.0, "MIXED": 0.0},
            "spans": {"sc": spans, "single": spans, "found": spans},
            "links": {(s, e): {"Q1": 1.0} for s, e, label in ents if label == "PERSON"}}))
    return out


def _kb(vocab):  # type: ignore[no-untyped-def]
    from spacy.kb import InMemoryLookupKB

    kb = InMemoryLookupKB(vocab, entity_vector_length=3)
    for qid, freq in [("Q1", 10), ("Q2", 5), ("Q3", 7)]:
        kb.add_entity(qid, freq, [1.0, 0.0, 0.5])
    kb.add_alias("Anna", ["Q1", "Q2"], [0.6, 0.3])
    kb.add_alias("Berlin", ["Q3"], [0.9])
    return kb


def trained() -> Language:
    """Every trainable built-in factory, initialised on two examples (seeded: the same weights each run)."""
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.vocab.set_vector("phone", numpy.asarray([1.0, 2.0, 3.0], dtype="f"))
    for name in TRAINED:
        nlp.add_pipe(name)
    nlp.add_pipe("span_finder", config={"spans_key": "found"})
    nlp.add_pipe("spancat_singlelabel", config={"spans_key": "single"})
    nlp.get_pipe("entity_linker").set_kb(_kb)
    nlp.initialize(lambda: examples(nlp))
    return nlp


def rules() -> Language:
    """Every rule-based built-in factory, with patterns, tables and punctuation of its own."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")  # the default punct_chars: a set of ~100 characters
    nlp.add_pipe("sentencizer", name="custom_sentencizer", config={"punct_chars": ["!", "?", ".", ";", "。", "…"]})
    ruler = nlp.add_pipe("entity_ruler")
    future = nlp.add_pipe("future_entity_ruler", name="future_ruler")
    span_ruler = nlp.add_pipe("span_ruler")
    attribute_ruler = nlp.add_pipe("attribute_ruler")
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})  # en.lemmatizer
    nlp.add_pipe("doc_cleaner", config={"attrs": {"tensor": None}})
    for name in ("merge_noun_chunks", "merge_entities", "merge_subtokens", "token_splitter"):
        nlp.add_pipe(name)
    with nlp.select_pipes(disable=["lemmatizer"]):
        nlp.initialize()
    lemmatizer.initialize(lookups=_lookups())
    for component in (ruler, future, span_ruler):
        component.add_patterns(PATTERNS)
    attribute_ruler.add_patterns([
        {"patterns": [[{"ORTH": "Acme"}]], "attrs": {"TAG": "NNP", "POS": "PROPN"}},
        {"patterns": [[{"LOWER": "bought"}]], "attrs": {"LEMMA": "buy", "MORPH": "Tense=Past|VerbForm=Fin"}}])
    return nlp


def generic_lemmatizer() -> Language:
    """The language-independent ``lemmatizer`` factory (English has its own, ``en.lemmatizer``)."""
    nlp = spacy.blank("xx")
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    lemmatizer.initialize(lookups=_lookups())
    return nlp


def _lookups() -> Lookups:
    lookups = Lookups()
    lookups.add_table("lemma_lookup", {"bought": "buy", "broke": "break", "went": "go", "phones": "phone"})
    return lookups


STOPWORDS = {"the", "a", "an", "of", "and", "to", "in", "is", "it", "was"}  # a set, as a notebook would have it


@Language.component("nimbus_test_hash_content_words", assigns=["doc.cats"])
def content_words(doc):  # type: ignore[no-untyped-def]
    doc.cats["CONTENT"] = float(sum(1 for t in doc if t.lower_ not in STOPWORDS))
    return doc


def notebook() -> Language:
    """A component from ``__main__`` (like a notebook cell) that uses a set constant."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("nimbus_test_hash_content_words")
    return nlp


BUILDERS = {"trained": trained, "rules": rules, "generic_lemmatizer": generic_lemmatizer, "notebook": notebook}
VARYING = ["model/sentencizer.json", "model/custom_sentencizer.json", "code/nimbus_notebook_code.py"]


def main(out: Path) -> None:
    spacy.blank("en")  # spaCy registers its factories on first use
    builtin = [name for name in Language.factories if name != "nimbus_test_hash_content_words"]
    report = {"hashes": {}, "raw": {}, "factories": {}, "builtin": sorted(builtin)}
    for kind, build in BUILDERS.items():
        nlp = build()
        bundle = build_bundle(nlp, out / kind, kind, namespace=globals())
        report["hashes"][kind] = bundle.hash
        report["factories"][kind] = sorted({nlp.get_pipe_meta(n).factory for n in nlp.pipe_names})
        for rel in VARYING:
            path = bundle.path / rel
            if path.exists():
                report["raw"][f"{kind}/{rel}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    print(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
