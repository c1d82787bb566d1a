"""Limits in one place: effective limits, cooldown and budget, the schedule, waves; placement constraints."""

from __future__ import annotations

from typing import Any

import pytest

from livemig.core.cluster import KubevirtMigrationConfig
from livemig.core.planning import LimitsSpec, TechniqueSpec
from livemig.core.planning.limits import Job, Limits, SlotTracker, schedule, waves
from livemig.core.planning.placement import ClusterState


def test_effective_limits_take_the_stricter() -> None:
    kv = KubevirtMigrationConfig(parallel_migrations_per_cluster=5, parallel_outbound_migrations_per_node=2)
    lim = Limits.effective(LimitsSpec(max_concurrent_migrations=3), TechniqueSpec(), kv)
    assert (lim.max_cluster, lim.max_per_node) == (3, 2)
    lim = Limits.effective(
        LimitsSpec(max_concurrent_migrations=9, max_concurrent_migrations_per_node=1), TechniqueSpec(), kv
    )
    assert (lim.max_cluster, lim.max_per_node) == (5, 1)
    lim = Limits.effective(LimitsSpec(), TechniqueSpec(bandwidth_per_migration_bps=1e8), kv)
    assert lim.bandwidth_cap_bps == 1e8


def test_cooldown_and_budget(b: Any) -> None:
    t = 10_000.0
    snap = b.snapshot(
        [b.node("n")],
        [
            b.vmi("fresh", "n"),
            b.vmi("recent", "n", migrations=[t - 100]),
            b.vmi("old", "n", migrations=[t - 5000]),
            b.vmi("many", "n", migrations=[t - 3000, t - 2000, t - 1000]),
        ],
        time=t,
    )
    lim = Limits.effective(
        LimitsSpec(cooldown_s=600, max_migrations_per_vmi=3, window_s=3600), TechniqueSpec(), snap.kubevirt
    )
    got = {v.name: lim.blocked_reason(v, snap.time_s) for v in snap.vmis}
    assert got["fresh"] is None
    assert got["old"] is None
    assert got["recent"] is not None
    assert "cooldown" in got["recent"]
    assert got["many"] is not None
    assert "budget" in got["many"]


def test_schedule_respects_counts_and_links(b: Any) -> None:
    snap = b.snapshot([b.node("a"), b.node("b"), b.node("c")], [])
    lim = Limits(max_cluster=3, max_per_node=2, cooldown_s=0, max_per_vmi=None, window_s=0, bandwidth_cap_bps=0)
    link = snap.node("a").link_bandwidth_bps
    jobs = [Job("a", "c", link / 2, 10.0) for _ in range(5)] + [Job("b", "c", link / 2, 4.0)]
    intervals = schedule(jobs, SlotTracker(lim, snap))
    for t in {s for s, _ in intervals}:
        running = [j for j, (s, f) in zip(jobs, intervals, strict=True) if s <= t < f]
        assert len(running) <= 3
        assert sum(1 for j in running if j.source == "a") <= 2
        assert sum(j.bandwidth_bps for j in running if j.target == "c") <= link * (1 + 1e-9)
    # c's link takes two half-link migrations at once: at t=0 two start (a, a) - b waits for room on c.
    assert sorted(s for s, _ in intervals)[:2] == [0.0, 0.0]
    assert max(f for _, f in intervals) == pytest.approx(30.0)


def test_most_work_first_serves_the_longest_queue(b: Any) -> None:
    snap = b.snapshot([b.node("a"), b.node("b"), b.node("t")], [])
    lim = Limits(max_cluster=1, max_per_node=1, cooldown_s=0, max_per_vmi=None, window_s=0, bandwidth_cap_bps=1.0)
    jobs = [Job("a", "t", 1.0, 10.0), Job("b", "t", 1.0, 6.0), Job("b", "t", 1.0, 6.0)]
    plain = schedule(jobs, SlotTracker(lim, snap))
    work = schedule(jobs, SlotTracker(lim, snap), most_work_first=True)
    assert plain[0][0] == 0.0  # priority order: a's job first
    assert work[1][0] == 0.0  # b has 12 s queued against a's 10 s


def test_waves_group_by_barrier() -> None:
    assert waves([(0, 5), (0, 3), (3, 8), (5, 9), (5, 6)]) == [0, 0, 1, 2, 2]


def test_placement_constraints(b: Any) -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
            ]
        }
    }
    snap = b.snapshot(
        [
            b.node("src", labels={"zone": "a"}),
            b.node("ssd", labels={"disk": "ssd", "zone": "b"}),
            b.node("tainted", labels={"zone": "c"}, taints=[{"key": "gpu", "effect": "NoSchedule"}]),
            b.node("soft", labels={"zone": "c"}, taints=[{"key": "x", "effect": "PreferNoSchedule"}]),
            b.node("small", cpu=1, labels={"zone": "d"}),
            b.node("zone-b2", labels={"zone": "b"}),
        ],
        [
            b.vmi("picky", "src", nodeSelector={"disk": "ssd"}),
            b.vmi("db1", "src", labels={"app": "db"}, affinity=anti),
            b.vmi("db2", "ssd", labels={"app": "db"}),
            b.vmi("plain", "src", labels={"app": "db"}),
            b.vmi("owner", "zone-b2", labels={"app": "x"}, affinity=anti),
        ],
    )
    state = ClusterState(snap, ["ssd", "tainted", "soft", "small", "zone-b2"])
    v = {x.name: x for x in snap.vmis}
    assert state.blocking_reason(v["picky"], "soft") == "nodeSelector disk=ssd"
    assert state.blocking_reason(v["picky"], "ssd") is None  # unlabelled: no anti-affinity term selects it
    assert state.blocking_reason(v["plain"], "tainted") == "taint gpu=:NoSchedule"
    assert state.blocking_reason(v["plain"], "soft") is None  # PreferNoSchedule never blocks
    assert state.blocking_reason(v["plain"], "small") == "capacity"
    assert state.blocking_reason(v["plain"], "src") == "already there"
    assert "not a target" in str(state.blocking_reason(v["plain"], "nowhere"))
    # db1's own term: zone b holds db2.  Symmetric: owner (zone b) repels app=db.
    assert "anti-affinity" in str(state.blocking_reason(v["db1"], "zone-b2"))
    assert state.blocking_reason(v["plain"], "zone-b2") == "anti-affinity of prod/owner"
