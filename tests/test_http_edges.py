"""The local server's HTTP edges, against a real server: every refusal reaches the client (a 7 MB POST
through ``requests`` and ``urllib`` reads the 413 JSON, never a reset; early 401 and 429 answers to large
bodies likewise), idle, slow-head and slow-body connections close after bounded timeouts, and a head over
10,240 bytes gets a 431. Raw sockets for the timing and size edges. The server's bounds are shortened
for the test through its ``NIMBUS_HTTP_*`` variables; no assertion is on speed, only on bounds."""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import nimbus_jupyter as nj
from pipelines import gate_pipeline

HEAD_TIMEOUT, KEEPALIVE_TIMEOUT, BODY_TIMEOUT = 1.0, 1.5, 1.0
SLACK = 3.0  # on a loaded 2-core machine: the bound checked is timeout + SLACK, never a speed
BIG = b'{"texts": ["' + b"word " * 1_400_000 + b'"]}'  # 7 MB


@pytest.fixture(scope="module")
def edge(nimbus_home):
    settings = {"NIMBUS_HTTP_HEAD_TIMEOUT": HEAD_TIMEOUT, "NIMBUS_HTTP_KEEPALIVE_TIMEOUT": KEEPALIVE_TIMEOUT,
                "NIMBUS_HTTP_BODY_TIMEOUT": BODY_TIMEOUT}
    old = {k: os.environ.get(k) for k in settings}
    os.environ.update({k: str(v) for k, v in settings.items()})
    try:  # the detached server reads them at its start
        d = nj.deploy(gate_pipeline(), "edges", workers=1, max_queue=0, samples=["fine"], show=False)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return d


def port_of(d) -> int:
    return int(d.url.rsplit(":", 1)[1])


def headers(d, key=None):
    return {"x-api-key": d.api_key if key is None else key, "Content-Type": "application/json"}


def raw_exchange(d, data: bytes, wait: float):
    """Send ``data`` on a fresh connection; read until the server closes (or ``wait`` s pass).
    Returns (bytes received, seconds until the server closed or None if it did not)."""
    with socket.create_connection(("127.0.0.1", port_of(d)), timeout=wait) as sock:
        start = time.monotonic()
        if data:
            sock.sendall(data)
        got = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return got, time.monotonic() - start
                got += chunk
        except socket.timeout:
            return got, None
        except ConnectionResetError:
            return got, time.monotonic() - start


def parse(answer: bytes):
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else None


# -- refusals that reach the client ---------------------------------------------------------------------
def test_a_7mb_post_through_requests_reads_the_413_json(edge):
    answer = requests.post(f"{edge.url}/predict", data=BIG, headers=headers(edge), timeout=60)
    assert answer.status_code == 413 and answer.json()["error"] == "payload_too_large"
    chunked = requests.post(f"{edge.url}/predict", data=iter([BIG[i:i + 65536] for i in range(0, len(BIG), 65536)]),
                            headers=headers(edge), timeout=60)  # no Content-Length: refused once 6 MB are read
    assert chunked.status_code == 413 and chunked.json()["error"] == "payload_too_large"


def test_a_7mb_post_through_urllib_reads_the_413_json(edge):
    request = urllib.request.Request(f"{edge.url}/predict", data=BIG, headers=headers(edge), method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413 and json.loads(refused.value.read())["error"] == "payload_too_large"


@pytest.mark.parametrize("client", ["requests", "urllib"])
def test_a_wrong_key_on_a_7mb_body_reads_the_401_json(edge, client):
    if client == "requests":
        answer = requests.post(f"{edge.url}/predict", data=BIG, headers=headers(edge, "nmb_wrong"), timeout=60)
        status, payload = answer.status_code, answer.json()
    else:
        request = urllib.request.Request(f"{edge.url}/predict", data=BIG, headers=headers(edge, "nmb_wrong"), method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        status, payload = refused.value.code, json.loads(refused.value.read())
    assert status == 401 and payload["error"] == "unauthorized"


def test_a_7mb_body_to_a_busy_server_reads_the_429_json(edge, tmp_path):
    opened = tmp_path / "open"
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(requests.post, f"{edge.url}/predict", json={"texts": [f"WAIT:{opened}"]},
                           headers=headers(edge), timeout=60)
        deadline = time.monotonic() + 30
        while requests.get(f"{edge.url}/health", timeout=5).json()["workers"]["busy"] != 1:
            assert time.monotonic() < deadline, "the held request never reached the worker"
            time.sleep(0.01)
        answer = requests.post(f"{edge.url}/predict", data=BIG, headers=headers(edge), timeout=60)
        opened.touch()
        assert held.result().status_code == 200
    assert answer.status_code == 429 and answer.json()["error"] == "throttled" and answer.headers["Retry-After"] == "1"


def test_a_refused_small_body_keeps_the_connection_for_the_next_request(edge):
    with requests.Session() as session:
        first = session.post(f"{edge.url}/predict", json={"texts": ["x"]}, headers=headers(edge, "nmb_wrong"), timeout=10)
        second = session.post(f"{edge.url}/predict", json={"texts": ["fine"]}, headers=headers(edge), timeout=10)
    assert (first.status_code, second.status_code) == (401, 200)
    assert "close" not in first.headers.get("Connection", "")


def test_expect_100_continue_is_honoured_and_a_refusal_does_not_ask_for_the_body(edge):
    body = b'{"texts": ["fine"]}'
    head = ("POST /predict HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port_of(edge)), timeout=10) as sock:
        sock.sendall(head.format(key=edge.api_key).encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")  # asked for the body: send it
        sock.sendall(body)
        got = b""
        while b'"errors"' not in got:
            got += sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200 ")
    got, closed_after = raw_exchange(edge, head.format(key="nmb_wrong").encode(), wait=10)
    assert parse(got)[0] == 401 and b"100 Continue" not in got and closed_after is not None


def test_pipelined_requests_are_answered_in_order(edge):
    one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    got, closed_after = raw_exchange(edge, one + one + last, wait=10)
    assert got.count(b"HTTP/1.1 200 ") == 3 and closed_after is not None


# -- bounded timeouts ------------------------------------------------------------------------------------
def test_an_idle_connection_is_closed_after_the_head_timeout(edge):
    got, closed_after = raw_exchange(edge, b"", wait=HEAD_TIMEOUT + SLACK + 5)
    assert closed_after is not None and HEAD_TIMEOUT * 0.9 <= closed_after <= HEAD_TIMEOUT + SLACK
    assert got == b""  # nothing was asked: closed without an answer


def test_a_half_sent_head_gets_a_408_json_and_is_closed(edge):
    got, closed_after = raw_exchange(edge, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty", wait=HEAD_TIMEOUT + SLACK + 5)
    assert closed_after is not None and closed_after <= HEAD_TIMEOUT + SLACK
    status, payload = parse(got)
    assert status == 408 and payload["error"] == "request_timeout"


def test_a_stalled_body_gets_a_408_json_and_is_closed(edge):
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nx-api-key: {edge.api_key}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n").encode()
    got, closed_after = raw_exchange(edge, head + b'{"texts": ["', wait=BODY_TIMEOUT + SLACK + 5)
    assert closed_after is not None and closed_after <= BODY_TIMEOUT + SLACK
    status, payload = parse(got)
    assert status == 408 and payload["error"] == "request_timeout"


def test_a_kept_alive_connection_that_idles_is_closed_after_the_keepalive_timeout(edge):
    with socket.create_connection(("127.0.0.1", port_of(edge)), timeout=KEEPALIVE_TIMEOUT + SLACK + 5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += sock.recv(65536)
        head, _, body = got.partition(b"\r\n\r\n")
        length = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][0])
        while len(body) < length:
            body += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["status"] == "ok"
        start = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server, not by our timeout
        assert KEEPALIVE_TIMEOUT * 0.9 <= time.monotonic() - start <= KEEPALIVE_TIMEOUT + SLACK


# -- heads over the bound ---------------------------------------------------------------------------------
@pytest.mark.parametrize("complete", [True, False], ids=["complete-12kb-head", "unfinished-64kb-head"])
def test_a_head_over_10240_bytes_gets_a_431_json(edge, complete):
    size = 12_000 if complete else 64_000
    data = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + (b"\r\n\r\n" if complete else b"")
    got, closed_after = raw_exchange(edge, data, wait=HEAD_TIMEOUT + SLACK + 5)
    status, payload = parse(got)
    assert status == 431 and payload["error"] == "headers_too_large" and "10,240 bytes" in payload["message"]
    assert closed_after is not None


def test_the_server_is_healthy_after_the_edges(edge):
    health = requests.get(f"{edge.url}/health", timeout=5).json()
    assert health["status"] == "ok" and health["workers"]["replaced"] == 0
    assert not [code for code in health["requests"] if code.startswith("5")], health["requests"]
