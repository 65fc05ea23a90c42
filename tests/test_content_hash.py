"""The bundle's content hash means content: the same pipeline hashes the same in every process.

spaCy writes some state in an order that depends on the process's string hashing (the sentencizer's
``punct_chars`` set; a notebook's set constant repr'd into the captured code), so "Restart & Run All"
used to make a new version of an unchanged pipeline. Here pipelines with every built-in factory (and a
notebook-style component with a set constant) are built in subprocesses with different
``PYTHONHASHSEED``s: the raw files still differ, the hash does not, and what spaCy loads is unchanged.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from nimbus_jupyter.core.bundle import build_bundle

BUILDER = Path(__file__).with_name("hash_pipelines.py")
SEEDS = ["0", "1", "2", "3"]


def build_in_subprocess(seed: str, out: Path) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, str(BUILDER), str(out)], capture_output=True, text=True, env=env,
                          cwd=BUILDER.parent, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return {seed: build_in_subprocess(seed, tmp_path_factory.mktemp(f"seed{seed}")) for seed in SEEDS}


def test_every_builtin_factory_is_covered(reports):
    import hash_pipelines

    used = set().union(*reports["0"]["factories"].values())
    # the factories a fresh process with only spaCy (and the builder's own component) has
    builtin = {name.split(".", 1)[1] if name.startswith("en.") else name for name in reports["0"]["builtin"]}
    builtin = {name for name in builtin if "." not in name} - hash_pipelines.UNBUILDABLE
    assert len(builtin) >= 25
    assert builtin <= used, f"built-in factories not in any test pipeline: {sorted(builtin - used)}"


def test_the_same_pipeline_hashes_the_same_under_every_hash_seed(reports):
    hashes = {kind: {r["hashes"][kind] for r in reports.values()} for kind in reports["0"]["hashes"]}
    assert {kind: len(found) for kind, found in hashes.items()} == {kind: 1 for kind in hashes}, hashes


def test_spacys_files_are_left_as_written_and_the_captured_code_is_written_canonically(reports):
    # spaCy's own files keep their per-process order (the hash reads a canonical form of them) ...
    for rel in ("rules/model/sentencizer.json", "rules/model/custom_sentencizer.json", "notebook/model/sentencizer.json"):
        assert len({r["raw"][rel] for r in reports.values()}) > 1, rel
    # ... while the code nimbus writes from a notebook's set constant is the same in every process
    assert len({r["raw"]["notebook/code/nimbus_notebook_code.py"] for r in reports.values()}) == 1


def test_the_canonical_forms_load_as_written(tmp_path):
    """The bundle's files are spaCy's own: the sentencizer loads back with the same characters."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    bundle = build_bundle(nlp, tmp_path / "b", "s", namespace={})
    written = json.loads((bundle.path / "model" / "sentencizer.json").read_text("utf-8"))
    assert sorted(written["punct_chars"]) == sorted(nlp.get_pipe("sentencizer").punct_chars)
    loaded = spacy.load(bundle.path / "model")
    assert loaded.get_pipe("sentencizer").punct_chars == nlp.get_pipe("sentencizer").punct_chars


def test_a_real_change_to_unordered_state_still_changes_the_hash(tmp_path):
    first, second = spacy.blank("en"), spacy.blank("en")
    first.add_pipe("sentencizer", config={"punct_chars": ["!", "?", "."]})
    second.add_pipe("sentencizer", config={"punct_chars": ["!", "?", ".", ";"]})
    assert build_bundle(first, tmp_path / "a", "s", namespace={}).hash != \
        build_bundle(second, tmp_path / "b", "s", namespace={}).hash
    # a set given in the config (list(some_set) in a notebook) is in no meaningful order either
    reordered = spacy.blank("en")
    reordered.add_pipe("sentencizer", config={"punct_chars": [".", "?", "!"]})
    assert build_bundle(reordered, tmp_path / "c", "s", namespace={}).hash == \
        build_bundle(first, tmp_path / "d", "s", namespace={}).hash
