"""``nimbus batch NAME --input FILE --column COL --output FILE``: ``%%nimbus_batch`` over files.

The input (CSV, JSONL or Parquet) keeps its columns; the results follow them (one column per field, then
``error``), row for row, in the output's format. Progress is tqdm's bar on stderr; the summary goes to
stderr too (stdout: ``--json`` prints the summary for scripts). Exits 1 when any row failed (the output is
written all the same, with each failure in its ``error`` cell).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .app import Failed, cli, emit, note


@cli.command("batch")
@click.argument("name")
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="the texts: a .csv, .jsonl or .parquet file")
@click.option("--column", required=True, metavar="COL", help="the input's column that holds the texts")
@click.option("--output", "output_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="where to write the input with the results: .csv, .jsonl or .parquet")
@click.option("--fields", help="comma-separated fields: ents, cats, tokens, sents, spans (default: the pipeline's)")
@click.option("--chunk-size", type=click.IntRange(min=1), default=64, show_default=True, help="texts per request")
@click.option("--concurrency", type=click.IntRange(min=1), help="requests in flight (default: the endpoint's workers + 1)")
@click.option("--no-resume", is_flag=True, help="send every chunk again instead of reusing saved ones")
@click.option("--via", type=click.Choice(["invoke", "http"]),
              help="how to reach an AWS deployment (default invoke: lambda.invoke with your credentials); local is http")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON on stdout")
def batch_command(name: str, input_path: Path, column: str, output_path: Path, fields: Optional[str], chunk_size: int,
                  concurrency: Optional[int], no_resume: bool, via: Optional[str], as_json: bool) -> None:
    """Score a file's column through the deployment NAME and write the input with the results."""
    import pandas as pd

    from ...api.batching import batch
    from .tables import column_of, format_of, read_table, write_table

    format_of(output_path, "--output")  # a wrong extension fails before any row is sent
    frame = read_table(input_path)
    texts = column_of(frame, column, input_path)
    scored = batch(texts, name, fields=fields, chunk_size=chunk_size, concurrency=concurrency, resume=not no_resume,
                   via=via, source=f"{input_path.name}:{column}")
    summary = scored.attrs["nimbus"]
    results = scored.drop(columns=["text"])
    clash = [c for c in results.columns if c in frame.columns]
    results = results.rename(columns={c: f"nimbus_{c}" for c in clash})
    out = pd.concat([frame.reset_index(drop=True), results.reset_index(drop=True)], axis=1)
    write_table(out, output_path)
    note(f"{summary.text()}; wrote {output_path}")
    if as_json:
        emit({**summary.__dict__, "rows_per_second": summary.rows_per_second, "output": str(output_path)}, True)
    if summary.failed:
        raise Failed(f"{summary.failed:,} of {summary.rows:,} rows failed: see the error column of {output_path}")
