"""Real components for the batch-edges tests: one that sets ``Doc._`` extensions (some of them values
that JSON cannot carry), shipped to the workers as a local module like ``pipelines.py``."""
from __future__ import annotations

from typing import Any

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc

POSITIVE = {"great", "love", "excellent", "fast"}
NEGATIVE = {"broken", "avoid", "slow", "terrible"}


@Language.factory("nimbus_test_sentiment",
                  assigns=["doc._.sentiment_score", "doc._.sentiment_words", "doc._.raw_vector"])
def make_sentiment(nlp: Language, name: str) -> "Sentiment":
    return Sentiment()


class Sentiment:
    """Sets a score (a float), the words it counted (a list) and, for texts with VECTOR in them, a
    numpy array (not JSON) in ``raw_vector``; SET gives a Python set there. Registers its extensions
    in ``__init__``, as spaCy's docs advise, so they exist wherever the pipeline loads."""

    def __init__(self) -> None:
        for attr in ("sentiment_score", "sentiment_words", "raw_vector"):
            Doc.set_extension(attr, default=None, force=True)
        Doc.set_extension("n_tokens", getter=len, force=True)  # a property: read through its getter
        Doc.set_extension("shout", method=lambda doc, suffix="!": doc.text.upper() + suffix, force=True)  # a method: no field

    def __call__(self, doc: Doc) -> Doc:
        words = [t.lower_ for t in doc if t.lower_ in POSITIVE | NEGATIVE]
        doc._.sentiment_words = words
        doc._.sentiment_score = float(sum(1 if w in POSITIVE else -1 for w in words))
        if "VECTOR" in doc.text:
            doc._.raw_vector = numpy.ones(3, dtype="float32")
        elif "SET" in doc.text:
            doc._.raw_vector = {"a", "b"}
        else:
            doc._.raw_vector = [1.0, 2.0]
        return doc


@Language.factory("nimbus_test_other_cats", assigns=["doc.cats"])
def make_other(nlp: Language, name: str) -> Any:
    """An unrelated component: an ``ext:`` field that a component declares does not need it."""
    def other(doc: Doc) -> Doc:
        doc.cats["OTHER"] = 1.0
        return doc
    return other


def sentiment_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_other_cats")
    nlp.add_pipe("nimbus_test_sentiment")
    return nlp
