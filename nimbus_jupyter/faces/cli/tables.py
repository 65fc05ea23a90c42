"""Reading and writing the files ``nimbus batch`` scores: CSV, JSON Lines and Parquet, by extension.

pandas reads and writes all three (Parquet through pyarrow). Results keep their structure where the format
can hold it (Parquet: lists and structs; JSONL: JSON); in CSV, the nested columns (``ents``, ``cats``,
``tokens``, ``sents``, ``spans``) are JSON text in their cells, so any CSV reader gets them back with one
``json.loads``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from ...core.errors import UserInputError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
NESTED = ("ents", "cats", "tokens", "sents", "spans")


def format_of(path: Path, what: str) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UserInputError(f"{what} {path}: cannot tell its format from {path.suffix or 'no extension'!r}",
                             f"name it .csv, .jsonl or .parquet (formats: {', '.join(sorted(FORMATS))})")
    return kind


def read_table(path: Path) -> Any:
    """The file as a DataFrame; a UserInputError that says what is wrong with it."""
    import pandas as pd

    kind = format_of(path, "--input")
    if not path.is_file():
        raise UserInputError(f"--input {path}: no such file", "check the path")
    try:
        if kind == "csv":
            return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
        if kind == "jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        return pd.read_parquet(path)
    except ImportError as exc:
        raise UserInputError(f"reading Parquet needs pyarrow: {exc}", "pip install pyarrow")
    except Exception as exc:  # a malformed file: pandas and pyarrow say where
        raise UserInputError(f"--input {path} is not readable as {kind}: {type(exc).__name__}: {exc}",
                             f"check that it is a {kind} file")


def column_of(frame: Any, column: str, path: Path) -> Any:
    if column not in frame.columns:
        raise UserInputError(f"--column {column!r}: {path} has no such column (columns: {', '.join(map(str, frame.columns))})",
                             "choose one of those")
    return frame[column]


def _as_json_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return json.dumps(value, ensure_ascii=False)


def write_table(frame: Any, path: Path) -> None:
    """``frame`` (the input's columns and the results) to ``path`` in the format its extension names."""
    kind = format_of(path, "--output")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        out = frame.copy()
        for name in NESTED:
            if name in out.columns:
                out[name] = out[name].map(_as_json_cell)
        out.to_csv(path, index=False)
    elif kind == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        out = frame.copy()
        if "cats" in out.columns:  # labels differ between pipelines: a map, not a struct per label set
            out["cats"] = out["cats"].map(lambda c: list(c.items()) if isinstance(c, dict) else None)
        if "spans" in out.columns:
            out["spans"] = out["spans"].map(lambda s: list(s.items()) if isinstance(s, dict) else None)
        _write_parquet(out, path)


def _write_parquet(frame: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields: Dict[str, Any] = {}
    if "cats" in frame.columns:
        fields["cats"] = pa.map_(pa.string(), pa.float64())
    table = pa.Table.from_pandas(frame, preserve_index=False,
                                 schema=_schema(frame, fields) if fields else None)
    pq.write_table(table, path)


def _schema(frame: Any, fixed: Dict[str, Any]) -> Any:
    import pyarrow as pa

    inferred = pa.Schema.from_pandas(frame.drop(columns=list(fixed)), preserve_index=False)
    fields = []
    for name in frame.columns:
        fields.append(pa.field(name, fixed[name]) if name in fixed else inferred.field(name))
    return pa.schema(fields)
