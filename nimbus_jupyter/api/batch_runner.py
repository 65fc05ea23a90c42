"""Sending a batch's chunks through the one ``EndpointClient``: bounded concurrency (AIMD on throttles),
requests sized to the measured time per text, splitting on 4xx, and stopping -- never mixing -- when
the endpoint is gone, serves another version, or cannot give a field.

What the client decides (retries, the deadline, never resending a POST that may have run) is the
client's; this module decides what a chunk's rows get from each ``Outcome``.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

from ..endpoint.client import DOWN, FAILED, MOVED, OK, REFUSED, UNAVAILABLE, EndpointClient, Outcome, Pin

REQUEST_SHARE_OF_LIMIT = 0.25  # one request is sized to take at most this share of its transport's time limit


@dataclass
class Chunk:
    """Consecutive rows saved together (the unit of checkpoints); sent as one or more requests."""

    positions: List[int]
    texts: List[str]
    key: str = ""
    outcomes: List[Dict[str, Any]] = field(default_factory=list)  # {"result": {...}} or {"error": "..."}
    retries: int = 0
    throttled: int = 0  # 429s met on the way (the runner halves its concurrency when it sees them)
    complete: bool = True  # False when a row failed for a reason a re-run may not meet again
    answered: int = 0  # rows the endpoint answered (a result or the row's own error); the rest were not sent
    version: str = ""  # the version that scored it
    answers: List[str] = field(default_factory=list)  # the JSON of its answers whose rows are all results, in row order
    answer_rows: int = 0  # rows those answers hold: all of the chunk's, or the checkpoint encodes its outcomes
    compact: Optional[Dict[str, Any]] = None  # its rows as Arrow arrays (``ResultColumns.compact``), outcomes dropped


@dataclass
class Stop:
    """Why the runner stopped sending: the endpoint is gone, another version serves, or a field is missing."""

    kind: str  # down | moved | unavailable
    what: str
    todo: str = ""
    serving: Optional[Pin] = None


class Timing:
    """Seconds per text, measured from answers (an exponentially weighted mean; a timeout counts as a
    lower bound), so that a request stays well under its transport's time limit."""

    def __init__(self, seconds_per_text: Optional[float] = None, weight: float = 0.3) -> None:
        self.seconds_per_text = seconds_per_text
        self.weight = weight
        self._lock = threading.Lock()

    def observe(self, seconds: float, texts: int, lower_bound: bool = False) -> None:
        if texts <= 0 or seconds <= 0:
            return
        sample = seconds / texts
        with self._lock:
            if self.seconds_per_text is None:
                self.seconds_per_text = sample
            elif lower_bound:
                self.seconds_per_text = max(self.seconds_per_text, sample)
            else:
                self.seconds_per_text += self.weight * (sample - self.seconds_per_text)

    def texts_within(self, seconds: float, most: int) -> int:
        """How many texts fit in ``seconds`` (at least 1, at most ``most``)."""
        per = self.seconds_per_text
        if not per:
            return most
        return max(1, min(most, int(seconds / per)))


class Runner:
    """Sends chunks with bounded concurrency through one client."""

    def __init__(self, client: EndpointClient, fields: List[str], concurrency: int, timing: Timing,
                 request_timeout: float, finish: Optional[Callable[[Chunk], None]] = None) -> None:
        self.client = client
        self.finish = finish  # called on each scored chunk in its worker thread (e.g. to make its rows compact)
        self.fields = fields
        self.concurrency = concurrency
        self.timing = timing
        self.request_timeout = request_timeout  # each request's deadline, its retries included
        transport = client.transport
        self.request_seconds = REQUEST_SHARE_OF_LIMIT * min(transport.time_limit, request_timeout)
        self.retries = 0
        self.throttled = 0
        self.requests = 0
        self.timed_out = 0
        self.stop: Optional[Stop] = None  # once set, nothing more is sent
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="nimbus-batch")

    def run(self, chunks: List[Chunk]) -> Iterator[Chunk]:
        """Yield chunks as they finish (in any order), the ones never sent after a stop included. ``chunks`` is
        taken over (emptied): a chunk handed out is referenced by nothing here, so once the caller has placed
        it, its rows' objects are freed with it.

        In flight: at most ``concurrency``, halved whenever a chunk met throttling and grown back by
        one per clean chunk (AIMD, as TCP does), so a saturated endpoint is not hammered.
        """
        queue = chunks
        queue.reverse()
        running: Dict[Future, Chunk] = {}
        limit = self.concurrency
        while queue or running:
            while queue and len(running) < limit:
                chunk = queue.pop()
                if self.stop:
                    chunk.outcomes = self._not_sent(chunk, chunk.texts)
                    yield chunk
                    continue
                running[self._pool.submit(self._score, chunk)] = chunk
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = running.pop(future)
                future.result()
                limit = max(1, limit // 2) if chunk.throttled else min(self.concurrency, limit + 1)
                # Refill before handing the chunk over: the caller's work on it (saving, placing) must not
                # leave the endpoint idle. Done chunks come in bursts; refilled only after the whole
                # burst, 1,000 slots drained to none in flight (bench/lambda_scale.py).
                while queue and len(running) < limit and not self.stop:
                    waiting = queue.pop()
                    running[self._pool.submit(self._score, waiting)] = waiting
                yield chunk

    def close(self, wait: bool = False) -> None:
        """Stop the threads and close the client. ``wait`` (every chunk done): until the threads have exited,
        so their stacks (about 0.1 GB for 1,000) are given back before the DataFrame is built."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self.client.close()

    # -- one chunk -----------------------------------------------------------------------------------
    def _score(self, chunk: Chunk) -> None:
        """The chunk's rows in order, as requests sized to the measured time per text."""
        outcomes: List[Dict[str, Any]] = []
        done = 0
        while done < len(chunk.texts):
            if self.stop:
                outcomes += self._not_sent(chunk, chunk.texts[done:])
                break
            size = self.timing.texts_within(self.request_seconds, len(chunk.texts) - done)
            outcomes += self._send(chunk.texts[done:done + size], chunk)
            done += size
        chunk.outcomes = outcomes
        if self.finish:
            self.finish(chunk)

    def _send(self, texts: List[str], chunk: Chunk) -> List[Dict[str, Any]]:
        if self.stop:
            return self._not_sent(chunk, texts)
        outcome = self.client.send_predict(texts, self.fields, timeout=self.request_timeout)
        self._count(outcome)
        chunk.retries += outcome.retries
        chunk.throttled += outcome.throttled
        if outcome.kind == OK:
            self.timing.observe(outcome.seconds, len(texts))
            chunk.answered += len(texts)
            chunk.version = outcome.serving.version if outcome.serving else chunk.version
            rows = [_row(r) for r in outcome.results]
            if any("error" in o for o in rows):
                chunk.complete = False  # a pipeline exception may not happen again: re-run it on resume
            elif outcome.text:
                chunk.answers.append(outcome.text)  # saved as it came: no second encoding of the rows
                chunk.answer_rows += len(rows)
            return rows
        if outcome.kind in (MOVED, UNAVAILABLE, DOWN):
            self._halt(outcome)
            return self._not_sent(chunk, texts)
        if outcome.kind == FAILED:
            chunk.complete = False
            if outcome.timed_out:
                self.timing.observe(outcome.seconds or self.request_timeout, len(texts), lower_bound=True)
                with self._lock:
                    self.timed_out += 1
            chunk.answered += len(texts)  # an answer of sorts: the rows have their error, the bar moves on
            return [{"error": outcome.message} for _ in texts]
        assert outcome.kind == REFUSED
        if len(texts) > 1:  # bad input somewhere in here (or an answer too large): halve until it is alone
            half = len(texts) // 2
            return self._send(texts[:half], chunk) + self._send(texts[half:], chunk)
        chunk.answered += 1
        return [{"error": f"{outcome.status}: {outcome.message}"}]

    def _halt(self, outcome: Outcome) -> None:
        with self._lock:
            if self.stop is not None:
                return
            if outcome.kind == MOVED:
                self.stop = Stop("moved", outcome.message, serving=outcome.serving)
            elif outcome.kind == UNAVAILABLE:
                self.stop = Stop("unavailable", outcome.message)
            else:
                self.stop = Stop("down", outcome.message, outcome.todo)

    def _not_sent(self, chunk: Chunk, texts: List[str]) -> List[Dict[str, Any]]:
        chunk.complete = False
        stop = self.stop
        reason = {"moved": "the deployment changed version during this batch",
                  "unavailable": "the endpoint cannot give a requested field"}.get(stop.kind, stop.what) if stop else "stopped"
        return [{"error": f"not sent: {reason}; run the batch again to send it", "not_sent": True} for _ in texts]

    def _count(self, outcome: Outcome) -> None:
        with self._lock:
            self.requests += 1
            self.retries += outcome.retries
            self.throttled += outcome.throttled


def _row(result: Any) -> Dict[str, Any]:
    """One row of a 200 answer: its fields, or its own error (``{"error": {"type", "message"}}``)."""
    error = result.get("error") if isinstance(result, dict) and len(result) == 1 else None
    if isinstance(error, dict):
        kind, message = error.get("type") or "Error", error.get("message") or ""
        return {"error": f"{kind}: {message}" if message else str(kind)}
    return {"result": result}
