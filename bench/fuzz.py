"""Malformed input at scale (issue 6): the handler in-process with hypothesis, and a live local endpoint
fuzzed from its own OpenAPI document (schemathesis, positive and negative) and with raw HTTP.

Promise checked: 0 answers of 5xx, every 4xx a JSON {"error", "message"}, 0 dead or replaced workers,
and neither the key nor a request text in server.log. The generators are tests/fuzzing.py's, as in the
fast test. Run: python bench/fuzz.py [--handler N] [--schema N] [--raw N]  -> updates bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List

HOME = tempfile.mkdtemp(prefix="nimbus-fuzz-")
os.environ["NIMBUS_HOME"] = HOME  # before nimbus_jupyter is imported: never touch the user's registry
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

import requests  # noqa: E402
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

import nimbus_jupyter as nj  # noqa: E402
from _results import context, write_section  # noqa: E402
from fuzzing import check_handler_answer, check_http_answer, handler_events, is_parser_rejection, raw_requests  # noqa: E402
from nimbus_jupyter.core.bundle import build_bundle  # noqa: E402
from nimbus_jupyter.runtime import handler as runtime  # noqa: E402
from pipelines import textcat_pipeline  # noqa: E402

HEADING = "## Malformed input: fuzzing (issue 6)"


class Tally:
    def __init__(self, name: str) -> None:
        self.name, self.codes, self.problems, self.parser_rejections, self.seconds = name, Counter(), [], 0, 0.0

    @property
    def cases(self) -> int:
        return sum(self.codes.values())

    def row(self) -> str:
        fives = sum(n for c, n in self.codes.items() if c >= 500)
        fours = sum(n for c, n in self.codes.items() if 400 <= c < 500)
        top = ", ".join(f"{c}: {n:,}" for c, n in sorted(self.codes.items()))
        return (f"| {self.name} | {self.cases:,} | {fives} | {fours:,} | {len(self.problems)} | {self.parser_rejections} | "
                f"{self.seconds:.0f} s | {top} |")


def run(tally: Tally, strategy: Any, n: int, one: Callable[[Any], None]) -> None:
    @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.generate])
    @given(strategy)
    def case(value: Any) -> None:
        one(value)

    started = time.perf_counter()
    try:
        case()
    except Unsatisfiable:
        pass  # e.g. negative cases of an operation with nothing to negate
    tally.seconds += time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--handler", type=int, default=6000, help="handler events (in-process)")
    parser.add_argument("--schema", type=int, default=1000, help="schemathesis cases per operation and mode")
    parser.add_argument("--raw", type=int, default=2500, help="raw HTTP requests")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    nlp = textcat_pipeline()

    handler = Tally("handler, in-process (hypothesis events)")
    bundle = build_bundle(nlp, Path(HOME) / "bundle", "fuzz", namespace={})
    runtime.load(str(bundle.path))

    def handle(event: Dict[str, Any]) -> None:
        answer = runtime.handler(event, None)
        handler.codes[answer["statusCode"]] += 1
        problem = check_handler_answer(event, answer)
        if problem:
            handler.problems.append(problem)

    run(handler, handler_events(), args.handler, handle)

    d = nj.deploy(nlp, "fuzzed", workers=2, show=False)
    key, session = d.api_key, requests.Session()
    doc = session.get(f"{d.url}/openapi.json", headers={"x-api-key": key}, timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    tallies: List[Tally] = [handler]
    try:
        for operation in (op.ok() for op in schema.get_all_operations()):
            for mode in GenerationMode:
                tally = Tally(f"endpoint, schemathesis {mode.value}: {operation.method.upper()} {operation.path}")

                def call(case: Any, tally: Tally = tally) -> None:
                    response = case.call(base_url=d.url, session=session, headers={"x-api-key": key}, timeout=30)
                    tally.codes[response.status_code] += 1
                    problem = check_http_answer(case.method, response.status_code, response.content)
                    if problem:
                        tally.problems.append(f"{case.method} {case.path}: {problem}")

                n = args.schema if operation.path == "/predict" else max(50, args.schema // 10)
                run(tally, operation.as_strategy(generation_mode=mode), n, call)
                if tally.cases:
                    tallies.append(tally)

        raw = Tally("endpoint, raw HTTP (any method, path, key, content type, body)")

        def send(request: Any) -> None:
            method, path, headers, data = request
            response = session.request(method, d.url + path, headers=headers, data=data, timeout=30)
            raw.codes[response.status_code] += 1
            raw.parser_rejections += is_parser_rejection(response.status_code, response.content)
            problem = check_http_answer(method, response.status_code, response.content)
            if problem:
                raw.problems.append(f"{method} {path}: {problem}")

        run(raw, raw_requests(key), args.raw, send)
        tallies.append(raw)
        health = session.get(f"{d.url}/health", timeout=10).json()
        log = (Path(HOME) / "deployments" / "fuzzed" / "server.log").read_text("utf-8", "replace")
    finally:
        nj.destroy("fuzzed")

    total = sum(t.cases for t in tallies)
    fives = sum(n for t in tallies for c, n in t.codes.items() if c >= 500)
    problems = [p for t in tallies for p in t.problems]
    lines = context(load_before) + [
        "- pipeline: blank en + textcat (bag of words) + entity_ruler; local target, 2 workers; generators in tests/fuzzing.py",
        f"- server after the run: workers {json.dumps(health['workers'])}; /predict answers by status {json.dumps(health['requests'])}",
        f"- server.log: {len(log):,} bytes; contains the API key: {key in log}; contains 'Traceback': {'Traceback' in log}; "
        f"lines by kind: {json.dumps(Counter(line.strip()[:40] for line in log.splitlines() if line.strip()).most_common(4))}",
        "",
        "| source | cases | 5xx | 4xx | contract violations | parser rejections | time | status codes |",
        "|---|---|---|---|---|---|---|---|",
        *(t.row() for t in tallies),
        f"| **total** | **{total:,}** | **{fives}** | | **{len(problems)}** | | | |",
        "",
        "- 'contract violations': a 5xx, or a 4xx whose body is not JSON `{\"error\", \"message\"}`.",
        "- 'parser rejections': requests uvicorn's HTTP parser (httptools) refuses before the app sees them "
        "(a method token it does not know, e.g. `FOO`), answered with its own plain-text 400.",
        *(f"- problem: {p[:300]}" for p in problems[:10]),
    ]
    section = "\n".join([HEADING, "", *lines]).rstrip() + "\n"
    print("\n" + section)
    write_section(HEADING, section)
    ok = total >= 10_000 and not problems and health["workers"]["replaced"] == 0 and key not in log
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
