"""Prometheus behind one small adapter: `prometheus-api-client` for the HTTP API, `tenacity` for retries.

The client is synchronous (requests); the operator calls `answer()` through `asyncio.to_thread`, so the event loop
never blocks on Prometheus.  Every query has a timeout (sent to Prometheus as its own query timeout too) and is
retried with exponential backoff on connection errors and 5xx answers, never on 4xx (a bad query stays bad).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from urllib3.util.retry import Retry

from livemig.core.queries import PlannedQuery, QueryAnswer, Sample

log = logging.getLogger(__name__)
#: How long an answer is reused (a cycle of several policies asks the same built-in queries).
CACHE_S = 2.0


class PrometheusQueryError(Exception):
    """A query that failed after its retries; the message says why in one line."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.RequestException):
        return True
    if isinstance(exc, PrometheusApiClientException):
        return "HTTP Status Code 5" in str(exc) or "HTTP Status Code 429" in str(exc)
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.5  # first wait; doubles per attempt
    max_backoff_s: float = 4.0


class PrometheusClient:
    """Instant queries against one Prometheus, each bounded by `timeout_s` and retried per `retry`."""

    def __init__(
        self, url: str, timeout_s: float, retry: RetryPolicy = RetryPolicy(), cache_s: float = CACHE_S
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._retry = retry
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, list[Sample]]] = {}
        # The library's own urllib3 retries are off: tenacity decides, once, with backoff.
        self._connect = PrometheusConnect(url=self.url, retry=Retry(total=0, raise_on_status=False), timeout=timeout_s)

    def vector(self, promql: str) -> list[Sample]:
        """The instant vector `promql` evaluates to now.  Raises PrometheusQueryError after the retries.

        Policies evaluated within `cache_s` of each other share an answer (the built-in queries are the same for
        every policy); errors are never cached."""
        cached = self._cache.get(promql)
        if cached is not None and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        samples = self._query(promql)
        self._cache[promql] = (time.monotonic(), samples)
        return samples

    def _query(self, promql: str) -> list[Sample]:
        retrying = Retrying(
            stop=stop_after_attempt(self._retry.attempts),
            wait=wait_exponential(multiplier=self._retry.backoff_s, max=self._retry.max_backoff_s),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    raw = self._connect.custom_query(promql, params={"timeout": f"{self.timeout_s:g}s"})
        except requests.RequestException as exc:
            # With the library's own retries off, urllib3 reports a read timeout as a ConnectionError.
            if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
                raise PrometheusQueryError(
                    f"timed out after {self.timeout_s:g}s ({self._retry.attempts} attempts)"
                ) from None
            raise PrometheusQueryError(f"cannot reach {self.url}: {type(exc).__name__}") from None
        except PrometheusApiClientException as exc:
            raise PrometheusQueryError(_short(str(exc))) from None
        return parse_vector(raw)

    def answer(self, query: PlannedQuery) -> QueryAnswer:
        try:
            samples = self.vector(query.promql)
            ages = self.vector(query.age_promql) if query.age_promql else []
        except PrometheusQueryError as exc:
            return QueryAnswer(query, error=str(exc))
        return QueryAnswer(query, samples, ages)

    async def answers(self, queries: Sequence[PlannedQuery]) -> list[QueryAnswer]:
        """All queries, concurrently, each in a worker thread."""
        return list(await asyncio.gather(*(asyncio.to_thread(self.answer, q) for q in queries)))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def parse_vector(raw: Any) -> list[Sample]:
    """Prometheus' `result` list of an instant vector as Samples ("NaN", "+Inf" become floats)."""
    if not isinstance(raw, list):
        raise PrometheusQueryError(f"expected an instant vector, got {type(raw).__name__}")
    out: list[Sample] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        metric, value = item.get("metric") or {}, item.get("value")
        if not isinstance(value, list | tuple) or len(value) != 2:
            continue
        try:
            number = float(value[1])
        except (TypeError, ValueError):
            number = math.nan
        out.append(Sample({str(k): str(v) for k, v in metric.items()}, number))
    return out


class PrometheusClients:
    """One client per (URL, timeout): the operator's default and each policy's `spec.prometheus` overrides."""

    def __init__(self, default_url: str | None, retry: RetryPolicy = RetryPolicy()) -> None:
        self.default_url = default_url
        self._retry = retry
        self._clients: dict[tuple[str, float], PrometheusClient] = {}

    def for_policy(self, url: str | None, timeout_s: float) -> PrometheusClient | None:
        chosen = url or self.default_url
        if not chosen:
            return None
        key = (chosen, timeout_s)
        if key not in self._clients:
            self._clients[key] = PrometheusClient(chosen, timeout_s, self._retry)
        return self._clients[key]
