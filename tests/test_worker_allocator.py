"""A local worker keeps the memory it freed for the next request instead of faulting fresh pages in.

With glibc's default malloc thresholds a worker of a tok2vec+tagger+parser+ner pipeline took ~4,000
minor page faults per 64-text request here (arrays handed back to the kernel after every batch and
zeroed again on the next); with targets/local/allocator.py's settings, ~5 per request.
"""
from __future__ import annotations

import json

import pytest
import requests

import nimbus_jupyter as nj
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.targets.local import allocator
from pipelines import core_pipeline

TEXTS = [f"Apple is looking at buying U.K. startup number {i} for ${i} billion in London" for i in range(64)]


def _minor_faults(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])


@pytest.mark.skipif(allocator.platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc only")
def test_a_warm_worker_does_not_fault_pages_in_per_request(nimbus_home):
    d = nj.deploy(core_pipeline(), "allocs", workers=1, show=False)
    worker = int(json.loads((Registry().deployment_dir("allocs") / "status.json").read_text())["workers"][0])

    def post() -> None:
        answer = requests.post(f"{d.url}/predict", json={"texts": TEXTS, "fields": ["ents", "tokens"]},
                               headers={"x-api-key": d.api_key}, timeout=30)
        assert answer.status_code == 200 and len(answer.json()["results"]) == len(TEXTS)

    for _ in range(3):  # warm-up: the heap reaches its high-water mark
        post()
    before = _minor_faults(worker)
    for _ in range(10):
        post()
    assert _minor_faults(worker) - before < 5_000  # glibc's defaults: ~40,000 here


def test_a_user_who_configured_malloc_keeps_their_settings(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert allocator.user_configured() and not allocator.keep_freed_memory()
    monkeypatch.delenv("GLIBC_TUNABLES")
    assert not allocator.user_configured()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert allocator.user_configured()
