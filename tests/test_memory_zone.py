"""The handler's memory zones: a long-lived worker's vocab stays bounded over any number of new words,
while the words of recent requests are not rebuilt on every request (runtime/handler.py ``_Zone``)."""
from __future__ import annotations

import spacy

from nimbus_jupyter.runtime import handler


def _texts(start: int, n: int) -> list:
    return [f"word{i}a word{i}b word{i}c" for i in range(start, start + n)]


def test_the_vocab_stays_bounded_over_many_requests_of_new_words(monkeypatch):
    monkeypatch.setattr(handler, "ZONE_TEXTS", 200)
    nlp = spacy.blank("en")
    base = len(nlp.vocab.strings)
    zone, sizes = handler._Zone(), []
    for request in range(40):  # 40 x 64 texts, every word new: 7,680 strings without zones
        texts = _texts(request * 64, 64)
        zone.enter(nlp, len(texts))
        assert [[t.text for t in doc] for doc in nlp.pipe(texts)] == [t.split() for t in texts]
        sizes.append(len(nlp.vocab.strings) - base)
    zone.close()
    assert max(sizes[20:]) <= max(sizes[:10])  # flat: one zone's texts (plus a request) at most, ~1,100 strings
    assert max(sizes) < sizes[0] * 4
    assert len(nlp.vocab.strings) - base < 10


def test_a_zone_spans_requests_until_it_has_seen_zone_texts(monkeypatch):
    monkeypatch.setattr(handler, "ZONE_TEXTS", 200)
    nlp = spacy.blank("en")
    zone = handler._Zone()
    zone.enter(nlp, 64)
    list(nlp.pipe(["kettle"]))
    zone.enter(nlp, 64)  # same zone: what the first request added is still there
    assert "kettle" in nlp.vocab.strings
    zone.enter(nlp, 64)
    zone.enter(nlp, 64)  # 192 seen, below 200: still the same zone
    assert "kettle" in nlp.vocab.strings
    zone.enter(nlp, 64)  # 256 >= 200: a new zone, the old one's strings are gone
    assert "kettle" not in nlp.vocab.strings
    zone.close()
