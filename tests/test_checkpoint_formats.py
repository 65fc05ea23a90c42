"""Checkpoints of both formats resume to the same rows: a chunk whose rows all came back as results is
saved as its answers' JSON as they arrived (table ``answers``), and a store written before that (table
``chunks`` only, outcomes encoded one by one, even without its ``version`` column) still resumes. A
chunk with a row error of its own keeps the encoded form. Real local deployment, real HTTP."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.api.checkpoints import chunk_key
from nimbus_jupyter.core.registry import Registry
from pipelines import versioned_pipeline

TEXTS = [f"a phone or a laptop, review {i}" if i % 3 else f"nothing here {i}" for i in range(320)]  # 5 chunks of 64


def answered(d) -> int:
    return sum(requests.get(f"{d.url}/health", timeout=5).json()["requests"].values())


@pytest.fixture(scope="module")
def scorer(nimbus_home):
    d = nj.deploy(versioned_pipeline("GADGET"), "formats", workers=1, show=False)
    yield d
    nj.destroy("formats")


@pytest.fixture()
def store(scorer):
    path = Registry().home / "checkpoints.sqlite"
    for found in path.parent.glob(path.name + "*"):
        found.unlink()
    return path


def rows(frame) -> list:
    return [(t, e, err) for t, e, err in zip(frame.text, frame.ents, frame.error)]


def test_complete_chunks_are_saved_as_the_answers_came_and_resume_to_the_same_rows(scorer, store):
    first = nj.batch(TEXTS, "formats", fields=["ents"], progress=False)
    db = sqlite3.connect(store)
    saved = db.execute("SELECT body, version FROM answers").fetchall()
    assert len(saved) == 5 and db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 0
    for body, version in saved:  # each row: the list of the chunk's answers, as the endpoint wrote them
        answers = json.loads(body)
        assert [len(a["results"]) for a in answers] and sum(len(a["results"]) for a in answers) == 64
        assert all(a["version"] == version == str(scorer.version) for a in answers)
    db.close()
    before = answered(scorer)
    again = nj.batch(TEXTS, "formats", fields=["ents"], progress=False)
    assert again.attrs["nimbus"].chunks_reused == 5 and answered(scorer) == before  # nothing sent again
    assert rows(again) == rows(first) and any(e for e in again.ents) and (again.error == "").all()


def test_a_store_written_before_the_answers_table_still_resumes(scorer, store):
    first = nj.batch(TEXTS, "formats", fields=["ents"], resume=False, progress=False)
    # What the code before wrote: one table, each chunk's outcomes encoded, no version column (the oldest).
    db = sqlite3.connect(store)
    db.execute("CREATE TABLE chunks (key TEXT PRIMARY KEY, deployment TEXT, saved REAL, outcome TEXT)")
    for start in range(0, len(TEXTS), 64):
        texts = TEXTS[start:start + 64]
        outcomes = [{"result": {"ents": list(e)}} for e in first.ents[start:start + 64]]
        db.execute("INSERT INTO chunks VALUES (?, ?, ?, ?)", (chunk_key(scorer.bundle_hash, ["ents"], texts), "formats",
                                                               time.time(), json.dumps(outcomes, separators=(",", ":"))))
    db.commit()
    db.close()
    before = answered(scorer)
    again = nj.batch(TEXTS, "formats", fields=["ents"], progress=False)
    assert again.attrs["nimbus"].chunks_reused == 5 and answered(scorer) == before
    assert rows(again) == rows(first)


def test_a_chunk_with_a_row_error_is_saved_encoded_and_resumes_to_the_same_rows(scorer, store):
    texts = TEXTS[:64] + ["a" * 1_100_000]  # over spaCy's max_length: a 413 of its own
    first = nj.batch(texts, "formats", fields=["ents"], chunk_size=65, progress=False)
    assert first.error.iloc[-1] and (first.error.iloc[:-1] == "").all()
    db = sqlite3.connect(store)
    assert db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0
    db.close()
    again = nj.batch(texts, "formats", fields=["ents"], chunk_size=65, progress=False)
    assert again.attrs["nimbus"].chunks_reused == 1 and rows(again) == rows(first)
