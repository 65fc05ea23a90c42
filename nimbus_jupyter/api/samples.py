"""The sample texts of a deploy's smoke test and parity check: the user's own whenever nimbus has seen them.

A review classifier shown spaCy's news headlines scores ~0.50 on each and looks broken; shown three
reviews it shows what it does. So, in order:

1. the samples given (``--samples``, ``--samples-from VAR``, ``samples=``);
2. texts this process saw go to the same deployment name: the last deploy's samples, or the input of the
   last batch scored through it;
3. texts this process saw last for any deployment (the last batch's input, the last deploy's samples);
4. else spaCy's example sentences for the pipeline's language, **said plainly** to be generic, with how
   to give real ones.

What is remembered stays in this process (a kernel forgets on restart) and is never written to disk:
the texts are the user's data.
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

PICK = 3  # texts a deploy samples: enough to see the model's range, quick to run twice
LONGEST = 2_000  # characters; longer texts are skipped for samples (a smoke test, not a load test)


@dataclass(frozen=True)
class Samples:
    texts: List[str]
    source: str  # for people: "given", "the variable 'reviews'", "the last batch's input (df['review'])", ...
    generic: bool = False  # not the user's data: spaCy's example sentences
    todo: str = field(default="", compare=False)  # how to give real ones, when generic

    def note(self) -> str:
        """For the deploy's view: where the samples came from ("" when the user gave them just now)."""
        if self.generic:
            return f"the samples are generic ({self.source}), not your data, so their scores say little; {self.todo}"
        return "" if self.source == GIVEN else f"from {self.source}"


GIVEN = "the samples given"
GENERIC_TODO = ('give your own with --samples "a text like yours" "another" or --samples-from VAR '
                '(samples=[...] in Python), or score a batch first: the next deploy samples its input')

_lock = threading.Lock()
_by_name: Dict[str, Samples] = {}
_last: List[Samples] = []


def pick(values: Iterable[Any], k: int = PICK) -> List[str]:
    """Up to ``k`` distinct, non-empty texts of reasonable length from ``values``, in their order."""
    chosen: List[str] = []
    for value in values:
        if isinstance(value, str) and value.strip() and len(value) <= LONGEST and value not in chosen:
            chosen.append(value)
            if len(chosen) == k:
                break
    return chosen


def remember(values: Iterable[Any], source: str, name: Optional[str] = None) -> None:
    """Keep a few of ``values`` as samples for later deploys (of ``name`` first, then of any name)."""
    texts = pick(values)
    if not texts:
        return
    samples = Samples(texts, source)
    with _lock:
        if name:
            _by_name[name] = samples
        _last[:] = [samples]


def recall(name: str) -> Optional[Samples]:
    with _lock:
        return _by_name.get(name) or (_last[0] if _last else None)


def forget() -> None:
    """Drop every remembered text (tests; a user who wants generic samples again)."""
    with _lock:
        _by_name.clear()
        _last.clear()


def generic(nlp: Any) -> Samples:
    """spaCy's own example sentences for the pipeline's language, marked as generic."""
    lang = getattr(nlp, "lang", "") or ""
    try:
        sentences = list(importlib.import_module(f"spacy.lang.{lang}.examples").sentences[:PICK])
        source = f"spaCy's example sentences for {lang!r}"
    except (ImportError, AttributeError):
        sentences, source = ["This is a sample text."], "a placeholder sentence"
    return Samples(sentences, source, generic=True, todo=GENERIC_TODO)


def choose(nlp: Any, given: Any, name: str) -> Samples:
    """The samples of a deploy of ``nlp`` as ``name``: ``given`` (a list or ``Samples``), else remembered, else generic."""
    if isinstance(given, Samples):
        return given
    if given is not None:
        return Samples(list(given), GIVEN)
    return recall(name) or generic(nlp)
