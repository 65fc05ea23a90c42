"""Score many texts through a deployment: chunked under the payload limit, concurrent, retried,
in order, checkpointed. Every input row gets exactly one result or one error.

Requests go through the ``Transport`` the deployment's target gives (``Target.endpoint``): HTTP with
the API key (``requests`` + urllib3 ``Retry``), or for AWS deployments direct ``lambda.invoke``
(``endpoint/invoke.py``, botocore retries), the default there. Either retries throttling, 5xx and lost
connections itself. A text that makes the pipeline raise comes back as its own row's error in the
chunk's 200 answer (the runtime re-runs the chunk text by text), so nothing is retried or split for it.
A 4xx names bad input (or an answer too large, 413): a chunk that gets one is split in halves until the
bad row is alone, so one bad text fails only its own row. Checkpoints do not depend on the transport: a
batch interrupted over one resumes over the other.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..core.display import Displayable, esc
from ..core.errors import EndpointError, UserInputError
from ..core.registry import Registry
from ..endpoint.transport import RETRIABLE, Transport, TransportDown
from ..runtime.limits import MAX_PAYLOAD_BYTES
from . import samples as sampling
from .checkpoints import CheckpointStore, chunk_key
from .deployment import Deployment
from .deployments import get_deployment

_REQUEST_BUDGET = MAX_PAYLOAD_BYTES - 4096  # room for the envelope around the texts
FIELD_COLUMNS = {"ents": ["ents"], "cats": ["cats", "label", "score"], "tokens": ["tokens"], "sents": ["sents"], "spans": ["spans"]}
# Any other field (``ext:NAME``, a Doc extension) gets one column of its own name.


@dataclass
class BatchSummary(Displayable):
    """One batch in a line: rows, time, rate, failures, retries, chunks reused, the way it went."""

    rows: int
    seconds: float
    failed: int
    retries: int
    chunks: int
    chunks_reused: int
    throttled: int = 0  # of the retries, how many were throttles (429 / TooManyRequestsException)
    via: str = "http"  # the transport used: "http" or "invoke"

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        return (f"{self.rows:,} rows in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s): "
                f"{self.failed:,} failed, {self.retries:,} retries" + (f" ({self.throttled:,} throttled)" if self.throttled else "")
                + f", {self.chunks_reused:,} of {self.chunks:,} chunks reused, via {self.via}")

    def html(self) -> str:
        mark = "✔" if not self.failed else "⚠"
        return f"<div>{mark} {esc(self.text())}</div>"


@dataclass
class _Chunk:
    positions: List[int]
    texts: List[str]
    key: str = ""
    outcomes: List[Dict[str, Any]] = field(default_factory=list)  # {"result": {...}} or {"error": "..."}
    retries: int = 0
    throttled: int = 0  # 429s met on the way (the runner halves its concurrency when it sees them)
    complete: bool = True  # False when a row failed for a reason a re-run may not meet again


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
    source: Optional[str] = None,
) -> Any:
    """Score ``texts`` (a Series, a list, or a DataFrame with ``column``) through ``deployment``.

    Returns a DataFrame with the input's index, the text, one column per field and an ``error``
    column ("" on success). Its ``attrs["nimbus"]`` holds the run's ``BatchSummary``.

    ``via`` picks the transport: ``None`` (the deployment's default: direct Lambda invoke for AWS,
    HTTP for local), ``"invoke"`` or ``"http"``; the target's ``endpoint`` says why.

    A few of the texts are remembered in this process as samples for the next deploy of this
    deployment (``api.samples``); ``source`` names them for that deploy's view (e.g. the cell's expression).
    """
    import pandas as pd

    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise UserInputError(f"chunk_size must be a whole number of at least 1, not {chunk_size!r}", "e.g. chunk_size=64")
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        raise UserInputError(f"concurrency must be a whole number of at least 1, not {concurrency!r}", "e.g. concurrency=4")
    index, values = _rows(texts, column)
    registry = registry or Registry()
    target, transport = _ready_deployment(deployment, registry, via, retries, max(10, concurrency or 0))
    try:
        probe = _preflight(target, transport)
        fields = _fields(fields, probe)
    except BaseException:
        transport.close()
        raise
    outcomes, positions = _validate(values)
    chunks = _chunks(positions, values, chunk_size)
    store = CheckpointStore(registry.home / "checkpoints.sqlite")
    store.prune()
    started = time.perf_counter()
    runner = _Runner(transport, fields, concurrency or probe["concurrency"])
    reused = 0
    bar = _progress_bar(len(values), target.name) if progress else None
    try:
        pending: List[_Chunk] = []
        for chunk in chunks:
            chunk.key = chunk_key(target.bundle_hash, fields, chunk.texts)
            saved = store.get(chunk.key) if resume else None
            if saved is not None and len(saved) == len(chunk.positions):
                chunk.outcomes = saved
                _place(outcomes, chunk)
                reused += 1
                if bar:
                    bar.update(len(chunk.positions))
            else:
                pending.append(chunk)
        if bar:
            bar.update(len(values) - len(positions))  # rows refused before sending are done too
        for chunk in runner.run(pending):
            _place(outcomes, chunk)
            if chunk.complete:
                store.put(chunk.key, target.name, chunk.outcomes)
            if bar:
                bar.update(len(chunk.positions))
                bar.set_postfix(retries=runner.retries, refresh=False)
    except KeyboardInterrupt:
        done = sum(1 for o in outcomes if o is not None)
        print(f"interrupted: {done:,} of {len(values):,} rows finished and saved; run the same batch again to resume")
        raise
    finally:
        runner.close()
        store.close()
        if bar:
            bar.close()
    summary = BatchSummary(len(values), time.perf_counter() - started, sum(1 for o in outcomes if "error" in o),
                           runner.retries, len(chunks), reused, runner.throttled, transport.kind)
    frame = _frame(pd, index, values, outcomes, fields)
    frame.attrs["nimbus"] = summary
    sampling.remember(values, f"the input of the last batch to {target.name!r}" + (f" ({source})" if source else ""),
                      target.name)
    return frame


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


def _validate(values: List[Any]) -> Tuple[List[Optional[Dict[str, Any]]], List[int]]:
    """Per-row errors for cells that cannot be sent; the positions of those that can."""
    outcomes: List[Optional[Dict[str, Any]]] = [None] * len(values)
    ok: List[int] = []
    for i, value in enumerate(values):
        error = _row_error(value)
        if error:
            outcomes[i] = {"error": error}
        else:
            ok.append(i)
    return outcomes, ok


def _row_error(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or _is_na(value):
        return "missing value (None/NaN): nothing to score"
    if not isinstance(value, str):
        return f"a {type(value).__name__} is not text; convert the column with .astype(str) if that is what you mean"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"the text has a lone surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}; it is not valid Unicode"
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > _REQUEST_BUDGET:
        return (f"the text is {size:,} bytes as JSON, over the {MAX_PAYLOAD_BYTES:,}-byte limit of one request "
                "(Lambda's payload limit); split it into smaller texts")
    return ""


def _is_na(value: Any) -> bool:
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:
        return False


def _chunks(positions: List[int], values: List[Any], chunk_size: int) -> List[_Chunk]:
    """Consecutive rows, at most ``chunk_size`` texts and under the payload limit each."""
    chunks: List[_Chunk] = []
    current: List[int] = []
    size = 0
    for i in positions:
        text_size = len(json.dumps(values[i], ensure_ascii=False).encode("utf-8")) + 2
        if current and (len(current) >= chunk_size or size + text_size > _REQUEST_BUDGET):
            chunks.append(_Chunk(current, [values[j] for j in current]))
            current, size = [], 0
        current.append(i)
        size += text_size
    if current:
        chunks.append(_Chunk(current, [values[j] for j in current]))
    return chunks


# -- the deployment ---------------------------------------------------------------------------------
def _ready_deployment(deployment: Any, registry: Registry, via: Optional[str], retries: int,
                      concurrency: int) -> Tuple[Deployment, Transport]:
    """The deployment, ready, and its transport; a ``via`` that cannot reach it is the user's mistake,
    whatever its status."""
    name = deployment.name if isinstance(deployment, Deployment) else deployment
    if not isinstance(name, str):
        raise UserInputError(f"deployment must be a name or a Deployment, not {type(deployment).__name__}", "e.g. deployment='reviews'")
    live = get_deployment(name, registry)
    transport = live.transport(via, retries=retries, concurrency=concurrency)
    if live.status != "ready":
        transport.close()
        raise EndpointError(f"deployment {name!r} is {live.status}: {live.detail}",
                            f"restart it with %nimbus_deploy PIPELINE --name {name}; no row was sent", where="batch")
    return live, transport


def _preflight(d: Deployment, transport: Transport) -> Dict[str, Any]:
    """Two calls that must work before any row is sent: health, then the OpenAPI document (which
    needs the key over HTTP), for the fields on offer. Same checks over either transport."""
    try:
        health = transport.check("GET", "/health").payload
        answer = transport.check("GET", "/openapi.json")
    except TransportDown as exc:
        raise EndpointError(f"deployment {d.name!r} does not answer: {exc.what}",
                            (exc.todo or f"check it with %nimbus_status {d.name}") + "; no row was sent", where="batch")
    if answer.status in (401, 403):
        raise EndpointError(f"the endpoint of {d.name!r} refused the API key", "deploy again to refresh the key file; no row was sent", where="batch")
    if answer.status != 200 or not isinstance(answer.payload, dict):
        raise EndpointError(f"the endpoint of {d.name!r} answered {answer.status} to a check: {answer.message}",
                            f"see %nimbus_status {d.name}; no row was sent", where="batch")
    spec = answer.payload
    health = health if isinstance(health, dict) else {}
    request_schema = spec.get("components", {}).get("schemas", {}).get("PredictRequest", {})
    available = request_schema.get("properties", {}).get("fields", {}).get("items", {}).get("enum", [])
    workers = (health.get("workers") or {}).get("size") or 0
    return {"available": available, "default": health.get("default_fields") or [],
            "concurrency": workers + 1 if workers else 4}


def _fields(fields: Optional[Sequence[str]], probe: Dict[str, Any]) -> List[str]:
    if fields is None:
        return list(probe["default"])
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    unknown = [f for f in fields if f not in probe["available"]]
    if unknown or not fields:
        raise UserInputError(f"field {unknown[0]!r} is not available from this deployment" if unknown else "no fields given",
                             f"choose from {probe['available']}")
    return list(dict.fromkeys(fields))


# -- sending ----------------------------------------------------------------------------------------
class _Runner:
    """Sends chunks with bounded concurrency through a ``Transport``; retries happen inside the
    transport (urllib3 or botocore), splitting on 4xx and the concurrency limit here."""

    def __init__(self, transport: Transport, fields: List[str], concurrency: int) -> None:
        self.transport = transport
        self.fields = fields
        self.concurrency = concurrency
        self.retries = 0
        self.throttled = 0
        self.down: Optional[str] = None  # set when the endpoint stopped answering: send nothing more
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="nimbus-batch")

    def run(self, chunks: List[_Chunk]) -> Any:
        """Yield chunks as they finish (in any order).

        In flight: at most ``concurrency``, halved whenever a chunk met throttling and grown back by
        one per clean chunk (AIMD, as TCP does), so a saturated endpoint is not hammered.
        """
        queue = list(reversed(chunks))
        running: Dict[Future, _Chunk] = {}
        limit = self.concurrency
        while queue or running:
            while queue and len(running) < limit:
                chunk = queue.pop()
                running[self._pool.submit(self._send_chunk, chunk)] = chunk
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = running.pop(future)
                future.result()
                limit = max(1, limit // 2) if chunk.throttled else min(self.concurrency, limit + 1)
                yield chunk

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()

    def _send_chunk(self, chunk: _Chunk) -> None:
        chunk.outcomes = self._send(chunk.texts, chunk)

    def _send(self, texts: List[str], chunk: _Chunk) -> List[Dict[str, Any]]:
        if self.down:
            chunk.complete = False
            return [{"error": f"not sent: {self.down}; run the batch again to send it"} for _ in texts]
        body = json.dumps({"texts": texts, "fields": self.fields}, ensure_ascii=False).encode("utf-8")
        try:
            reply = self.transport.request("POST", "/predict", body)
        except TransportDown as exc:
            self._count(exc.retries, 0)
            self.down = exc.what
            chunk.complete = False
            error = exc.what + (f" after {exc.retries} retries" if exc.retries else "") + (f"; {exc.todo}" if exc.todo else "")
            return [{"error": error} for _ in texts]
        self._count(reply.retries, reply.throttled)
        chunk.retries += reply.retries
        chunk.throttled += reply.throttled
        if reply.status == 200:
            results = reply.payload.get("results", []) if isinstance(reply.payload, dict) else []
            if len(results) == len(texts):
                outcomes = [_outcome(r) for r in results]
                if any("error" in o for o in outcomes):
                    chunk.complete = False  # a pipeline exception may not happen again: re-run it on resume
                return outcomes
            return [{"error": f"the endpoint returned {len(results)} results for {len(texts)} texts"} for _ in texts]
        if reply.status in RETRIABLE:
            chunk.complete = False
            return [{"error": f"gave up after {reply.retries} retries: {reply.status} {reply.message}"} for _ in texts]
        if len(texts) > 1:  # bad input somewhere in here: find the row(s) by halving
            half = len(texts) // 2
            return self._send(texts[:half], chunk) + self._send(texts[half:], chunk)
        return [{"error": f"{reply.status}: {reply.message}"}]

    def _count(self, retries: int, throttled: int) -> None:
        if retries or throttled:
            with self._lock:
                self.retries += retries
                self.throttled += throttled


def _outcome(result: Any) -> Dict[str, Any]:
    """One row of a 200 answer: its fields, or its own error (``{"error": {"type", "message"}}``)."""
    error = result.get("error") if isinstance(result, dict) and len(result) == 1 else None
    if isinstance(error, dict):
        kind, message = error.get("type") or "Error", error.get("message") or ""
        return {"error": f"{kind}: {message}" if message else str(kind)}
    return {"result": result}


# -- output -----------------------------------------------------------------------------------------
def _place(outcomes: List[Optional[Dict[str, Any]]], chunk: _Chunk) -> None:
    for position, outcome in zip(chunk.positions, chunk.outcomes):
        outcomes[position] = outcome


def _progress_bar(total: int, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", desc=f"nimbus {name}", smoothing=0.1)


def _frame(pd: Any, index: Any, values: List[Any], outcomes: List[Optional[Dict[str, Any]]], fields: List[str]) -> Any:
    columns = ["text"] + [c for f in fields for c in FIELD_COLUMNS.get(f, [f])] + ["error"]
    rows = []
    for value, outcome in zip(values, outcomes):
        outcome = outcome or {"error": "no result (internal error: please report)"}
        row: Dict[str, Any] = {"text": value, "error": outcome.get("error", "")}
        result = outcome.get("result") or {}
        for f in fields:
            if f == "cats":
                cats = result.get("cats")
                row["cats"] = cats
                if cats:
                    row["label"], row["score"] = max(cats.items(), key=lambda kv: kv[1])
                else:
                    row["label"], row["score"] = None, float("nan")
            else:
                row[f] = result.get(f)
        rows.append(row)
    return pd.DataFrame(rows, index=index, columns=columns)
