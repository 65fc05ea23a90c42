"""The one EndpointClient's retry rules against a scripted HTTP server that counts what it receives:
what did not run is retried, 5xx a bounded number of times, and a POST that may have run (a read
timeout, a 504, a connection closed while waiting) is received exactly once."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List

import pytest

from nimbus_jupyter.endpoint.client import DOWN, FAILED, MOVED, OK, REFUSED, EndpointClient, Pin
from nimbus_jupyter.endpoint.transport import HttpTransport

ANSWER = {"results": [{"ents": []}], "fields": ["ents"], "version": "1", "hash": "h1", "errors": 0}


class Script:
    """What the server answers, one step per request received: (status, body) or "sleep:S" or "close"."""

    def __init__(self) -> None:
        self.steps: List[object] = []
        self.received = 0
        self.headers: List[dict] = []


@pytest.fixture()
def server() -> Iterator[tuple]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            script.received += 1
            script.headers.append(dict(self.headers))
            step = script.steps.pop(0) if script.steps else (200, ANSWER)
            if step == "close":
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(step, str) and step.startswith("sleep:"):
                time.sleep(float(step[6:]))
                step = (200, ANSWER)
            status, body = step  # type: ignore[misc]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(url: str, retries: int = 3, pin: Pin = None) -> EndpointClient:
    return EndpointClient(HttpTransport(url, "key"), retries=retries, pin=pin)


def test_an_answer_slower_than_the_deadline_is_received_once(server):
    url, script = server
    script.steps = ["sleep:1.0"]
    outcome = client(url).send_predict(["x"], ["ents"], timeout=0.3)
    time.sleep(0.9)
    assert script.received == 1 and outcome.kind == FAILED and outcome.timed_out and outcome.may_have_run
    assert "not sent again, as the endpoint may still be running it" in outcome.message


@pytest.mark.parametrize("step", [(504, {"message": "Endpoint request timed out"}), "close"])
def test_a_504_or_a_connection_closed_while_waiting_is_never_resent(server, step):
    url, script = server
    script.steps = [step]
    outcome = client(url).send_predict(["x"], ["ents"], timeout=5)
    assert script.received == 1 and outcome.kind == FAILED and outcome.may_have_run


def test_what_did_not_run_is_retried_and_5xx_a_bounded_number_of_times(server):
    url, script = server
    script.steps = [(503, {"message": "starting"}), (429, {"message": "throttled"}), (200, ANSWER)]
    outcome = client(url).send_predict(["x"], ["ents"], timeout=10)
    assert outcome.kind == OK and script.received == 3 and (outcome.retries, outcome.throttled) == (2, 1)
    script.received, script.steps = 0, [(500, {"message": "internal"})] * 10
    outcome = client(url, retries=2).send_predict(["x"], ["ents"], timeout=10)
    assert outcome.kind == FAILED and script.received == 3 and outcome.message.startswith("gave up after 2 retries: 500")


def test_a_4xx_is_the_rows_refusal_and_is_not_retried(server):
    url, script = server
    script.steps = [(413, {"error": "response_too_large", "message": "too big"})]
    outcome = client(url).send_predict(["x", "y"], ["ents"], timeout=5)
    assert outcome.kind == REFUSED and outcome.status == 413 and script.received == 1


def test_a_pinned_client_says_what_it_expects_and_never_takes_another_versions_answer(server):
    url, script = server
    pinned = client(url, pin=Pin("2", "h2"))
    script.steps = [(200, ANSWER)]  # an endpoint that ignores the headers, answering as v1
    outcome = pinned.send_predict(["x"], ["ents"], timeout=5)
    assert outcome.kind == MOVED and outcome.serving == Pin("1", "h1") and not outcome.results
    sent = {k.lower(): v for k, v in script.headers[-1].items()}
    assert sent["x-nimbus-expect-version"] == "2" and sent["x-nimbus-expect-hash"] == "h2"
    script.steps = [(409, {"error": "version_changed", "message": "serves v3", "serving": {"version": "3", "hash": "h3"}})]
    outcome = pinned.send_predict(["x"], ["ents"], timeout=5)
    assert outcome.kind == MOVED and outcome.serving == Pin("3", "h3") and script.received == 2


def test_nobody_listening_is_down_after_quick_tries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    outcome = client(f"http://127.0.0.1:{port}").send_predict(["x"], ["ents"], timeout=30)
    assert outcome.kind == DOWN and "stopped answering" in outcome.message and time.monotonic() - started < 5
