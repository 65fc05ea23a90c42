"""The batch's result columns (``api.result_columns``): the DataFrame they make costs about its texts' size
once more, not several times (a million rows must fit a notebook's memory), with pandas' own dtypes; a chunk
made compact in its worker gives the same frame as one placed from its outcomes.

Memory is measured in a child process (its peak RSS, Linux's VmHWM, reset just before), never a time.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from nimbus_jupyter.api.result_columns import ResultColumns

ENT = {"text": "Acme", "label": "ORG", "start": 0, "end": 4}

FRAME_PEAK = r"""
import gc, json, sys
import pandas as pd
from nimbus_jupyter.api.result_columns import ResultColumns
n = 200_000
texts = [f"review {i}: the Zento kettle arrived quickly, well packed, and was easy to set up in Berlin" for i in range(n)]
ResultColumns(1, ["ents"], arrow=True).frame(pd, pd.RangeIndex(1), ["warm"])  # pandas' and Arrow's lazy imports
columns = ResultColumns(n, ["ents"], arrow=True)
for start in range(0, n, 64):
    rows = list(range(start, min(n, start + 64)))
    columns.place_compact(rows, columns.compact(rows, [{"result": {"ents": []}} for _ in rows]), "1")
del rows
gc.collect()
def status(key):  # this process's own figures (ru_maxrss would carry the parent's across fork and exec)
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from the current RSS
before = status("VmRSS")
frame = columns.frame(pd, pd.RangeIndex(n), texts)
grew = status("VmHWM") - before
same = frame.text.dtype == pd.Series(["x"]).dtype and frame.error.dtype == pd.Series(["x"]).dtype
print(json.dumps({"grew": grew, "text_bytes": sum(len(t) for t in texts), "same_dtypes": bool(same),
                  "values": frame.text.tolist() == texts and set(frame.error) == {""}}))
"""


def test_the_frame_of_200000_texts_grows_the_process_by_about_their_size_once():
    """pandas turning the list into its Arrow-backed str column grew RSS by 2.5x the text (1,000,000 texts of
    bench/lambda_scale.py: +278 MiB for 111 MiB); built once on the system allocator it is ~1.2x."""
    out = subprocess.run([sys.executable, "-c", FRAME_PEAK], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["same_dtypes"] and got["values"]
    # the text (17 MiB), its offsets and the error column's (2 x 1.5 MiB), and a few MiB of slack
    assert got["grew"] <= 1.5 * got["text_bytes"] + 8 * 2**20, got


def test_a_compact_chunk_gives_the_frame_its_outcomes_give():
    texts = [f"text {i}" for i in range(6)]
    outcomes = [{"result": {"ents": [dict(ENT, start=i)] * (i % 3)}} for i in range(6)]
    placed, compact = ResultColumns(6, ["ents"], arrow=True), ResultColumns(6, ["ents"], arrow=True)
    placed.place(list(range(6)), outcomes, "2")
    compact.place_compact(list(range(6)), compact.compact(list(range(6)), outcomes), "2")
    a, b = placed.frame(pd, pd.RangeIndex(6), texts), compact.frame(pd, pd.RangeIndex(6), texts)
    assert a.dtypes.to_dict() == b.dtypes.to_dict() and a.ents.tolist() == b.ents.tolist() == [o["result"]["ents"] for o in outcomes]
    assert a.error.tolist() == b.error.tolist() == [""] * 6


def test_what_compact_cannot_hold_is_left_to_place():
    columns = ResultColumns(4, ["ents"], arrow=True)
    assert columns.compact([0, 1], [{"result": {"ents": []}}, {"error": "boom"}]) is None  # a row's own error
    assert columns.compact([0, 2], [{"result": {"ents": []}}] * 2) is None  # not consecutive
    assert columns.compact([0], [{"result": {"ents": [dict(ENT, kb_id="Q1")]}}]) is None  # not the contract's keys
    assert ResultColumns(1, ["ents", "cats"], arrow=True).compact([0], [{"result": {"ents": [], "cats": {}}}]) is None
    assert ResultColumns(1, ["ents"]).compact([0], [{"result": {"ents": []}}]) is None  # arrow=False


def test_the_text_column_has_the_dtype_pandas_gives_the_same_list():
    for texts in (["a", "b", "c"], ["a", None, "c"], ["a", 7, "c"]):
        columns = ResultColumns(3, ["ents"])
        frame = columns.frame(pd, pd.RangeIndex(3), texts)
        expected = pd.DataFrame({"text": texts})
        assert frame.text.dtype == expected.text.dtype and frame.text.equals(expected.text), texts


def test_a_text_arrow_cannot_hold_leaves_the_text_column_as_python_objects():
    """A lone surrogate (the batch refused that row) made pandas raise after the whole batch had run."""
    columns = ResultColumns(2, ["ents"])
    columns.error(0, "the text is not valid Unicode: it has a lone surrogate (U+D800) at character 4")
    columns.place([1], [{"result": {"ents": []}}], "1")
    frame = columns.frame(pd, pd.RangeIndex(2), ["bad \ud800 text", "fine"])
    assert frame.text.tolist() == ["bad \ud800 text", "fine"] and frame.text.dtype == object
    assert frame.ents.tolist() == [None, []] and frame.error[0].startswith("the text is not valid Unicode")


def test_a_large_batch_of_list_fields_without_arrow_says_how_to_hold_them_in_less():
    from nimbus_jupyter.api.batching import BatchSummary, _arrow_advice

    advice = _arrow_advice(1_000_000, ["ents", "cats"], arrow=False)
    assert "arrow=True" in advice and advice.startswith("ents:")
    assert _arrow_advice(1_000_000, ["ents"], arrow=True) == "" and _arrow_advice(99_999, ["ents"], arrow=False) == ""
    assert _arrow_advice(1_000_000, ["cats"], arrow=False) == ""  # cats stay Python objects either way
    summary = BatchSummary(1_000_000, 70.0, 0, 0, 15_625, 0, advice=advice)
    assert f"  note: {advice}" in summary.text().split("\n")
