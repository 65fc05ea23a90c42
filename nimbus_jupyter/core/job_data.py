"""A job's data on disk: its source read as a stream of shards, its Parquet result shards and manifest.

Why streams: a job's source may hold millions of rows, so nothing here reads a whole file. Parquet goes
through ``pyarrow.dataset`` (batches of the one column), CSV through ``pyarrow.csv.open_csv`` and JSON
Lines through ``pyarrow.json.open_json``, each of which reads a block at a time; ``shards`` cuts those
batches into shards of exactly ``shard_rows`` rows (the last one shorter), so shard *n* is always the
same rows and a resumed job can skip the shards it has.

Result shards are written to a temporary name in the output and renamed (``os.replace``), so a shard
file that exists is complete; the manifest is written last the same way. Field values that are records
(``ents``, ``cats``, ``tokens``, ...) are stored as JSON text, so every shard has the same Parquet
schema whatever its rows hold; ``read_results`` turns them back into Python objects.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .errors import UserInputError
from .files import write_atomic
from .jobs import MANIFEST, OWNER, SHARD_PATTERN, JobSource, Manifest, shard_name

KINDS = ("parquet", "csv", "jsonl")
SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
NATIVE_COLUMNS = ("index", "text", "label", "score", "error")  # stored as themselves; the rest as JSON text
# One encoder for every field cell: json.dumps(v, ensure_ascii=False) builds a new JSONEncoder per call (any
# argument but the defaults does), which was half of encoding a shard's fields. Same text, byte for byte.
_FIELD_JSON = json.JSONEncoder(ensure_ascii=False)
READ_BLOCK_BYTES = 1 << 20


def kind_of(path: Path) -> str:
    """parquet | csv | jsonl, from the file's suffix (a directory: from the files in it)."""
    if path.is_dir():
        kinds = {SUFFIXES.get(p.suffix.lower()) for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))}
        kinds.discard(None)
        if len(kinds) == 1:
            return kinds.pop()  # type: ignore[return-value]
        raise UserInputError(f"the directory {path} holds {'no' if not kinds else 'mixed'} CSV/JSONL/Parquet files",
                             "point submit at one file, or at a directory of Parquet files of one kind")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UserInputError(f"cannot tell the format of {path.name} from its suffix",
                             "use a .parquet, .csv or .jsonl file (or rename it to say which it is)")
    return kind


def _files(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
                      and p.suffix.lower() in SUFFIXES)
    return [path]


def columns_of(source: JobSource) -> List[str]:
    """The source's columns, read from its header/schema only (never its rows)."""
    import pyarrow as pa

    path = Path(source.uri)
    try:
        if source.kind == "parquet":
            import pyarrow.dataset as ds

            return list(ds.dataset([str(p) for p in _files(path)], format="parquet").schema.names)
        first = _files(path)[0]
        if source.kind == "csv":
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(str(first), read_options=pcsv.ReadOptions(block_size=READ_BLOCK_BYTES))
            return list(reader.schema.names)
        import pyarrow.json as pjson

        reader = pjson.open_json(str(first), read_options=pjson.ReadOptions(block_size=READ_BLOCK_BYTES))
        return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserInputError(f"cannot read {path} as {source.kind}: {exc}",
                             f"check the file is a valid {source.kind.upper()} file (and readable by you)")


def _batches(source: JobSource) -> Iterator[Any]:
    """Record batches of the text column (and the index column of a staged frame), a block at a time."""
    import pyarrow as pa

    wanted = [source.column] + ([source.index_column] if source.index_column else [])
    for path in _files(Path(source.uri)):
        if source.kind == "parquet":
            import pyarrow.dataset as ds

            yield from ds.dataset(str(path), format="parquet").to_batches(columns=wanted, batch_size=8192)
        elif source.kind == "csv":
            import pyarrow.csv as pcsv

            # Empty cells read as missing (null): a row with nothing to score gets its own error.
            reader = pcsv.open_csv(str(path), read_options=pcsv.ReadOptions(block_size=READ_BLOCK_BYTES),
                                   convert_options=pcsv.ConvertOptions(include_columns=wanted, strings_can_be_null=True,
                                                                       column_types={source.column: pa.string()}))
            yield from reader
        else:
            import pyarrow.json as pjson

            reader = pjson.open_json(str(path), read_options=pjson.ReadOptions(block_size=READ_BLOCK_BYTES))
            for batch in reader:
                yield batch.select([c for c in wanted if c in batch.schema.names])


def shards(source: JobSource, shard_rows: int) -> Iterator[Tuple[int, int, List[Any], List[Any]]]:
    """``(number, first_row, index_values, texts)`` per shard of ``shard_rows`` rows, in order."""
    number, first, index, texts = 0, 0, [], []  # type: ignore[var-annotated]
    row = 0
    for batch in _batches(source):
        if source.column not in batch.schema.names:
            continue  # a JSON block without the column at all: every row missing
        values = batch.column(source.column).to_pylist()
        keys = batch.column(source.index_column).to_pylist() if source.index_column else range(row, row + len(values))
        for key, value in zip(keys, values):
            index.append(key)
            texts.append(value)
            if len(texts) == shard_rows:
                yield number, first, index, texts
                number, first, index, texts = number + 1, first + shard_rows, [], []
        row += len(values)
    if texts:
        yield number, first, index, texts


def count_rows(source: JobSource) -> int:
    """Rows in the source: Parquet's metadata, else one streaming pass over the column."""
    if source.kind == "parquet":
        import pyarrow.dataset as ds

        return sum(ds.dataset(str(p), format="parquet").count_rows() for p in _files(Path(source.uri)))
    return sum(batch.num_rows for batch in _batches(source))


def check_local_source(path_text: str, column: Optional[str]) -> JobSource:
    """A local CSV/JSONL/Parquet file (or a directory of them) with its column, checked from its header."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise UserInputError(f"the source {path} does not exist", "check the path (relative to the kernel's working "
                             f"directory, {Path.cwd()})")
    if not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
        raise UserInputError(f"the source {path} is not readable by you", "fix its permissions, or copy it somewhere you can read")
    kind = kind_of(path)
    if not column:
        raise UserInputError(f"say which column of {path.name} holds the texts", "pass column='review' (--column)")
    source = JobSource(kind, str(path.resolve()), column)
    columns = columns_of(source)
    if column not in columns:
        raise UserInputError(f"{path.name} has no column {column!r} (columns: {columns[:20]})", "check column=")
    return source


# -- results ------------------------------------------------------------------------------------------------
def shard_table(frame: Any, index: Sequence[Any]) -> Any:
    """A batch DataFrame (its columns: text, the fields', error) as the Parquet table of one shard."""
    import pyarrow as pa

    arrays, names = [index_array(list(index))], ["index"]
    for column in frame.columns:
        values = frame[column].tolist()
        if column in NATIVE_COLUMNS:
            if column == "score":
                values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]
                arrays.append(pa.array(values, pa.float64()))
            else:
                arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
        else:
            encode = _FIELD_JSON.encode
            arrays.append(pa.array([None if v is None else encode(v) for v in values], pa.string()))
        names.append(column)
    return pa.Table.from_arrays(arrays, names=names)


def index_array(values: List[Any]) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([str(v) for v in values], pa.string())  # a mixed index: kept as its text


def json_columns(columns: Sequence[str]) -> List[str]:
    return [c for c in columns if c not in NATIVE_COLUMNS]


def write_shard(output: Path, number: int, table: Any) -> Path:
    import pyarrow.parquet as pq

    path = output / shard_name(number)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return path


def shard_rows_on_disk(output: Path, number: int) -> Optional[int]:
    """Rows of a finished shard file, or None when it is not there (or unreadable: it is sent again)."""
    import pyarrow.parquet as pq

    path = output / shard_name(number)
    try:
        return pq.ParquetFile(str(path)).metadata.num_rows
    except Exception:
        return None


def write_manifest(output: Path, manifest: Manifest) -> None:
    write_atomic(output / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest.to_json(), indent=2), "utf-8"))


def read_manifest(output: Path) -> Optional[Manifest]:
    try:
        return Manifest.from_json(json.loads((output / MANIFEST).read_text("utf-8")))
    except (FileNotFoundError, ValueError):
        return None


def holds_results(output: Path) -> List[str]:
    """The names of result files already in ``output`` (a manifest or shards), for the overwrite check."""
    if not output.is_dir():
        return []
    return sorted(p.name for p in output.iterdir() if p.name == MANIFEST or SHARD_PATTERN.match(p.name))


def clear_results(output: Path) -> None:
    for name in holds_results(output) + ([OWNER] if (output / OWNER).exists() else []):
        (output / name).unlink(missing_ok=True)


def read_results(files: Sequence[Path], manifest: Optional[Manifest]) -> Any:
    """The DataFrame a batch would give: the input's index, text, the fields' columns, error."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(str(f)) for f in files]
    if not tables:
        columns = (manifest.columns if manifest else ["index", "text", "error"])
        return pd.DataFrame(columns=[c for c in columns if c != "index"])
    table = pa.concat_tables(tables)
    decoded = set(json_columns(table.column_names))
    data = {}
    for name in table.column_names:
        values = table.column(name).to_pylist()
        data[name] = [None if v is None else json.loads(v) for v in values] if name in decoded else values
    index = data.pop("index")
    columns = list(data)
    frame = pd.DataFrame({c: pd.Series(data[c], dtype=_dtype(c)) for c in columns}, columns=columns)
    frame.index = pd.Index(index)
    return frame


def _dtype(column: str) -> Any:
    return "float64" if column == "score" else object


def result_shards(output: Path) -> Dict[int, Path]:
    found = {}
    if output.is_dir():
        for p in output.iterdir():
            matched = SHARD_PATTERN.match(p.name)
            if matched:
                found[int(matched.group(1))] = p
    return dict(sorted(found.items()))
