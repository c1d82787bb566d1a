"""The Prometheus queries a policy needs, and how their samples become node and VMI metrics.  Pure.

The adapter (`livemig.adapters.prometheus`) only runs PromQL; what to ask, which answers count, and what a bad
answer means live here.  A sample counts as unavailable when it is missing, NaN, infinite, negative, or older than
`spec.prometheus.maxAge` (built-in queries: the age of the underlying series, from a `timestamp()` query; overrides:
only what Prometheus returns, docs/operator.md).  Nothing from a policy's objects is interpolated into PromQL except
`$window`, which livemig formats itself from a parsed duration, so no name or label value can widen a query.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from livemig.core.evaluation import MetricsState
from livemig.core.inventory import NodeMetrics, VmiMetrics
from livemig.core.policy import Evacuation, LivemigPolicy
from livemig.core.vocabulary import Purpose


class QueryKey(StrEnum):
    """`spec.prometheus.queries` keys."""

    NODE_CPU_UTILIZATION = "nodeCpuUtilization"
    NODE_MEMORY_UTILIZATION = "nodeMemoryUtilization"
    NODE_CPU_PRESSURE = "nodeCpuPressure"
    NODE_MEMORY_PRESSURE = "nodeMemoryPressure"
    NODE_IO_PRESSURE = "nodeIoPressure"
    VMI_CPU_USAGE = "vmiCpuUsage"
    VMI_MEMORY_USAGE = "vmiMemoryUsage"
    VMI_DIRTY_RATE = "vmiDirtyRate"


NODE_KEYS = frozenset(
    {
        QueryKey.NODE_CPU_UTILIZATION,
        QueryKey.NODE_MEMORY_UTILIZATION,
        QueryKey.NODE_CPU_PRESSURE,
        QueryKey.NODE_MEMORY_PRESSURE,
        QueryKey.NODE_IO_PRESSURE,
    }
)


@dataclass(frozen=True, slots=True)
class Builtin:
    template: str
    series: str  # the underlying series, for the age check

    def age_query(self, by: str) -> str:
        return f"time() - max by ({by}) (timestamp({self.series}))"


BUILTIN: Mapping[QueryKey, Builtin] = {
    QueryKey.NODE_CPU_UTILIZATION: Builtin(
        '1 - sum by (node) (rate(node_cpu_seconds_total{mode="idle"}[$window]))'
        " / sum by (node) (rate(node_cpu_seconds_total[$window]))",
        'node_cpu_seconds_total{mode="idle"}',
    ),
    QueryKey.NODE_MEMORY_UTILIZATION: Builtin(
        "1 - max by (node) (node_memory_MemAvailable_bytes) / max by (node) (node_memory_MemTotal_bytes)",
        "node_memory_MemAvailable_bytes",
    ),
    QueryKey.NODE_CPU_PRESSURE: Builtin(
        "max by (node) (rate(node_pressure_cpu_waiting_seconds_total[$window]))",
        "node_pressure_cpu_waiting_seconds_total",
    ),
    QueryKey.NODE_MEMORY_PRESSURE: Builtin(
        "max by (node) (rate(node_pressure_memory_waiting_seconds_total[$window]))",
        "node_pressure_memory_waiting_seconds_total",
    ),
    QueryKey.NODE_IO_PRESSURE: Builtin(
        "max by (node) (rate(node_pressure_io_waiting_seconds_total[$window]))",
        "node_pressure_io_waiting_seconds_total",
    ),
    QueryKey.VMI_CPU_USAGE: Builtin(
        "max by (namespace, name) (rate(kubevirt_vmi_cpu_usage_seconds_total[$window]))",
        "kubevirt_vmi_cpu_usage_seconds_total",
    ),
    # KubeVirt's own recording rule vmi:kubevirt_vmi_memory_used_bytes:sum is available - usable.
    QueryKey.VMI_MEMORY_USAGE: Builtin(
        "max by (namespace, name) (kubevirt_vmi_memory_available_bytes - kubevirt_vmi_memory_usable_bytes)",
        "kubevirt_vmi_memory_available_bytes",
    ),
    QueryKey.VMI_DIRTY_RATE: Builtin(
        "max by (namespace, name) (kubevirt_vmi_dirty_rate_bytes_per_second)",
        "kubevirt_vmi_dirty_rate_bytes_per_second",
    ),
}

#: The rate window when the policy has no `spec.loadBalancing.averagingWindow`.
DEFAULT_WINDOW_S = 300.0


def format_duration(seconds: float) -> str:
    """A PromQL duration livemig writes itself (whole seconds, at least 1 s)."""
    return f"{max(1, round(seconds))}s"


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    """One query to run: what it measures, its PromQL, and (built-ins) the PromQL of its series' age."""

    key: str  # a QueryKey, or "healthQuery"
    promql: str
    age_promql: str | None
    by: tuple[str, ...]  # labels that identify a sample's node or VMI
    overridden: bool = False


def needed(policy: LivemigPolicy) -> tuple[tuple[QueryKey, ...], tuple[QueryKey, ...]]:
    """(required, optional) query keys for the policy's purpose.  Required inputs missing = no move (except for
    Maintenance, which has no required input: a monitoring outage must not block a node's maintenance)."""
    usage = (QueryKey.VMI_CPU_USAGE, QueryKey.VMI_MEMORY_USAGE)
    purpose = policy.purpose
    if purpose is Purpose.LOAD_BALANCING:
        lb = policy.load_balancing
        keys: list[QueryKey] = []
        if lb is not None:
            if lb.cpu is not None:
                keys.append(QueryKey.NODE_CPU_UTILIZATION)
            if lb.memory is not None:
                keys.append(QueryKey.NODE_MEMORY_UTILIZATION)
            p = lb.pressure
            if p is not None:
                keys += [
                    k
                    for k, t in (
                        (QueryKey.NODE_CPU_PRESSURE, p.cpu),
                        (QueryKey.NODE_MEMORY_PRESSURE, p.memory),
                        (QueryKey.NODE_IO_PRESSURE, p.io),
                    )
                    if t is not None
                ]
        return (*keys, *usage, QueryKey.VMI_DIRTY_RATE), ()
    if purpose is Purpose.CONSOLIDATION:
        nodes = (QueryKey.NODE_CPU_UTILIZATION, QueryKey.NODE_MEMORY_UTILIZATION)
        return (*nodes, *usage, QueryKey.VMI_DIRTY_RATE), ()
    if purpose is Purpose.EVACUATION:
        return (QueryKey.VMI_DIRTY_RATE,), (QueryKey.NODE_CPU_UTILIZATION, QueryKey.NODE_MEMORY_UTILIZATION, *usage)
    return (), (QueryKey.VMI_DIRTY_RATE, QueryKey.NODE_CPU_UTILIZATION, QueryKey.NODE_MEMORY_UTILIZATION, *usage)


def _override(policy: LivemigPolicy, key: QueryKey) -> str | None:
    if policy.prometheus is None:
        return None
    attr = {
        QueryKey.NODE_CPU_UTILIZATION: "node_cpu_utilization",
        QueryKey.NODE_MEMORY_UTILIZATION: "node_memory_utilization",
        QueryKey.NODE_CPU_PRESSURE: "node_cpu_pressure",
        QueryKey.NODE_MEMORY_PRESSURE: "node_memory_pressure",
        QueryKey.NODE_IO_PRESSURE: "node_io_pressure",
        QueryKey.VMI_CPU_USAGE: "vmi_cpu_usage",
        QueryKey.VMI_MEMORY_USAGE: "vmi_memory_usage",
        QueryKey.VMI_DIRTY_RATE: "vmi_dirty_rate",
    }[key]
    value = getattr(policy.prometheus.queries, attr)
    return value if isinstance(value, str) else None


def plan_queries(policy: LivemigPolicy) -> tuple[list[PlannedQuery], frozenset[str]]:
    """The queries for the policy, and which of their keys are required."""
    required, optional = needed(policy)
    window_s = policy.load_balancing.averaging_window_s if policy.load_balancing is not None else DEFAULT_WINDOW_S
    window = format_duration(window_s)
    out: list[PlannedQuery] = []
    for key in (*required, *optional):
        by = ("node",) if key in NODE_KEYS else ("namespace", "name")
        override = _override(policy, key)
        builtin = BUILTIN[key]
        template = override if override is not None else builtin.template
        out.append(
            PlannedQuery(
                key=str(key),
                promql=template.replace("$window", window),
                age_promql=None if override is not None else builtin.age_query(", ".join(by)),
                by=by,
                overridden=override is not None,
            )
        )
    if policy.evacuation is not None:
        ev = policy.evacuation
        out.append(PlannedQuery("healthQuery", ev.health_query.replace("$window", window), None, (ev.node_label,)))
    return out, frozenset({str(k) for k in required} | ({"healthQuery"} if policy.evacuation is not None else set()))


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """What running one PlannedQuery gave: samples (and ages), or the error."""

    query: PlannedQuery
    samples: Sequence[Sample] = ()
    ages: Sequence[Sample] = ()
    error: str | None = None


@dataclass
class Collected:
    nodes: dict[str, dict[str, float]] = field(default_factory=dict)  # node -> key -> value
    vmis: dict[str, dict[str, float]] = field(default_factory=dict)  # ns/name -> key -> value
    health: dict[str, float] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)  # key -> problems
    # A VMI query that answered for some expected VMIs but not all: the VMIs without a usable sample, and the
    # problems naming them.  Kept apart because a purpose may leave those VMIs in place instead of stopping.
    vmi_gaps: dict[str, set[str]] = field(default_factory=dict)
    gap_problems: dict[str, list[str]] = field(default_factory=dict)


def _usable(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _identity(labels: Mapping[str, str], by: tuple[str, ...]) -> str | None:
    values = [labels.get(k) for k in by]
    if any(not v for v in values):
        return None
    return "/".join(str(v) for v in values)


def collect(answers: Iterable[QueryAnswer], nodes: Iterable[str], vmis: Iterable[str], max_age_s: float) -> Collected:
    """Samples per node / VMI; each missing, NaN, negative, infinite or stale sample for an expected node or VMI is
    a problem naming the query.  `nodes`/`vmis` are the ones the policy needs values for."""
    expected_nodes, expected_vmis = sorted(set(nodes)), sorted(set(vmis))
    out = Collected()
    for answer in answers:
        q = answer.query
        problems = out.problems.setdefault(q.key, [])
        if answer.error is not None:
            problems.append(f"{q.key} ({q.promql}): {answer.error}")
            continue
        stale = {
            ident for s in answer.ages if (ident := _identity(s.labels, q.by)) and not (s.value <= max_age_s)
        }  # NaN ages are stale too
        values: dict[str, float] = {}
        bad: list[str] = []
        reported: set[str] = set()
        for sample in answer.samples:
            ident = _identity(sample.labels, q.by)
            if ident is None:
                continue
            if not _usable(sample.value):
                bad.append(f"{ident}={sample.value}")
                reported.add(ident)
                continue
            if ident in stale:
                bad.append(f"{ident} older than maxAge {max_age_s:g}s")
                reported.add(ident)
                continue
            values[ident] = sample.value
        if q.key == "healthQuery":
            out.health = values
            if bad:
                problems.append(f"healthQuery ({q.promql}): unusable samples: {', '.join(sorted(bad)[:5])}")
            if not values and not bad:
                problems.append(f"healthQuery ({q.promql}): no samples")
            continue
        target = out.nodes if q.by == ("node",) else out.vmis
        expected = expected_nodes if q.by == ("node",) else expected_vmis
        for ident, value in values.items():
            target.setdefault(ident, {})[q.key] = value
        missing = [i for i in expected if i not in values and i not in reported]
        messages: list[str] = []
        if bad:
            messages.append(
                f"{q.key} ({q.promql}): unusable samples: {', '.join(sorted(bad)[:5])}"
                + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            )
        if missing:
            messages.append(
                f"{q.key} ({q.promql}): no sample for {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        if messages and q.by != ("node",) and any(i in values for i in expected):
            out.vmi_gaps[q.key] = {i for i in expected if i not in values}
            out.gap_problems[q.key] = messages
        else:
            problems += messages
    return out


def pins_unmeasured_vmis(purpose: Purpose) -> bool:
    """LoadBalancing and Consolidation only optimise: a VMI whose own samples are missing or unusable (a VMI
    started since the last scrape, one whose exporter is broken) is left where it is, and the others are planned
    from their samples and the nodes' (which count the unmeasured VMI's load).  Evacuation and Maintenance keep
    their rules: a VMI on a failing or drained node must move all the same."""
    return purpose in (Purpose.LOAD_BALANCING, Purpose.CONSOLIDATION)


def metrics_state(collected: Collected, required: frozenset[str], *, pin_unmeasured: bool = False) -> MetricsState:
    """Sort the problems by what they block: required inputs, dirty rates, the rest.  With `pin_unmeasured`
    (`pins_unmeasured_vmis`), a required VMI input that is missing for some VMIs only leaves those VMIs in place."""
    routed = {key: list(problems) for key, problems in collected.problems.items()}
    unmeasured: set[str] = set()
    unmeasured_problems: list[str] = []
    for key, problems in collected.gap_problems.items():
        if pin_unmeasured and key in required:
            unmeasured |= collected.vmi_gaps.get(key, set())
            unmeasured_problems += problems
        else:
            routed.setdefault(key, []).extend(problems)
    blocking, dirty, optional = [], [], []
    for key, problems in routed.items():
        if key in required:
            blocking += problems
        elif key == QueryKey.VMI_DIRTY_RATE:
            dirty += problems
        else:
            optional += problems
    dirty += routed.get(QueryKey.VMI_DIRTY_RATE, []) if QueryKey.VMI_DIRTY_RATE in required else []
    return MetricsState(
        tuple(blocking),
        tuple(dirty),
        tuple(optional),
        unmeasured_vmis=frozenset(unmeasured),
        unmeasured=tuple(unmeasured_problems),
    )


def node_metrics(collected: Collected) -> dict[str, NodeMetrics]:
    return {
        node: NodeMetrics(
            cpu_utilization=v.get(QueryKey.NODE_CPU_UTILIZATION),
            memory_utilization=v.get(QueryKey.NODE_MEMORY_UTILIZATION),
            cpu_pressure=v.get(QueryKey.NODE_CPU_PRESSURE),
            memory_pressure=v.get(QueryKey.NODE_MEMORY_PRESSURE),
            io_pressure=v.get(QueryKey.NODE_IO_PRESSURE),
        )
        for node, v in collected.nodes.items()
    }


def vmi_metrics(collected: Collected) -> dict[str, VmiMetrics]:
    return {
        key: VmiMetrics(
            cpu_cores=v.get(QueryKey.VMI_CPU_USAGE),
            memory_bytes=v.get(QueryKey.VMI_MEMORY_USAGE),
            dirty_rate_bps=v.get(QueryKey.VMI_DIRTY_RATE),
        )
        for key, v in collected.vmis.items()
    }


def unhealthy_since(
    previous: Mapping[str, float], health: Mapping[str, float], evacuation: Evacuation, now_s: float
) -> dict[str, float]:
    """Nodes past the health threshold, with the time they first crossed it (kept while they stay past it)."""
    return {node: previous.get(node, now_s) for node, value in health.items() if evacuation.is_unhealthy(value)}


def due_for_evacuation(since: Mapping[str, float], evacuation: Evacuation, now_s: float) -> frozenset[str]:
    return frozenset(node for node, t in since.items() if now_s - t >= evacuation.for_s)
