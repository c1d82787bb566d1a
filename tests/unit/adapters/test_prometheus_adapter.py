"""The Prometheus adapter against a tiny HTTP server on loopback: retries with backoff on 5xx and connection
errors, never on 4xx; a timeout per query; NaN and +Inf parsed as such; answers shared within the cache window."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from livemig.adapters.prometheus import PrometheusClient, PrometheusQueryError, RetryPolicy

FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.02)


class Script:
    """What the server answers, in order (the last answer repeats)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, object, float]] = []
        self.requests = 0

    def next(self) -> tuple[int, object, float]:
        self.requests += 1
        return self.answers[min(self.requests, len(self.answers)) - 1]


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, delay = script.next()
            time.sleep(delay)  # the slow Prometheus this answer plays
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()


def vector(*values: str) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"node": f"n{i}"}, "value": [1.0, v]} for i, v in enumerate(values)],
        },
    }


def test_retries_5xx_then_parses_nan_and_inf(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(503, {"status": "error"}, 0.0), (200, vector("0.5", "NaN", "+Inf"), 0.0)]
    samples = PrometheusClient(url, 2.0, FAST).vector("q")
    assert script.requests == 2
    assert samples[0].value == 0.5
    assert math.isnan(samples[1].value)
    assert samples[2].value == math.inf
    assert samples[0].labels == {"node": "n0"}


def test_a_bad_query_is_not_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(400, {"status": "error", "error": "parse error"}, 0.0)]
    with pytest.raises(PrometheusQueryError, match="400"):
        PrometheusClient(url, 2.0, FAST).vector("q(")
    assert script.requests == 1


def test_a_slow_prometheus_times_out_after_every_attempt(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, vector("1"), 1.0)]
    with pytest.raises(PrometheusQueryError, match=r"timed out after 0.2s \(3 attempts\)"):
        PrometheusClient(url, 0.2, FAST).vector("q")
    assert script.requests == 3


def test_unreachable_prometheus_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PrometheusQueryError, match=f"cannot reach http://127.0.0.1:{port}"):
        PrometheusClient(f"http://127.0.0.1:{port}", 1.0, FAST).vector("q")


def test_answers_are_shared_within_the_cache_window_and_errors_are_not(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, vector("1"), 0.0)]
    client = PrometheusClient(url, 2.0, FAST, cache_s=60.0)
    client.vector("q")
    client.vector("q")
    assert script.requests == 1
    client.vector("other")
    assert script.requests == 2
    fresh = PrometheusClient(url, 2.0, FAST, cache_s=0.0)
    fresh.vector("q")
    fresh.vector("q")
    assert script.requests == 4
