"""Score many texts through a deployment: chunked under the payload limit, concurrent, retried,
in order, checkpointed. Every input row gets exactly one result or one error.

The HTTP side is ``requests`` with urllib3's ``Retry`` (exponential backoff with jitter on 429, 5xx and
connection errors only). A 4xx names bad input: a chunk that gets one is split in halves until the
bad row is alone, so one bad text fails only its own row.
"""
from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .checkpoints import CheckpointStore, chunk_key
from .deployment import Deployment
from .errors import EndpointError, UserInputError
from .registry import Registry
from .runtime.limits import API_GATEWAY_TIMEOUT_SECONDS, MAX_PAYLOAD_BYTES

RETRIABLE = (429, 500, 502, 503, 504)
_REQUEST_BUDGET = MAX_PAYLOAD_BYTES - 4096  # room for the envelope around the texts
FIELD_COLUMNS = {"ents": ["ents"], "cats": ["cats", "label", "score"], "tokens": ["tokens"], "sents": ["sents"], "spans": ["spans"]}


@dataclass
class BatchSummary:
    rows: int
    seconds: float
    failed: int
    retries: int
    chunks: int
    chunks_reused: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        return (f"{self.rows:,} rows in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s): "
                f"{self.failed:,} failed, {self.retries:,} retries, {self.chunks_reused:,} of {self.chunks:,} chunks reused")


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
) -> Any:
    """Score ``texts`` (a Series, a list, or a DataFrame with ``column``) through ``deployment``.

    Returns a DataFrame with the input's index, the text, one column per field and an ``error``
    column ("" on success). Its ``attrs["nimbus"]`` holds the run's ``BatchSummary``.
    """
    import pandas as pd

    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise UserInputError(f"chunk_size must be a whole number of at least 1, not {chunk_size!r}", "e.g. chunk_size=64")
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        raise UserInputError(f"concurrency must be a whole number of at least 1, not {concurrency!r}", "e.g. concurrency=4")
    index, values = _rows(texts, column)
    registry = registry or Registry()
    target = _ready_deployment(deployment, registry)
    probe = _preflight(target)
    fields = _fields(fields, probe)
    outcomes, positions = _validate(values)
    chunks = _chunks(positions, values, chunk_size)
    store = CheckpointStore(registry.home / "checkpoints.sqlite")
    store.prune()
    started = time.perf_counter()
    runner = _Runner(target, fields, concurrency or probe["concurrency"], retries)
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
                           runner.retries, len(chunks), reused)
    frame = _frame(pd, index, values, outcomes, fields)
    frame.attrs["nimbus"] = summary
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
    if isinstance(texts, dict) or not hasattr(texts, "__iter__"):
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
def _ready_deployment(deployment: Any, registry: Registry) -> Deployment:
    from .api import get_deployment

    name = deployment.name if isinstance(deployment, Deployment) else deployment
    if not isinstance(name, str):
        raise UserInputError(f"deployment must be a name or a Deployment, not {type(deployment).__name__}", "e.g. deployment='reviews'")
    live = get_deployment(name, registry)
    if live.status != "ready":
        raise EndpointError(f"deployment {name!r} is {live.status}: {live.detail}",
                            f"restart it with %nimbus_deploy PIPELINE --name {name}; no row was sent", where="batch")
    return live


def _preflight(d: Deployment) -> Dict[str, Any]:
    """One call that must work before any row is sent: health, the key, the fields on offer."""
    session = requests.Session()
    try:
        health = session.get(f"{d.url}/health", timeout=10).json()
        answer = session.get(f"{d.url}/openapi.json", headers={"x-api-key": d.api_key}, timeout=10)
    except (requests.RequestException, ValueError) as exc:
        raise EndpointError(f"deployment {d.name!r} does not answer at {d.url} ({type(exc).__name__})",
                            f"check it with %nimbus_status {d.name}; no row was sent", where="batch")
    finally:
        session.close()
    if answer.status_code in (401, 403):
        raise EndpointError(f"the endpoint of {d.name!r} refused the API key", "deploy again to refresh the key file; no row was sent", where="batch")
    if answer.status_code != 200:
        raise EndpointError(f"the endpoint of {d.name!r} answered {answer.status_code} to a check", f"see %nimbus_status {d.name}", where="batch")
    spec = answer.json()
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
    """Sends chunks with bounded concurrency; retries happen inside urllib3, splitting on 4xx here."""

    def __init__(self, d: Deployment, fields: List[str], concurrency: int, retries: int) -> None:
        self.url = f"{d.url}/predict"
        self.key = d.api_key
        self.fields = fields
        self.concurrency = concurrency
        # Throttling and 5xx are waited out patiently; a refused or broken connection (the server is
        # gone) gets a few quick tries, then the batch stops sending and says how to resume.
        self.retry = Retry(total=None, connect=3, read=3, status=retries, other=0,
                           backoff_factor=0.1, backoff_max=10.0, backoff_jitter=0.1,
                           status_forcelist=RETRIABLE, allowed_methods=None, raise_on_status=False,
                           respect_retry_after_header=False)
        self.retries = 0
        self.down: Optional[str] = None  # set when the endpoint stopped answering: send nothing more
        self._local = threading.local()
        self._sessions: List[requests.Session] = []
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
        for session in self._sessions:
            session.close()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=self.retry, pool_maxsize=2))
            session.mount("https://", HTTPAdapter(max_retries=self.retry, pool_maxsize=2))
            session.headers.update({"x-api-key": self.key, "Content-Type": "application/json"})
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _send_chunk(self, chunk: _Chunk) -> None:
        chunk.outcomes = self._send(chunk.texts, chunk)

    def _send(self, texts: List[str], chunk: _Chunk) -> List[Dict[str, Any]]:
        if self.down:
            chunk.complete = False
            return [{"error": f"not sent: {self.down}; run the batch again to send it"} for _ in texts]
        body = json.dumps({"texts": texts, "fields": self.fields}, ensure_ascii=False).encode("utf-8")
        try:
            response = self._session().post(self.url, data=body, timeout=API_GATEWAY_TIMEOUT_SECONDS + 30)
        except requests.RequestException as exc:
            self._count(self.retry.connect or 0)
            self.down = f"the endpoint stopped answering ({type(exc).__name__})"
            chunk.complete = False
            return [{"error": f"{self.down} after {self.retry.connect} retries"} for _ in texts]
        history = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
        self._count(len(history))
        chunk.retries += len(history)
        chunk.throttled += sum(1 for h in history if h.status == 429)
        if response.status_code == 200:
            results = response.json().get("results", [])
            if len(results) == len(texts):
                return [{"result": r} for r in results]
            return [{"error": f"the endpoint returned {len(results)} results for {len(texts)} texts"} for _ in texts]
        message = _message(response)
        if response.status_code in RETRIABLE:
            chunk.complete = False
            return [{"error": f"gave up after {len(history)} retries: {response.status_code} {message}"} for _ in texts]
        if len(texts) > 1:  # bad input somewhere in here: find the row(s) by halving
            half = len(texts) // 2
            return self._send(texts[:half], chunk) + self._send(texts[half:], chunk)
        return [{"error": f"{response.status_code}: {message}"}]

    def _count(self, n: int) -> None:
        if n:
            with self._lock:
                self.retries += n


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except ValueError:
        return response.text[:300]


# -- output -----------------------------------------------------------------------------------------
def _place(outcomes: List[Optional[Dict[str, Any]]], chunk: _Chunk) -> None:
    for position, outcome in zip(chunk.positions, chunk.outcomes):
        outcomes[position] = outcome


def _progress_bar(total: int, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", desc=f"nimbus {name}", smoothing=0.1)


def _frame(pd: Any, index: Any, values: List[Any], outcomes: List[Optional[Dict[str, Any]]], fields: List[str]) -> Any:
    columns = ["text"] + [c for f in fields for c in FIELD_COLUMNS[f]] + ["error"]
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
