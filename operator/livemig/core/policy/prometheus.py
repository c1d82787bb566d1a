"""`spec.prometheus`: where this policy's metrics come from when not from the operator's defaults (URL, timeout, how
old a sample may be, and PromQL overrides of each query livemig runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livemig.core.policy.reader import SECONDS_PER_HOUR, URL_RE, Reader
from livemig.core.policy.spec import PrometheusOverrides, PrometheusQueries

_QUERY_FIELDS = {
    "nodeCpuUtilization": "node_cpu_utilization",
    "nodeMemoryUtilization": "node_memory_utilization",
    "nodeCpuPressure": "node_cpu_pressure",
    "nodeMemoryPressure": "node_memory_pressure",
    "nodeIoPressure": "node_io_pressure",
    "vmiCpuUsage": "vmi_cpu_usage",
    "vmiMemoryUsage": "vmi_memory_usage",
    "vmiDirtyRate": "vmi_dirty_rate",
}


def read_prometheus(r: Reader, spec: Mapping[str, Any], path: str) -> PrometheusOverrides | bool | None:
    where = f"{path}.prometheus"
    raw = r.section(spec, "prometheus", path, ("url", "timeout", "maxAge", "queries"))
    if raw is None:
        return None if spec.get("prometheus") is None else False
    url = r.string(raw, "url", where, max_length=2048, pattern=URL_RE, pattern_hint="an http:// or https:// URL")
    timeout = r.duration(
        raw,
        "timeout",
        where,
        default="10s",
        maximum_s=300.0,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 5m",
    )
    max_age = r.duration(
        raw,
        "maxAge",
        where,
        default="2m",
        maximum_s=SECONDS_PER_HOUR,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 1h",
    )
    queries: dict[str, str | None] = {}
    bad_query = False
    queries_raw = r.section(raw, "queries", where, tuple(_QUERY_FIELDS), default_empty=True)
    if queries_raw is None:
        bad_query = True
    else:
        for camel, snake in _QUERY_FIELDS.items():
            queries[snake] = r.string(queries_raw, camel, f"{where}.queries", min_length=1, max_length=4096)
            bad_query |= queries_raw.get(camel) is not None and queries[snake] is None
    if (raw.get("url") is not None and url is None) or timeout is None or max_age is None or bad_query:
        return False
    return PrometheusOverrides(url=url, timeout_s=timeout, max_age_s=max_age, queries=PrometheusQueries(**queries))
