"""The fast unchanged check (core/fingerprint.py) never takes a changed pipeline for unchanged.

An unchanged redeploy reuses the files of the bundle built before in this process when the pipeline's
in-memory fingerprint is the same. Each test here changes one kind of state a user changes in a
notebook (weights in place and by training, config, patterns, tokenizer rules, vectors, lookup
tables, a disabled component, the component's code) and checks that the next bundle is written
again, with the hash a full write gives, different from before.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.language import Language

from nimbus_jupyter.core import bundle as bundle_module
from nimbus_jupyter.core.bundle import build_bundle
from pipelines import textcat_pipeline


@pytest.fixture(autouse=True)
def fresh_snapshots():
    bundle_module._SNAPSHOTS.clear()
    yield
    bundle_module._SNAPSHOTS.clear()


class Builds:
    def __init__(self, root: Path) -> None:
        self.root, self.n = root, 0

    def __call__(self, nlp, namespace=None):
        self.n += 1
        return build_bundle(nlp, self.root / f"b{self.n}", "p", namespace=namespace if namespace is not None else {})

    def full(self, nlp, namespace=None) -> str:
        """The hash of a bundle written from scratch (no snapshot to reuse)."""
        saved = dict(bundle_module._SNAPSHOTS.entries)
        bundle_module._SNAPSHOTS.entries.clear()
        try:
            return self(nlp, namespace).hash
        finally:
            bundle_module._SNAPSHOTS.entries.update(saved)


@pytest.fixture
def builds(tmp_path):
    return Builds(tmp_path)


def files_of(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
            and p.name != "manifest.json"}


def test_an_unchanged_pipeline_reuses_the_bundle_with_the_same_files_and_hash(builds):
    nlp = textcat_pipeline()
    first = builds(nlp)
    list(nlp.pipe(["new words grow the string store zzyzx"]))
    second = builds(nlp)
    assert not first.reused and second.reused
    assert second.hash == first.hash and files_of(second.path) == files_of(first.path)
    assert second.manifest["size_bytes"] == first.manifest["size_bytes"]


def _trained_textcat(nlp):
    textcat = nlp.get_pipe("textcat")
    return next(n for n in textcat.model.walk() if n.has_param("W"))


def change_weights_in_place(nlp):
    node = _trained_textcat(nlp)
    weights = node.get_param("W")
    weights.flat[0] = weights.flat[0] + 0.5  # the array itself: no set_param, no new object


def change_by_training(nlp):
    from spacy.training import Example

    example = Example.from_dict(nlp.make_doc("awful awful"), {"cats": {"POS": 0.0, "NEG": 1.0}})
    nlp.update([example], sgd=nlp.create_optimizer())


def change_patterns(nlp):
    nlp.get_pipe("entity_ruler").add_patterns([{"label": "PRODUCT", "pattern": "kettle"}])


def change_config(nlp):
    nlp.add_pipe("sentencizer")


def change_tokenizer(nlp):
    nlp.tokenizer.add_special_case("gonna", [{"ORTH": "gon"}, {"ORTH": "na"}])


def change_vectors(nlp):
    nlp.vocab.set_vector("phone", numpy.asarray([1.0, 2.0, 3.0], dtype="f"))


def change_a_disabled_component(nlp):
    nlp.disable_pipe("textcat")
    change_weights_in_place(nlp)


def change_meta(nlp):
    nlp.meta["version"] = "9.9.9"


def change_a_lookup_table_in_place(nlp):
    table = nlp.vocab.lookups.get_table("lexeme_norm") if nlp.vocab.lookups.has_table("lexeme_norm") else \
        nlp.vocab.lookups.add_table("lexeme_norm", {})
    table["phone"] = "telephone"


CHANGES = [change_weights_in_place, change_by_training, change_patterns, change_config, change_tokenizer,
           change_vectors, change_a_disabled_component, change_meta, change_a_lookup_table_in_place]


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_a_changed_pipeline_is_never_taken_for_unchanged(builds, change):
    nlp = textcat_pipeline()
    before = builds(nlp)
    assert builds(nlp).reused  # the fast path is taken while nothing changes ...
    change(nlp)
    after = builds(nlp)
    assert not after.reused and after.hash != before.hash  # ... and not once something did
    assert after.hash == builds.full(nlp)  # the hash is the one a full write gives
    assert builds(nlp).reused  # and the changed pipeline is fast again the next time


def test_changed_lemmatizer_lookups_and_attribute_ruler_patterns(builds):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    from spacy.lookups import Lookups

    lookups = Lookups()
    lookups.add_table("lemma_lookup", {"bought": "buy"})
    lemmatizer.initialize(lookups=lookups)
    first = builds(nlp)
    lemmatizer.lookups.get_table("lemma_lookup")["went"] = "go"  # in place
    second = builds(nlp)
    assert not second.reused and second.hash != first.hash
    ruler.add_patterns([{"patterns": [[{"ORTH": "Acme"}]], "attrs": {"TAG": "NNP"}}])
    third = builds(nlp)
    assert not third.reused and len({first.hash, second.hash, third.hash}) == 3


class Stateful:
    """A component class of the user's own with state only its to_disk writes."""

    def __init__(self) -> None:
        self.words = ["a"]

    def __call__(self, doc):  # type: ignore[no-untyped-def]
        return doc

    def to_disk(self, path, exclude=()):  # type: ignore[no-untyped-def]
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "words.json").write_text(json.dumps(self.words))

    def from_disk(self, path, exclude=()):  # type: ignore[no-untyped-def]
        self.words = json.loads((Path(path) / "words.json").read_text())
        return self


@Language.factory("nimbus_test_stateful")
def make_stateful(nlp, name):  # type: ignore[no-untyped-def]
    return Stateful()


def test_a_component_whose_state_only_its_to_disk_knows_is_always_written(builds):
    nlp = spacy.blank("en")
    nlp.add_pipe("nimbus_test_stateful")
    namespace = {"Stateful": Stateful, "make_stateful": make_stateful, "json": json, "Path": Path, "Language": Language}
    first = builds(nlp, namespace)
    again = builds(nlp, namespace)
    assert not again.reused and again.hash == first.hash  # no fingerprint: written, and found unchanged
    nlp.get_pipe("nimbus_test_stateful").words.append("b")
    assert builds(nlp, namespace).hash != first.hash


def test_changed_component_code_is_a_new_bundle(ip, builds):
    cells = [
        "import spacy\nfrom spacy.language import Language\nBONUS = 1.0",
        textwrap.dedent('''\
            @Language.component("nimbus_test_fast_code", assigns=["doc.cats"])
            def scorer(doc):
                doc.cats["S"] = len(doc) + BONUS
                return doc
            '''),
        "nlp_fast = spacy.blank('en')\nnlp_fast.add_pipe('nimbus_test_fast_code')",
    ]
    for cell in cells:
        assert ip.run_cell(cell).success
    nlp = ip.user_ns["nlp_fast"]
    first = builds(nlp, ip.user_ns)
    assert builds(nlp, ip.user_ns).reused
    assert ip.run_cell("BONUS = 2.0").success  # a constant the component reads
    second = builds(nlp, ip.user_ns)
    assert not second.reused and second.hash != first.hash
    assert ip.run_cell(textwrap.dedent('''\
        @Language.component("nimbus_test_fast_code", assigns=["doc.cats"])
        def scorer(doc):
            doc.cats["S"] = len(doc) * BONUS
            return doc
        ''')).success  # the same name, new code ...
    assert builds(nlp, ip.user_ns).reused  # ... which the pipeline does not run until it is added again
    assert ip.run_cell("nlp_fast.remove_pipe('nimbus_test_fast_code'); nlp_fast.add_pipe('nimbus_test_fast_code')").success
    third = builds(nlp, ip.user_ns)
    assert not third.reused and third.hash not in (first.hash, second.hash)
    assert third.hash == builds.full(nlp, ip.user_ns)


def test_a_tampered_snapshot_is_not_reused(builds):
    nlp = textcat_pipeline()
    first = builds(nlp)
    path, _ = next(iter(bundle_module._SNAPSHOTS.entries.values()))
    target = next(p for p in sorted(path.rglob("*")) if p.is_file() and p.name == "cfg")
    target.unlink()
    target.write_text("{}")  # a new file, not the linked one: the bundle built before keeps its bytes
    second = builds(nlp)
    assert not second.reused and second.hash == first.hash


def test_the_fingerprint_differs_between_processes_only_where_the_hash_does_not(tmp_path):
    """In a fresh process (Restart & Run All) there is no snapshot: the bundle is written, same hash."""
    script = ("import sys; sys.path.insert(0, sys.argv[2]); from pipelines import textcat_pipeline; "
              "from nimbus_jupyter.core.bundle import build_bundle; "
              "b = build_bundle(textcat_pipeline(), __import__('pathlib').Path(sys.argv[1]), 'p', namespace={}); "
              "print(b.hash, b.reused)")
    tests = str(Path(__file__).parent)
    runs = [subprocess.run([sys.executable, "-c", script, str(tmp_path / f"r{i}"), tests], capture_output=True,
                           text=True, timeout=120, check=True).stdout.split() for i in range(2)]
    assert runs[0] == runs[1] and runs[0][1] == "False"
