"""What counts as data (core.queries) and what one evaluation decides on it (core.evaluation): no move on bad data,
Maintenance drains conservatively, claims between policies, hysteresis memory."""

from __future__ import annotations

import math
from typing import Any

import pytest

from livemig.core.evaluation import Claims, MetricsState, Result, evaluate
from livemig.core.inventory import Inventory
from livemig.core.policy import parse_policy
from livemig.core.queries import (
    BUILTIN,
    PlannedQuery,
    QueryAnswer,
    QueryKey,
    Sample,
    collect,
    due_for_evacuation,
    metrics_state,
    plan_queries,
    unhealthy_since,
)
from livemig.core.snapshot_parser import parse_snapshot
from livemig.core.vocabulary import Purpose, Technique


def policy(purpose: str, name: str = "p", **spec: Any) -> Any:
    sections = {
        "Maintenance": {"maintenance": {"nodeNames": ["n1"]}},
        "LoadBalancing": {"loadBalancing": {"cpu": {"high": 0.8, "target": 0.6}}},
        "Consolidation": {"consolidation": {"lowUtilization": {"cpu": 0.3}}},
        "Evacuation": {"evacuation": {"healthQuery": "disk_errors", "threshold": 1}},
    }
    body = {"purpose": purpose, **sections[purpose], "limits": {"cooldown": "0s"}, **spec}
    return parse_policy(
        {"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": name}, "spec": body}
    )


def answer(
    key: QueryKey,
    samples: list[tuple[dict[str, str], float]],
    ages: list[tuple[dict[str, str], float]] = (),
    error: str | None = None,
) -> QueryAnswer:  # type: ignore[assignment]
    by = ("node",) if key.value.startswith("node") else ("namespace", "name")
    q = PlannedQuery(str(key), "Q", "AGE", by)
    return QueryAnswer(
        q, [Sample(labels, v) for labels, v in samples], [Sample(labels, v) for labels, v in ages], error
    )


def test_unusable_samples_are_problems_that_name_the_query() -> None:
    n = QueryKey.NODE_CPU_UTILIZATION
    collected = collect(
        [
            answer(
                n,
                [({"node": "a"}, math.nan), ({"node": "b"}, -0.1), ({"node": "c"}, 0.5), ({"node": "d"}, 0.4)],
                ages=[({"node": "d"}, 500.0), ({"node": "c"}, 3.0)],
            ),
            answer(QueryKey.VMI_DIRTY_RATE, [], error="cannot reach http://p: ConnectionError"),
        ],
        nodes=["a", "b", "c", "d", "e"],
        vmis=["ns/v"],
        max_age_s=120,
    )
    assert collected.nodes == {"c": {"nodeCpuUtilization": 0.5}}
    problems = " ".join(collected.problems["nodeCpuUtilization"])
    for text in ("a=nan", "b=-0.1", "d older than maxAge 120s", "no sample for e", "nodeCpuUtilization (Q)"):
        assert text in problems
    assert collected.problems["vmiDirtyRate"] == ["vmiDirtyRate (Q): cannot reach http://p: ConnectionError"]
    state = metrics_state(collected, frozenset({"nodeCpuUtilization"}))
    assert state.required
    assert state.dirty_rate
    assert not state.optional


def test_only_window_is_substituted_so_names_cannot_widen_a_query() -> None:
    hostile = 'x"}) or vector(1) or up{a="'
    p = parse_policy(
        {
            "apiVersion": "livemig.io/v1alpha1",
            "kind": "MigrationPolicy",
            "metadata": {"name": "lb", "labels": {"team": "a"}},
            "spec": {
                "purpose": "LoadBalancing",
                "selector": {"vmiSelector": {"matchLabels": {"app": "x"}}},
                "loadBalancing": {"cpu": {"high": 0.8, "target": 0.6}, "averagingWindow": "90s"},
            },
        }
    )
    queries, required = plan_queries(p)
    for q in queries:
        assert hostile not in q.promql
        assert q.promql == BUILTIN[QueryKey(q.key)].template.replace("$window", "90s")
    assert required == {"nodeCpuUtilization", "vmiCpuUsage", "vmiMemoryUsage", "vmiDirtyRate"}
    assert {q.key for q in plan_queries(policy("Maintenance"))[0]} >= {"vmiDirtyRate"}
    assert plan_queries(policy("Maintenance"))[1] == frozenset(), "a drain needs no metric"


def test_evacuation_waits_for_the_threshold_to_hold_for_its_duration() -> None:
    ev = policy("Evacuation").evacuation
    since = unhealthy_since({}, {"a": 5.0, "b": 0.0}, ev, 100.0)
    assert since == {"a": 100.0}
    since = unhealthy_since(since, {"a": 7.0}, ev, 200.0)
    assert since == {"a": 100.0}, "still past the threshold: it keeps its start"
    assert due_for_evacuation(since, ev, 100.0 + ev.for_s - 1) == frozenset()
    assert due_for_evacuation(since, ev, 100.0 + ev.for_s) == {"a"}
    assert unhealthy_since(since, {"a": 0.0}, ev, 300.0) == {}


def snapshot_doc(dirty: str = "5Mi", cpu: float = 3.5) -> dict[str, Any]:
    return {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "time": 1e9,
        "namespaces": [{"name": "prod", "labels": {"tier": "prod"}}],
        "nodes": [{"name": f"n{i}", "cpu": 16, "memory": "64Gi", "linkBandwidth": "1Gbit"} for i in (1, 2, 3)],
        "vmis": [
            {
                "namespace": "prod",
                "name": f"v{i}",
                "node": "n1",
                "vcpus": 4,
                "memory": "8Gi",
                "usage": {"cpu": cpu, "memory": "8Gi", "dirtyRate": dirty},
            }
            for i in range(4)
        ],
    }


def inventory(**kw: Any) -> Inventory:
    return Inventory(snapshot=parse_snapshot(snapshot_doc(**kw)))


@pytest.mark.parametrize("purpose", [Purpose.LOAD_BALANCING, Purpose.CONSOLIDATION, Purpose.EVACUATION])
def test_no_decision_on_bad_data(purpose: Purpose) -> None:
    state = MetricsState(required=("nodeCpuUtilization (Q): timed out after 10s (3 attempts)",))
    evaluation = evaluate(policy(str(purpose)), inventory(), state)
    assert evaluation.result is Result.STALE_METRICS
    assert evaluation.plan is None
    assert "timed out" in evaluation.message
    assert evaluation.degraded


def test_maintenance_drains_without_metrics_and_never_picks_post_copy_blind() -> None:
    drain = policy("Maintenance", technique={"allowPostCopy": True, "allowAutoConverge": False})
    # With dirty rates, a VMI dirtying faster than its 1 Gbit/s link converges only in post-copy...
    with_data = evaluate(drain, inventory(dirty="400Mi"), MetricsState())
    assert with_data.plan is not None
    assert {m.technique for m in with_data.plan.moves} == {Technique.POST_COPY}
    # ...without them (the inventory then assumes 25 % of the link: 31.25 MB/s) the drain goes on, conservatively:
    # no post-copy, and it says so.
    missing = MetricsState(dirty_rate=("vmiDirtyRate (Q): no sample",))
    blind = evaluate(drain, inventory(dirty=str(0.25 * 1e9 / 8)), missing)
    assert blind.plan is not None
    assert blind.plan.moves
    assert Technique.POST_COPY not in {m.technique for m in blind.plan.moves}
    assert blind.conservative
    assert blind.degraded == ("vmiDirtyRate (Q): no sample",)


def test_claims_of_higher_priority_policies_and_drained_nodes_are_respected() -> None:
    drain = policy("Maintenance", name="drain")
    free = evaluate(drain, inventory(), MetricsState())
    assert free.plan is not None
    assert len(free.plan.moves) == 4
    claimed = Claims(
        vmis={"prod/v0": ("evac", Purpose.EVACUATION), "prod/v1": ("lb", Purpose.LOAD_BALANCING)},
        draining_nodes={"n2": "other-drain"},
    )
    evaluation = evaluate(drain, inventory(), MetricsState(), claimed)
    assert evaluation.plan is not None
    moved = {m.vmi for m in evaluation.plan.moves}
    assert "prod/v0" not in moved, "claimed by an Evacuation policy (higher priority)"
    assert "prod/v1" in moved, "a LoadBalancing claim does not stop a drain"
    assert all(m.target != "n2" for m in evaluation.plan.moves), "n2 is being drained by another policy"


def test_a_hot_node_stays_hot_inside_the_hysteresis_band() -> None:
    """Two cycles on the same data, with and without the previous cycle's hot nodes (what the operator keeps)."""
    lb = policy("LoadBalancing", loadBalancing={"cpu": {"high": 0.8, "target": 0.6}, "hysteresis": 0.1})
    doc = snapshot_doc(cpu=3.9)
    first = evaluate(lb, Inventory(snapshot=parse_snapshot(doc)), MetricsState())  # n1 at 15.6 / 16: hot
    assert first.plan is not None
    assert first.plan.hot_nodes == ("n1",)
    doc["vmis"] = doc["vmis"][:3]  # n1 at 11.7 / 16 = 0.73: below high, inside the band (0.7, 0.8]
    inside = Inventory(snapshot=parse_snapshot(doc))
    forgetful = evaluate(lb, inside, MetricsState())
    assert forgetful.plan is not None
    assert forgetful.plan.hot_nodes == ()
    assert forgetful.result is Result.NOTHING_TO_DO
    remembering = evaluate(lb, inside, MetricsState(), previously_hot=frozenset(first.plan.hot_nodes))
    assert remembering.plan is not None
    assert remembering.plan.hot_nodes == ("n1",)
    assert remembering.result is Result.PLANNED
    assert {m.source for m in remembering.plan.moves} == {"n1"}
    doc["vmis"] = doc["vmis"][:2]  # 7.8 / 16 = 0.49: out of the band
    below = evaluate(lb, Inventory(snapshot=parse_snapshot(doc)), MetricsState(), previously_hot=frozenset({"n1"}))
    assert below.plan is not None
    assert below.plan.hot_nodes == ()


def _vmi_answer(values: dict[str, float]) -> QueryAnswer:
    return answer(QueryKey.VMI_CPU_USAGE, [({"namespace": "prod", "name": n}, v) for n, v in values.items()])


def test_a_vmi_query_that_answers_for_some_vmis_leaves_the_others_in_place_for_optimising_purposes() -> None:
    """A VMI started since the last scrape, or one whose exporter is broken, has no sample of its own: LoadBalancing
    and Consolidation leave it where it is and plan the rest; the other purposes keep their rules."""
    collected = collect(
        [_vmi_answer({"v0": 1.0, "v1": math.nan})], nodes=[], vmis=["prod/v0", "prod/v1", "prod/v2"], max_age_s=120
    )
    assert collected.vmi_gaps == {"vmiCpuUsage": {"prod/v1", "prod/v2"}}
    required = frozenset({"vmiCpuUsage"})
    pinned = metrics_state(collected, required, pin_unmeasured=True)
    assert pinned.required == ()
    assert pinned.unmeasured_vmis == {"prod/v1", "prod/v2"}
    assert "prod/v1=nan" in " ".join(pinned.all)
    assert "no sample for prod/v2" in " ".join(pinned.all)
    strict = metrics_state(collected, required)
    assert strict.unmeasured_vmis == frozenset()
    assert "no sample for prod/v2" in " ".join(strict.required)


def test_a_vmi_query_that_answers_for_none_of_the_vmis_is_an_outage_not_a_gap() -> None:
    collected = collect([_vmi_answer({"elsewhere": 1.0})], nodes=[], vmis=["prod/v0", "prod/v1"], max_age_s=120)
    assert collected.vmi_gaps == {}
    state = metrics_state(collected, frozenset({"vmiCpuUsage"}), pin_unmeasured=True)
    assert state.required
    assert state.unmeasured_vmis == frozenset()


def test_load_balancing_moves_measured_vmis_and_leaves_an_unmeasured_one_in_place() -> None:
    lb = policy("LoadBalancing")
    doc = snapshot_doc(cpu=3.9)  # n1 at 15.6 / 16: hot, two moves bring it to the 0.6 target
    both = evaluate(lb, Inventory(snapshot=parse_snapshot(doc)), MetricsState())
    assert both.plan is not None
    moved = {m.vmi for m in both.plan.moves}
    assert moved
    unmeasured = frozenset({sorted(moved)[0]})
    state = MetricsState(unmeasured_vmis=unmeasured, unmeasured=("vmiCpuUsage (Q): no sample for it",))
    evaluation = evaluate(lb, Inventory(snapshot=parse_snapshot(doc)), state)
    assert evaluation.result is Result.PLANNED
    assert evaluation.plan is not None
    assert evaluation.plan.moves
    assert not {m.vmi for m in evaluation.plan.moves} & unmeasured
    assert "1 VMI(s) without samples of their own left in place" in evaluation.message
    assert evaluation.degraded == ("vmiCpuUsage (Q): no sample for it",)
