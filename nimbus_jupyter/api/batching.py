"""Score many texts through a deployment: chunked under the payload limit, concurrent, retried, in order,
checkpointed, and served by one version. Every input row gets exactly one result or one error.

- **One client.** Requests go through the ``EndpointClient`` over the ``Transport`` the deployment's target
  gives (``Target.endpoint``: HTTP with the key, or direct ``lambda.invoke``, the default on AWS). The
  client retries what did not run (throttles, a connection not made) and 5xx a bounded number of times,
  within each request's deadline, and never resends a POST that may have run (a read timeout, a 504):
  those rows get an error saying so, and a later run sends them again (they are not saved).
- **One version.** Before any row, /health says which version serves; the batch is pinned to it: every
  request says so (the handler answers 409 for another), on AWS invoke the Lambda version is the
  qualifier, and an answer from another version is never used. When the version changes mid-batch the
  batch stops sending, keeps what the pinned version scored, and says what to run. Checkpoints are
  keyed by the content hash of the version that served them.
- **Fields** are checked against what the deployment can give (its OpenAPI enum) before any row is sent.
- **Requests sized to time.** The time per text is measured from answers, so one request takes at most a
  quarter of the transport's time limit (29 s through API Gateway, the function's timeout over invoke).
- A text that makes the pipeline raise comes back as its own row's error in the chunk's 200 answer (the
  runtime re-runs the chunk text by text), so nothing is retried or split for it. A 4xx names bad
  input (or an answer too large, 413): such a chunk is split in halves until the bad row is alone.
- **Stores that fail never lose results** (``checkpoints``): the DataFrame is built from memory.
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ..core.display import Displayable, esc
from ..core.errors import EndpointError, Interrupted, NimbusError, UserInputError
from ..core.registry import Registry
from ..endpoint.client import EndpointClient, Pin, Served
from ..endpoint.transport import Transport
from ..runtime.fields import EXT_PREFIX, is_extension_field
from ..runtime.limits import MAX_PAYLOAD_BYTES
from . import samples as sampling
from .batch_runner import Chunk, Runner, Timing
from .checkpoints import CheckpointStore, chunk_key, open_store, saves_as_text
from .deployment import Deployment
from .deployments import get_deployment
from .result_columns import NOT_SENT, ResultColumns

ENVELOPE_RESERVE = 4096  # the request's JSON around the texts, and the Lambda event's around the body
# Any other field (``ext:NAME``, a Doc extension) gets one column of its own name.
FIELD_FIXES = {
    "sents": "add a component that sets sentence boundaries ('sentencizer', 'senter' or 'parser'; a component "
             "of your own declares assigns=['token.is_sent_start']) and deploy again",
    "ents": "add an 'ner' or an 'entity_ruler' and deploy again",
    "cats": "add a 'textcat' or 'textcat_multilabel' and deploy again",
    "spans": "add a 'spancat' (or a component that declares assigns=['doc.spans']) and deploy again",
}


class BatchWarning(UserWarning):
    """A batch stopped before every row was sent (the summary's ``stopped`` says why and what to do)."""


@dataclass
class BatchSummary(Displayable):
    """One batch in a line: rows, time, rate, failures, retries, chunks reused, the way it went."""

    rows: int
    seconds: float
    failed: int
    retries: int
    chunks: int
    chunks_reused: int
    throttled: int = 0  # throttles met (429 / TooManyRequestsException), retried or not
    via: str = "http"  # the transport used: "http" or "invoke"
    version: str = ""  # the version that scored the rows (a batch is pinned to one)
    bundle_hash: str = ""  # its content hash
    requests: int = 0  # predict requests sent (a chunk may take several, sized to the time per text)
    timed_out: int = 0  # requests with no answer in time: not resent, their rows have errors
    deadline_seconds: float = 0.0  # each request's deadline, its retries included
    unsaved: int = 0  # finished chunks the checkpoint store could not save (a later run sends them again)
    resume: str = "on"  # "on", or why it is off
    stopped: str = ""  # why the batch stopped before sending every row, and what to run
    not_sent: int = 0  # rows never sent because it stopped
    advice: str = ""  # a way to the same rows for less (a large batch of list fields without arrow=True)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        line = (f"{self.rows:,} rows in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s): "
                f"{self.failed:,} failed, {self.retries:,} retries" + (f" ({self.throttled:,} throttled)" if self.throttled else "")
                + f", {self.chunks_reused:,} of {self.chunks:,} chunks reused, via {self.via}"
                + (f", scored by v{self.version}" if self.version else ""))
        notes = []
        if self.timed_out:
            notes.append(f"{self.timed_out:,} request(s) got no answer within {self.deadline_seconds:.0f} s and were "
                         "not resent (their rows have errors; run the batch again for them)")
        if self.unsaved:
            notes.append(f"{self.unsaved:,} finished chunk(s) could not be saved for a later run")
        if self.resume != "on":
            notes.append(f"resume {self.resume}" if self.resume.startswith("off") else self.resume)
        if self.advice:
            notes.append(self.advice)
        lines = [line] + [f"  note: {n}" for n in notes]
        if self.stopped:
            lines.append(f"  stopped: {self.stopped}")
        return "\n".join(lines)

    def html(self) -> str:
        mark = "✔" if not self.failed and not self.stopped else "⚠"
        lines = "<br>".join(esc(line) for line in self.text().split("\n"))
        return f"<div>{mark} {lines}</div>"


def batch(
    texts: Any,
    deployment: Any,
    *,
    fields: Optional[Sequence[str]] = None,
    column: Optional[str] = None,
    chunk_size: int = 64,
    concurrency: Optional[int] = None,
    resume: bool = True,
    retries: int = 8,
    progress: bool = True,
    registry: Optional[Registry] = None,
    via: Optional[str] = None,
    version: Optional[int] = None,
    chunk_timeout: Optional[float] = None,
    source: Optional[str] = None,
    arrow: bool = False,
) -> Any:
    """Score ``texts`` (a Series, a list, or a DataFrame with ``column``) through ``deployment``.

    Returns a DataFrame with the input's index, the text, one column per field and an ``error``
    column ("" on success). Its ``attrs["nimbus"]`` holds the run's ``BatchSummary`` (which version
    scored it, what was reused, saved, retried, and why it stopped if it did).

    ``via`` picks the transport: ``None`` (the deployment's default: direct Lambda invoke for AWS,
    HTTP for local), ``"invoke"`` or ``"http"``; the target's ``endpoint`` says why. ``version``: the
    version that must score the batch (an error before any row if another serves). ``chunk_timeout``:
    seconds one request may take, its retries included (default: twice the transport's read timeout).
    ``resume=False`` neither reads nor saves checkpoints (the store is not opened). ``arrow=True`` gives
    ``ents``/``sents``/``tokens`` as pandas Arrow ``list<struct>`` columns, about a sixth of the memory of
    Python lists of dicts (a million review-length rows of ``ents`` in ~0.2 GB instead of ~1.2, measured);
    ``api.result_columns`` says how their cells behave. A batch of 100,000 rows or more of those fields
    without it says so in its summary's notes.

    A few of the texts are remembered in this process as samples for the next deploy of this
    deployment (``api.samples``); ``source`` names them for that deploy's view (e.g. the cell's expression).
    """
    import pandas as pd

    _check_arguments(chunk_size, concurrency, version, chunk_timeout)
    index, values = _rows(texts, column)
    registry = registry or Registry()
    live, client = _ready_deployment(deployment, registry, via, retries, max(10, concurrency or 0))
    try:
        served = client.describe("; no row was sent")
        client.pin = pin = _pin(live, served, version)
        fields = _fields(fields, served, live.name)
    except BaseException:
        client.close()
        raise
    try:
        frame = _run(pd, live, client, pin, fields, index, values, chunk_size, concurrency or _concurrency(served),
                     resume, progress, registry, chunk_timeout, arrow)
    except (OSError, sqlite3.Error) as exc:  # nothing raw reaches the user
        raise NimbusError(f"the batch failed: {type(exc).__name__}: {exc}",
                          "run it again; if it persists, check the disk and permissions of NIMBUS_HOME", where="batch") from exc
    sampling.remember(values, f"the input of the last batch to {live.name!r}" + (f" ({source})" if source else ""),
                      live.name)
    return frame


def _run(pd: Any, live: Deployment, client: EndpointClient, pin: Pin, fields: List[str], index: Any, values: List[Any],
         chunk_size: int, concurrency: int, resume: bool, progress: bool, registry: Registry,
         chunk_timeout: Optional[float], arrow: bool = False) -> Any:
    transport = client.transport
    refused, positions, costs = _validate(values, transport)
    chunks = _chunks(positions, costs, values, chunk_size, transport)
    sendable, chunk_count = len(positions), len(chunks)
    del positions, costs  # the chunks hold them now
    columns = ResultColumns(len(values), fields, arrow=bool(arrow))
    for i, error in refused:
        columns.error(i, error)
    store: Optional[CheckpointStore] = None
    resume_note = "off (resume=False)"
    if resume:
        store, why = open_store(registry.home)
        resume_note = why or "on"
        if store:
            store.prune()
    key_hash = pin.hash or f"{live.name}@v{pin.version}"
    timing = Timing(store.timing(key_hash) if store else None)
    deadline = float(chunk_timeout) if chunk_timeout else 2 * transport.read_timeout
    started = time.perf_counter()
    runner = Runner(client, fields, concurrency, timing, deadline, finish=_compactor(columns, store is not None))
    reused = 0
    finished = False
    bar = _progress_bar(len(values), live.name) if progress else None
    try:
        pending: List[Chunk] = []
        chunks.reverse()
        while chunks:  # each chunk referenced only until placed: its rows' objects go with it
            chunk = chunks.pop()
            chunk.key = chunk_key(key_hash, fields, chunk.texts)
            saved = store.get(chunk.key) if store else None
            if saved is not None and len(saved[0]) == len(chunk.positions):
                columns.place(chunk.positions, saved[0], saved[1] or pin.version)
                reused += 1
                if bar:
                    bar.update(len(chunk.positions))
            else:
                pending.append(chunk)
        if bar:
            bar.update(len(values) - sendable)  # rows refused before sending are done too
        for chunk in runner.run(pending):
            if chunk.compact is not None:
                columns.place_compact(chunk.positions, chunk.compact, chunk.version)
            else:
                columns.place(chunk.positions, chunk.outcomes, chunk.version)
            if chunk.complete and store:
                answers = chunk.answers if chunk.answer_rows == len(chunk.positions) else None
                store.put(chunk.key, live.name, chunk.outcomes, chunk.version or pin.version, answers=answers)
            if bar and chunk.answered:
                bar.update(chunk.answered)  # rows never sent do not move it: it stops where the batch stopped
                bar.set_postfix(retries=runner.retries, refresh=False)
            del chunk  # placed: the columns hold its rows; nothing else refers to it (the runner took ``pending``)
        finished = True
    except KeyboardInterrupt:
        raise _interrupted(live.name, columns, store, resume_note) from None
    finally:
        runner.close(wait=finished)
        if store:
            store.save_timing(key_hash, timing.seconds_per_text)
            store.close()
        if bar:
            bar.close()
    summary = BatchSummary(len(values), time.perf_counter() - started, columns.failed(),
                           runner.retries, chunk_count, reused, runner.throttled, transport.kind, pin.version, pin.hash,
                           runner.requests, runner.timed_out, deadline, store.unsaved if store else 0, resume_note)
    summary.not_sent = columns.count(NOT_SENT)
    summary.advice = _arrow_advice(len(values), fields, arrow)
    if runner.stop:
        summary.stopped = _stopped_message(live, pin, runner.stop, summary, bool(store))
        warnings.warn(summary.stopped, BatchWarning, stacklevel=3)
    frame = columns.frame(pd, index, values)
    frame.attrs["nimbus"] = summary
    return frame


ARROW_ADVICE_ROWS = 100_000
LIST_FIELDS = ("ents", "sents", "tokens")  # the ones arrow=True keeps as Arrow list<struct> columns


def _arrow_advice(rows: int, fields: Sequence[str], arrow: bool) -> str:
    """For a large batch of list fields as Python objects: that ``arrow=True`` holds them in a fraction of the
    memory (bench/lambda_scale.py, 1,000,000 rows of ``ents``: ~2.1 GB peak as objects, under 1 GB with
    arrow=True). Said, never done: the cells' type is the caller's choice."""
    listed = [f for f in fields if f in LIST_FIELDS]
    if arrow or rows < ARROW_ADVICE_ROWS or not listed:
        return ""
    return (f"{', '.join(listed)}: Python lists of dicts for {rows:,} rows; batch(..., arrow=True) keeps the same values "
            "as Arrow columns in about a sixth of the memory (1,000,000 review-length rows of ents: ~1.2 GB as "
            "objects, ~0.2 GB as Arrow)")


def _compactor(columns: ResultColumns, saving: bool) -> Callable[[Chunk], None]:
    """What each worker does with its scored chunk: its rows as Arrow arrays when the columns take them so
    (``arrow=True``) and the checkpoint will not need the decoded outcomes (it saves the answers' text)."""
    def compact(chunk: Chunk) -> None:
        if saving and chunk.complete and not (chunk.answer_rows == len(chunk.positions) and saves_as_text(chunk.answers)):
            return  # the store encodes these outcomes
        arrays = columns.compact(chunk.positions, chunk.outcomes)
        if arrays is not None:
            chunk.compact, chunk.outcomes = arrays, []
    return compact


def _check_arguments(chunk_size: Any, concurrency: Any, version: Any, chunk_timeout: Any) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise UserInputError(f"chunk_size must be a whole number of at least 1, not {chunk_size!r}", "e.g. chunk_size=64")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1):
        raise UserInputError(f"concurrency must be a whole number of at least 1, not {concurrency!r}", "e.g. concurrency=4")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise UserInputError(f"version must be a version number (1, 2, ...), not {version!r}", "e.g. version=2")
    if chunk_timeout is not None and (isinstance(chunk_timeout, bool) or not isinstance(chunk_timeout, (int, float))
                                      or not chunk_timeout > 0):
        raise UserInputError(f"chunk_timeout must be a number of seconds above 0, not {chunk_timeout!r}", "e.g. chunk_timeout=60")


def _concurrency(served: Served) -> int:
    return served.workers + 1 if served.workers else 4


# -- input ------------------------------------------------------------------------------------------
def _rows(texts: Any, column: Optional[str]) -> Tuple[Any, List[Any]]:
    import pandas as pd

    if isinstance(texts, pd.DataFrame):
        if column is None:
            raise UserInputError(f"the input is a DataFrame; say which column holds the texts (columns: {list(texts.columns)})",
                                 "add --column NAME (column=NAME in Python)")
        if column not in texts.columns:
            raise UserInputError(f"the DataFrame has no column {column!r} (columns: {list(texts.columns)})", "check --column")
        texts = texts[column]
    elif column is not None:
        raise UserInputError(f"--column {column} is only for a DataFrame input; this is a {type(texts).__name__}",
                             "leave --column out, or pass the DataFrame")
    if isinstance(texts, pd.Series):
        return texts.index, texts.tolist()
    if isinstance(texts, (str, bytes)):
        raise UserInputError("the input is one string; batch takes many texts", 'wrap it in a list: ["your text"]')
    if isinstance(texts, dict) or not isinstance(texts, Iterable):
        raise UserInputError(f"cannot score a {type(texts).__name__}", "pass a pandas Series, a list of strings, or a DataFrame with --column")
    values = list(texts)
    return pd.RangeIndex(len(values)), values


def _validate(values: List[Any], transport: Transport) -> Tuple[List[Tuple[int, str]], List[int], List[int]]:
    """The cells that cannot be sent, with why; the positions of those that can, and what each weighs
    in a request (``text_cost``, measured once: a million rows are measured in about a second)."""
    refused: List[Tuple[int, str]] = []
    ok: List[int] = []
    costs: List[int] = []
    limit = transport.max_request_bytes - ENVELOPE_RESERVE
    envelope = transport.body_in_envelope
    for i, value in enumerate(values):
        cost = _plain_cost(value, envelope)  # the common case, checked first and cheaply
        if cost and cost <= limit:
            ok.append(i)
            costs.append(cost)
            continue
        error = _row_error(value, transport)
        if error:
            refused.append((i, error))
        else:
            ok.append(i)
            costs.append(text_cost(value, transport))
    return refused, ok, costs


def _row_error(value: Any, transport: Transport) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or _is_na(value):
        return "missing value (None/NaN): nothing to score"
    if not isinstance(value, str):
        return f"a {type(value).__name__} is not text; convert the column with .astype(str) if that is what you mean"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"the text is not valid Unicode: it has a lone surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}"
    size = text_cost(value, transport)
    if size > transport.max_request_bytes - ENVELOPE_RESERVE:
        inside = " inside a Lambda event (its JSON escapes counted)" if transport.body_in_envelope else " as JSON"
        return (f"the text is {size:,} bytes{inside}, over the {transport.max_request_bytes:,}-byte limit of one request "
                "(Lambda's payload limit); split it into smaller texts")
    return ""


def text_cost(text: str, transport: Transport) -> int:
    """Bytes one text adds to a request, as the transport's limit counts them: the JSON string in the body,
    escaped once more when the body travels inside a Lambda event (about 1.3x for quote-heavy text)."""
    encoded = json.dumps(text, ensure_ascii=False)
    if transport.body_in_envelope:
        encoded = json.dumps(encoded, ensure_ascii=False)[1:-1]
    return len(encoded.encode("utf-8", "surrogatepass"))


_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what json.dumps(ensure_ascii=False) escapes


def _plain_cost(value: Any, in_envelope: bool) -> int:
    """``text_cost`` of an ASCII text that JSON does not escape (its length and the quotes, escaped once
    more inside a Lambda event); 0 for anything else (not a str, non-ASCII, escapes: measured the long way)."""
    if type(value) is not str or not value or not value.isascii() or _ESCAPED.search(value):
        return 0
    return len(value) + (4 if in_envelope else 2)


def _is_na(value: Any) -> bool:
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:
        return False


def _chunks(positions: List[int], costs: List[int], values: List[Any], chunk_size: int,
            transport: Transport) -> List[Chunk]:
    """Consecutive rows, at most ``chunk_size`` texts and under the payload limit each (``costs``: what
    each row at ``positions`` weighs, from ``_validate``)."""
    budget = transport.max_request_bytes - ENVELOPE_RESERVE
    chunks: List[Chunk] = []
    current: List[int] = []
    size = 0
    for i, cost in zip(positions, costs):
        cost += 2
        if current and (len(current) >= chunk_size or size + cost > budget):
            chunks.append(Chunk(current, [values[j] for j in current]))
            current, size = [], 0
        current.append(i)
        size += cost
    if current:
        chunks.append(Chunk(current, [values[j] for j in current]))
    return chunks


# -- the deployment ---------------------------------------------------------------------------------
def _ready_deployment(deployment: Any, registry: Registry, via: Optional[str], retries: int,
                      concurrency: int) -> Tuple[Deployment, EndpointClient]:
    """The deployment, ready, and a client over its transport; a ``via`` that cannot reach it is the
    user's mistake, whatever its status."""
    name = deployment.name if isinstance(deployment, Deployment) else deployment
    if not isinstance(name, str):
        raise UserInputError(f"deployment must be a name or a Deployment, not {type(deployment).__name__}", "e.g. deployment='reviews'")
    live = get_deployment(name, registry)
    transport = live.transport(via, concurrency=concurrency)
    if live.status != "ready":
        transport.close()
        raise EndpointError(f"deployment {name!r} is {live.status}: {live.detail}",
                            f"restart it with %nimbus_deploy PIPELINE --name {name}; no row was sent", where="batch")
    return live, EndpointClient(transport, retries=retries, name=name)


def _pin(live: Deployment, served: Served, version: Optional[int]) -> Pin:
    """The version that serves now (its /health, not the registry's belief), which the batch is pinned to."""
    serving = served.version or str(live.version)
    bundle_hash = served.hash or (live.bundle_hash if str(live.version) == serving else "")
    if version is not None and str(version) != serving:
        raise EndpointError(f"deployment {live.name!r} serves v{serving}, not v{version} that this batch asks for",
                            f"serve v{version} again (nimbus_jupyter.rollback({live.name!r}, to={version})), or leave "
                            f"version out to score with v{serving}; no row was sent", where="batch")
    return Pin(serving, bundle_hash)


def _fields(fields: Optional[Sequence[str]], served: Served, name: str) -> List[str]:
    """The fields to ask for, each one the deployment can give: else one error naming it and the fix."""
    if fields is None:
        return list(served.default_fields)
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    if not fields:
        raise UserInputError("no fields given", f"choose from {served.fields}")
    for field in fields:
        if field not in served.fields:
            raise UserInputError(f"field {field!r} is not available from deployment {name!r}: {_why_not(field, served)}",
                                 f"{_fix(field, served)}; or leave {field!r} out. It can give {served.fields}; no row was sent")
    return list(dict.fromkeys(fields))


def _why_not(field: str, served: Served) -> str:
    if field == "sents":
        return "no component of its pipeline sets sentence boundaries"
    if is_extension_field(field):
        return f"its pipeline registers no Doc extension {field[len(EXT_PREFIX):]!r} (extensions: {served.extensions})"
    if field in FIELD_FIXES:
        return f"no component of its pipeline ({', '.join(served.components) or 'none'}) sets it"
    return "it is not a field of the endpoint's contract"


def _fix(field: str, served: Served) -> str:
    if is_extension_field(field):
        return (f"make a component register it (Doc.set_extension({field[len(EXT_PREFIX):]!r}, default=None)) and set it, "
                "then deploy again")
    return FIELD_FIXES.get(field, f"choose from {served.fields}, or 'ext:NAME' for a Doc._.NAME extension")


# -- when it stops ----------------------------------------------------------------------------------
def _stopped_message(live: Deployment, pin: Pin, stop: Any, summary: BatchSummary, saving: bool) -> str:
    name = live.name
    done = summary.rows - summary.not_sent
    saved = "saved" if saving and not summary.unsaved else "kept in this DataFrame"
    if stop.kind == "moved":
        now = stop.serving.version if stop.serving else "?"
        return (f"deployment {name!r} changed from v{pin.version} to v{now} while this batch ran (a deploy or rollback "
                f"elsewhere): {done:,} of {summary.rows:,} rows were done with v{pin.version} ({saved}), "
                f"{summary.not_sent:,} were not sent, so no row mixes two versions. Run the same batch again to score "
                f"every row with v{now}, or serve v{pin.version} again (nimbus_jupyter.rollback({name!r}, to={pin.version}), "
                f"%nimbus_rollback {name} --to {pin.version}) and run it again to reuse the v{pin.version} rows")
    if stop.kind == "unavailable":
        return (f"the endpoint of {name!r} cannot give a requested field: {stop.what}. {summary.not_sent:,} rows were not "
                "sent; fix the fields (or the pipeline) and run the batch again")
    todo = stop.todo or f"redeploy it (%nimbus_deploy PIPELINE --name {name})"
    return (f"the endpoint of {name!r} went away after {done:,} of {summary.rows:,} rows ({saved}): {stop.what}; "
            f"{summary.not_sent:,} rows were not sent. To finish: {todo}, then run the same batch again: the "
            "finished chunks are reused")


def _interrupted(name: str, columns: ResultColumns, store: Optional[CheckpointStore], resume_note: str) -> Interrupted:
    done, total = columns.done(), columns.rows
    if store is None:
        kept = f"nothing was saved (resume {resume_note}): running it again sends every row"
    elif store.unsaved:
        kept = f"{store.unsaved} finished chunk(s) could not be saved; the others are"
    else:
        kept = "the finished chunks are saved"
    return Interrupted(f"batch on {name!r} interrupted: {done:,} of {total:,} rows finished; {kept}",
                       "run the same batch again (same texts, fields and chunk size) to resume: only the unfinished "
                       "chunks are sent", where="batch")


# -- output -----------------------------------------------------------------------------------------
def _progress_bar(total: int, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", desc=f"nimbus {name}", smoothing=0.1)
