"""A batch's rows as they arrive, kept as columns (one list per column, no dict per row) until the
DataFrame is made from them.

By default a field's cells are the Python objects the endpoint's JSON decoded to (a list of dicts per
row for ``ents``), as they always were. That costs memory: one entity is a dict of four keys with its
strings, about 290 bytes, so 1,000,000 review-length rows with ``ents`` hold about 1.2 GB of them (measured).
With ``arrow=True`` the fields whose shape the contract fixes -- ``ents``, ``sents``, ``tokens``: lists of
spans or tokens, each with the same keys -- are kept per chunk as Arrow arrays (about 40 bytes an
entity) as soon as the chunk is placed, and the DataFrame gets them as pandas ``ArrowDtype``
``list<struct>`` columns: ``frame.ents[i]``, ``.tolist()`` and iteration give the same lists of dicts,
a failed row's cell is missing (``pd.isna``), ``to_parquet`` writes them natively; but pandas hands
``.map``, ``.apply(axis=1)``, ``iterrows`` and ``.values`` each cell as a NumPy array of dicts. A value
of any other shape (another key, not a list) turns that field back into Python objects for the whole
batch: never a changed value. ``cats``, ``spans`` and ``ext:NAME`` are always Python objects.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set

OK, FAILED, NOT_SENT = 1, 2, 3  # a row's state; 0: nothing placed yet
COLUMNS = {"ents": ["ents"], "cats": ["cats", "label", "score"], "tokens": ["tokens"], "sents": ["sents"], "spans": ["spans"]}
NO_RESULT = "no result (internal error: please report)"


def _schemas() -> Dict[str, Any]:
    import pyarrow as pa

    s, i = pa.large_string(), pa.int64()
    span = pa.struct([("text", s), ("label", s), ("start", i), ("end", i)])
    sent = pa.struct([("text", s), ("start", i), ("end", i)])
    token = pa.struct([("text", s), ("start", i), ("ws", pa.bool_()), ("lemma", s), ("pos", s), ("tag", s), ("dep", s),
                       ("head", i), ("morph", s), ("ent_iob", s), ("ent_type", s)])
    return {"ents": pa.large_list(span), "sents": pa.large_list(sent), "tokens": pa.large_list(token)}


class ResultColumns:
    """Every row's state, error and version, and each field's values, in input positions."""

    def __init__(self, rows: int, fields: Sequence[str], arrow: bool = False) -> None:
        self.rows = rows
        self.fields = list(fields)
        self.state = bytearray(rows)
        self.errors: List[str] = [""] * rows
        self.versions: List[str] = [""] * rows
        self.version_set: Set[str] = set()
        # Each chunk's answer brings its own copy of the version string: kept per row, 15,625 of them (1M rows)
        # would stay alive among the chunks' freed temporaries; one string per version is kept instead.
        self._versions: Dict[str, str] = {}
        schemas = _schemas() if arrow else {}
        self.arrow: Dict[str, Any] = {f: schemas[f] for f in self.fields if f in schemas}
        self.keys = {f: set(t.value_type.names) for f, t in self.arrow.items()}
        # What ``compact`` reads from worker threads: fixed here, never changed (``self.arrow`` may shrink).
        self._schemas = dict(self.arrow)
        self._all_arrow = bool(self.fields) and all(f in self._schemas for f in self.fields)
        self.parts: Dict[str, List[tuple]] = {f: [] for f in self.arrow}  # (first row, Arrow array): joined runs
        self.fresh: Dict[str, List[tuple]] = {f: [] for f in self.arrow}  # the same, one per chunk, not joined yet
        self.objects: Dict[str, List[Any]] = {f: [None] * rows for f in self.fields if f not in self.arrow}

    # -- placing ----------------------------------------------------------------------------------------
    def error(self, position: int, message: str, not_sent: bool = False) -> None:
        self.state[position] = NOT_SENT if not_sent else FAILED
        self.errors[position] = message

    def place(self, positions: Sequence[int], outcomes: Sequence[Dict[str, Any]], version: str) -> None:
        """One chunk's outcomes (``{"result": {...}}`` or ``{"error": "...", "not_sent": bool}``)."""
        scored: List[int] = []
        results: List[Dict[str, Any]] = []
        version = self._versions.setdefault(version, version)  # one string per version, not one per chunk
        for position, outcome in zip(positions, outcomes):
            result = outcome.get("result")
            if result is not None:
                self.state[position] = OK
                self.errors[position] = ""
                self.versions[position] = version
                scored.append(position)
                results.append(result)
            else:
                self.error(position, str(outcome.get("error", NO_RESULT)), bool(outcome.get("not_sent")))
        if not scored:
            return
        self.version_set.add(version)
        for field, values in self.objects.items():
            for position, result in zip(scored, results):
                values[position] = result.get(field)
        for field in list(self.arrow):
            self._add_arrow(field, scored, [r.get(field) for r in results])

    def compact(self, positions: Sequence[int], outcomes: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        """A chunk's outcomes as one Arrow array per field, made where the answer was decoded (a batch's worker
        thread; this reads only what ``__init__`` fixed), so that the decoded rows are freed there and then: a
        chunk done but not yet placed holds ~15 KB instead of ~130 KB of dicts (1,000 in flight could hold 1,000
        of them). ``None`` (``place`` takes the outcomes as they are) unless every field is an Arrow one, every
        row has its result, the rows are consecutive and every value has the contract's shape."""
        if not self._all_arrow or not positions or positions[-1] - positions[0] + 1 != len(positions):
            return None
        results = []
        for outcome in outcomes:
            result = outcome.get("result")
            if result is None:
                return None
            results.append(result)
        if len(results) != len(positions):
            return None
        import pyarrow as pa

        arrays: Dict[str, Any] = {}
        for field, kind in self._schemas.items():
            values = [r.get(field) for r in results]
            if not _fits(values, self.keys[field]):
                return None
            try:
                arrays[field] = pa.array(values, type=kind, memory_pool=_pool())
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                return None
        return arrays

    def place_compact(self, positions: Sequence[int], arrays: Dict[str, Any], version: str) -> None:
        """A chunk that ``compact`` made into arrays: every row scored."""
        start, end = positions[0], positions[-1] + 1
        version = self._versions.setdefault(version, version)
        self.state[start:end] = bytes([OK]) * (end - start)
        self.errors[start:end] = [""] * (end - start)
        self.versions[start:end] = [version] * (end - start)
        self.version_set.add(version)
        for field, array in arrays.items():
            if field in self.arrow:
                self._append_arrow(field, start, array)
            else:  # another chunk turned this field into Python objects meanwhile
                self.objects[field][start:end] = array.to_pylist()

    def _append_arrow(self, field: str, start: int, array: Any) -> None:
        fresh = self.fresh[field]
        fresh.append((start, array))
        if len(fresh) >= MERGE_EVERY:  # the new ones joined among themselves: old data is never copied again
            self.parts[field] += _merged(fresh)
            fresh.clear()

    def _add_arrow(self, field: str, positions: List[int], values: List[Any]) -> None:
        """The chunk's values as one Arrow array over its span of rows (``positions`` ascending, as a chunk's
        are; a row of the span without a result is null), or the field back to Python objects."""
        import pyarrow as pa

        fits = _fits(values, self.keys[field])
        start, span = positions[0], positions[-1] - positions[0] + 1
        if fits and span == len(positions):
            full = values
        elif fits:
            full = [None] * span
            for position, value in zip(positions, values):
                full[position - start] = value
        if fits:
            try:
                self._append_arrow(field, start, pa.array(full, type=self.arrow[field], memory_pool=_pool()))
                return
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                pass
        self._to_objects(field)  # not the contract's shape: this field stays Python objects, as it came
        column = self.objects[field]
        for position, value in zip(positions, values):
            column[position] = value

    def _to_objects(self, field: str) -> None:
        column: List[Any] = [None] * self.rows
        for start, array in self.parts.pop(field) + self.fresh.pop(field):
            for offset, value in enumerate(array.to_pylist()):
                if value is not None:
                    column[start + offset] = value
        del self.arrow[field]
        self.objects[field] = column

    # -- counting ---------------------------------------------------------------------------------------
    def count(self, state: int) -> int:
        return self.state.count(state)

    def failed(self) -> int:
        """Rows with an error (never sent included)."""
        return self.count(FAILED) + self.count(NOT_SENT)

    def done(self) -> int:
        """Rows that have their result or an error of their own (not the ones never sent)."""
        return self.count(OK) + self.count(FAILED)

    # -- the DataFrame ----------------------------------------------------------------------------------
    def frame(self, pd: Any, index: Any, values: List[Any]) -> Any:
        """``text``, one column per field (``cats`` gives ``cats``/``label``/``score``), ``error``, and
        ``version`` when more than one version scored the rows (reused chunks)."""
        text = _str_column(pd, values)
        data: Dict[str, Any] = {"text": [None] * len(values) if text is None else text}
        for field in self.fields:
            column = self._arrow_column(field) if field in self.arrow else None
            if column is not None:
                data[field] = pd.arrays.ArrowExtensionArray(column)
            elif field == "cats":
                cats = self.objects["cats"]
                data["cats"] = cats
                best = [max(c.items(), key=lambda kv: kv[1]) if c else (None, float("nan")) for c in cats]
                data["label"] = [b[0] for b in best]
                data["score"] = [b[1] for b in best]
            else:
                data[field] = self.objects[field]
        state = self.state
        errors = [e if s else NO_RESULT for s, e in zip(state, self.errors)] if 0 in state else self.errors
        data["error"] = _or(_str_column(pd, errors), errors)
        columns = ["text"] + [c for f in self.fields for c in COLUMNS.get(f, [f])] + ["error"]
        if len(self.version_set) > 1:
            data["version"] = _or(_str_column(pd, self.versions), self.versions)
            columns.append("version")
        frame = pd.DataFrame(data, index=index, columns=columns)
        if text is None:  # set afterwards: the constructor would infer str again, and fail on the same text
            frame["text"] = pd.Series(values, dtype=object, index=frame.index)
        return frame

    def _arrow_column(self, field: str) -> Any:
        """The field's values in input order (rows without a result missing), as the chunks' arrays in row
        order with nulls between them: no copy of the data."""
        import pyarrow as pa

        kind = self.arrow[field]
        pieces, cursor = [], 0
        for start, array in sorted(self.parts[field] + _merged(self.fresh[field]), key=lambda p: p[0]):
            if start < cursor:  # a row placed twice: not a batch's way, but never a wrong row
                self._to_objects(field)
                return None
            if start > cursor:
                pieces.append(pa.nulls(start - cursor, kind, memory_pool=_pool()))
            pieces.append(array)
            cursor = start + len(array)
        if cursor < self.rows:
            pieces.append(pa.nulls(self.rows - cursor, kind, memory_pool=_pool()))
        self.parts[field], self.fresh[field] = [], []
        return pa.chunked_array(pieces, type=kind)


STR_PIECE = 1 << 16  # rows per Arrow array of a str column (a few MiB of text each)
MERGE_EVERY = 256  # chunks' arrays kept before neighbours are joined (fewer, larger buffers)



def _merged(parts: List[tuple]) -> List[tuple]:
    """``(start, array)`` parts in row order, neighbours (one ending where the next starts) joined."""
    import pyarrow as pa

    out: List[tuple] = []
    run: List[Any] = []
    run_start = end = -1
    for start, array in sorted(parts, key=lambda p: p[0]):
        if run and start == end:
            run.append(array)
        else:
            if run:
                out.append((run_start, run[0] if len(run) == 1 else pa.concat_arrays(run, memory_pool=_pool())))
            run, run_start = [array], start
        end = start + len(array)
    if run:
        out.append((run_start, run[0] if len(run) == 1 else pa.concat_arrays(run, memory_pool=_pool())))
    return out


def _fits(values: List[Any], keys: Set[str]) -> bool:
    """Every value a list of dicts with exactly the schema's keys (or missing): what ``pa.array`` gives back
    unchanged."""
    return all(v is None or (type(v) is list and all(type(e) is dict and e.keys() == keys for e in v)) for v in values)


def _str_column(pd: Any, values: List[Any]) -> Optional[Any]:
    """``values`` as the column pandas would make of them, built once. For a list of ``str`` pandas 3 makes an
    Arrow-backed ``str`` column, through a NumPy object array and Arrow's default pool: for the 1,000,000 texts
    of bench/lambda_scale.py (111 MiB of text) RSS grew 261 MiB and the frame took 1.7 s; ``pa.array`` on the
    system pool: 119 MiB, 0.35 s, the same dtype and values. Anything else (a missing value, a number, pandas
    set to another string storage) goes to pandas as before; a text Arrow cannot hold (a lone surrogate, which
    the batch refused): ``None``, the column stays Python objects instead of failing after the batch. Built in pieces of
    ``STR_PIECE`` rows: Arrow grows a buffer by copying it into one twice its size, so one array over a million
    texts peaked at 230 MiB for 119 MiB kept."""
    if not values or not all(type(v) is str for v in values):
        return values
    dtype = pd.Series(["text"]).dtype  # what pandas infers for str: its options decide, not this module
    if not isinstance(dtype, pd.StringDtype) or dtype.storage != "pyarrow":
        return values
    import pyarrow as pa

    try:
        kind = pa.large_string()
        array = pa.chunked_array([pa.array(values[i:i + STR_PIECE], type=kind, memory_pool=_pool())
                                  for i in range(0, len(values), STR_PIECE)], type=kind)
    except (pa.ArrowException, UnicodeEncodeError):
        return None
    return pd.arrays.ArrowStringArray(array, dtype=dtype)


def _or(column: Optional[Any], values: List[Any]) -> Any:
    return values if column is None else column


def _pool() -> Any:
    """The system allocator for the columns' buffers. Arrow's default (mimalloc in the wheels) keeps the
    pages that the chunk-by-chunk arrays and their merges free: at 200,000 rows of ``ents`` it held 125 MiB
    resident for 63 MiB of columns, 62 MiB more than glibc's malloc (bench/lambda_scale.py, RESULTS.md)."""
    import pyarrow as pa

    return pa.system_memory_pool()
