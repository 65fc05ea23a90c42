"""Small, real spaCy pipelines the tests build and train themselves (no downloads here)."""
from __future__ import annotations

import random
import time
from typing import List

import spacy
from spacy.language import Language
from spacy.training import Example

POSITIVE = ["great product, works perfectly", "love it, would buy again", "excellent value and fast delivery",
            "very happy with this phone", "solid build and great battery"]
NEGATIVE = ["arrived broken, avoid", "terrible, stopped working", "waste of money and slow",
            "very disappointed with the laptop", "cheap and flimsy, returning it"]


def textcat_pipeline(epochs: int = 5, seed: int = 0) -> Language:
    """blank English + a bag-of-words textcat (POS/NEG) + an entity_ruler: cats and ents, fast to train."""
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat", config={"model": {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True,
                                                        "ngram_size": 1, "no_output_layer": False}})
    ruler = nlp.add_pipe("entity_ruler")
    for label in ("POS", "NEG"):
        textcat.add_label(label)
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": {"POS": 1.0, "NEG": 0.0}}) for t in POSITIVE]
    examples += [Example.from_dict(nlp.make_doc(t), {"cats": {"POS": 0.0, "NEG": 1.0}}) for t in NEGATIVE]
    optimizer = nlp.initialize(lambda: examples)
    ruler.add_patterns([{"label": "PRODUCT", "pattern": [{"LOWER": w}]} for w in ("phone", "laptop")])  # initialize clears them
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(examples)
        nlp.update(examples, sgd=optimizer)
    return nlp


_TAGGED = [
    ("Apple is buying a startup in London .", ["NNP", "VBZ", "VBG", "DT", "NN", "IN", "NNP", "."],
     [2, 2, 2, 4, 2, 4, 5, 2], ["nsubj", "aux", "ROOT", "det", "dobj", "prep", "pobj", "punct"], [(0, 5, "ORG"), (29, 35, "GPE")]),
    ("Sara flew to Paris on Monday .", ["NNP", "VBD", "IN", "NNP", "IN", "NNP", "."],
     [1, 1, 1, 2, 1, 4, 1], ["nsubj", "ROOT", "prep", "pobj", "prep", "pobj", "punct"], [(0, 4, "PERSON"), (13, 18, "GPE"), (22, 28, "DATE")]),
]


def _examples(nlp: Language) -> List[Example]:
    out = []
    for text, tags, heads, deps, ents in _TAGGED:
        doc = nlp.make_doc(text)
        out.append(Example.from_dict(doc, {"tags": tags, "heads": heads, "deps": deps, "entities": ents}))
    return out


def core_pipeline(ner_own_tok2vec: bool = False) -> Language:
    """en_core_web_sm's architecture: tok2vec + tagger + parser (listening) + ner, initialised on a few examples.

    With ``ner_own_tok2vec`` the ner gets its own embedding layer (as in en_core_web_sm); otherwise it
    listens to the shared tok2vec too.
    """
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["tagger", "parser", "ner"], optimize="efficiency")
    config["components"]["parser"]["min_action_freq"] = 1  # keep every label of the tiny training set
    if ner_own_tok2vec:
        config["components"]["ner"]["model"]["tok2vec"] = {
            "@architectures": "spacy.Tok2Vec.v2",
            "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 64, "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                      "rows": [2000, 1000, 1000, 1000], "include_static_vectors": False},
            "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 64, "depth": 2, "window_size": 1, "maxout_pieces": 3},
        }
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    optimizer = nlp.initialize(lambda: _examples(nlp))
    for _ in range(3):
        nlp.update(_examples(nlp), sgd=optimizer)  # fresh Docs: predicted ones keep the parser's sentence starts
    return nlp


@Language.factory("nimbus_test_sleep", default_config={"seconds": 0.2}, assigns=["doc.cats"])
def make_sleeper(nlp: Language, name: str, seconds: float) -> "Sleeper":
    return Sleeper(seconds)


class Sleeper:
    """Holds every request for a while, so tests can fill the workers and see 429s and version switches."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, doc):  # type: ignore[no-untyped-def]
        time.sleep(self.seconds)
        doc.cats["SLEPT"] = 1.0
        return doc


def sleepy_pipeline(seconds: float = 0.2) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_sleep", config={"seconds": seconds})
    return nlp


@Language.factory("nimbus_test_fails_in_worker", assigns=["doc.cats"])
def make_failing(nlp: Language, name: str) -> "Sleeper":
    """Loads in the kernel, fails in a deployed worker: for tests of failed deploys."""
    import os

    if os.environ.get("NIMBUS_DEPLOYMENT"):
        raise RuntimeError("this component refuses to load in a worker")
    return Sleeper(0.0)


def failing_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_fails_in_worker")
    return nlp


@Language.factory("nimbus_test_fails_on", default_config={"trigger": "EXPLODE"}, assigns=["doc.cats"])
def make_fails_on(nlp: Language, name: str, trigger: str) -> "FailsOn":
    return FailsOn(trigger)


class FailsOn:
    """Raises, quoting the whole text as many real components do, on texts that contain ``trigger``."""

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger

    def __call__(self, doc):  # type: ignore[no-untyped-def]
        if self.trigger in doc.text:
            raise ValueError(f"cannot score {doc.text!r}: it contains {self.trigger}")
        doc.cats["OK"] = 1.0
        return doc


def fails_on_pipeline(trigger: str = "EXPLODE") -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_fails_on", config={"trigger": trigger})
    return nlp


@Language.factory("nimbus_test_gate", assigns=["doc.cats"])
def make_gate(nlp: Language, name: str) -> "Gate":
    return Gate()


class Gate:
    """Holds a request whose text is ``WAIT:<path>`` until that file exists (at most 60 s), and fails on
    one containing ``EXPLODE``: so a test fills the workers exactly when it wants (a 429 without timing)
    and provokes a pipeline failure (a 500), in one deployment."""

    def __call__(self, doc):  # type: ignore[no-untyped-def]
        import os

        if doc.text.startswith("WAIT:"):
            deadline = time.monotonic() + 60
            while not os.path.exists(doc.text[5:]) and time.monotonic() < deadline:
                time.sleep(0.01)
        if "EXPLODE" in doc.text:
            raise ValueError(f"cannot score {doc.text!r}")
        doc.cats["OK"] = 1.0
        return doc


def gate_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_gate")
    return nlp


def versioned_pipeline(label: str, seconds: float = 0.0) -> Language:
    """A sleeper and an entity_ruler that tags "phone" and "laptop" as ``label``: two versions built with
    different labels have the same components, and every answer says which one scored it."""
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_sleep", config={"seconds": seconds})
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": label, "pattern": [{"LOWER": w}]} for w in ("phone", "laptop")])
    return nlp


@Language.factory("nimbus_test_slow_on", default_config={"trigger": "SLOW", "seconds": 1.0, "seen": ""},
                  assigns=["doc.cats"])
def make_slow_on(nlp: Language, name: str, trigger: str, seconds: float, seen: str) -> "SlowOn":
    return SlowOn(trigger, seconds, seen)


class SlowOn:
    """Sleeps ``seconds`` on texts containing ``trigger``; appends every text it sees to the file ``seen``
    (one write per line), so a test counts on the server side how often each text arrived."""

    def __init__(self, trigger: str, seconds: float, seen: str) -> None:
        self.trigger, self.seconds, self.seen = trigger, seconds, seen

    def __call__(self, doc):  # type: ignore[no-untyped-def]
        import os

        if self.seen:
            fd = os.open(self.seen, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (doc.text + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        if self.trigger in doc.text:
            time.sleep(self.seconds)
        doc.cats["OK"] = 1.0
        return doc


def slow_on_pipeline(seen: str, seconds: float = 1.0, trigger: str = "SLOW") -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_slow_on", config={"trigger": trigger, "seconds": seconds, "seen": seen})
    return nlp


@Language.component("nimbus_test_declares_nothing")
def declares_nothing(doc):  # type: ignore[no-untyped-def]
    """A component of the user's that declares no ``assigns``: it may set anything, or nothing."""
    return doc


def no_sentences_pipeline() -> Language:
    """An entity_ruler and a component that declares nothing: no sentence boundaries, declared or set."""
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_declares_nothing")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PRODUCT", "pattern": [{"LOWER": "phone"}]}])
    return nlp


@Language.factory("nimbus_test_dies_on", default_config={"trigger": "DIE"}, assigns=["doc.cats"])
def make_dier(nlp: Language, name: str, trigger: str) -> "DiesOn":
    return DiesOn(trigger)


class DiesOn:
    """Ends its worker process on texts containing ``trigger``: an endpoint failure, not the request's fault."""

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger

    def __call__(self, doc):  # type: ignore[no-untyped-def]
        import os

        if self.trigger in doc.text:
            os._exit(3)
        doc.cats["OK"] = 1.0
        return doc


def dies_on_pipeline(trigger: str = "DIE") -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_dies_on", config={"trigger": trigger})
    return nlp


@Language.factory("nimbus_test_random", assigns=["doc.cats"])
def make_random(nlp: Language, name: str) -> "RandomDraw":
    return RandomDraw()


class RandomDraw:
    """Writes the process id, how many docs this process has seen, and a draw from numpy's global
    random state: two workers forked with the same state would draw the same numbers at the same count."""

    seen = 0

    def __call__(self, doc):  # type: ignore[no-untyped-def]
        import os

        import numpy

        RandomDraw.seen += 1
        doc.cats.update({"PID": float(os.getpid()), "N": float(RandomDraw.seen), "DRAW": float(numpy.random.random())})
        return doc


def random_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_random")
    return nlp


@Language.factory("nimbus_test_threaded", assigns=["doc.cats"])
def make_threaded(nlp: Language, name: str) -> "Sleeper":
    """Starts a thread while it loads in a deployed process (as some client libraries do): forking
    from that process would not be safe, so workers must start as new processes."""
    import os
    import threading

    if os.environ.get("NIMBUS_DEPLOYMENT"):
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    return Sleeper(0.0)


def threaded_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_threaded")
    return nlp
