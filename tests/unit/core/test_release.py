"""Which queued moves start now (core.release): KubeVirt's caps count every unfinished VMIM, each policy's limits
hold, and the purposes' priority orders the queue."""

from __future__ import annotations

from livemig.core.kubevirt import KubevirtMigrationConfig
from livemig.core.release import PolicyLimits, Queued, Running, release
from livemig.core.vocabulary import Purpose

KV = KubevirtMigrationConfig()  # KubeVirt's defaults: 5 per cluster, 2 outbound per node
WIDE = PolicyLimits(100, 100)


def q(key: str, policy: str, purpose: Purpose, order: int, source: str = "a", target: str = "z") -> Queued:
    return Queued(key, policy, purpose, order, source, target)


def started(result: object) -> list[str]:
    return [m.key for m in result.start]  # type: ignore[attr-defined]


def test_cluster_cap_counts_migrations_livemig_did_not_start() -> None:
    queue = [q(f"ns/v{i}", "drain", Purpose.MAINTENANCE, i, source=f"n{i}") for i in range(5)]
    running = [Running("other/x", "m1"), Running("other/y", "m2"), Running("kv/evac", "m3")]  # users', KubeVirt's
    result = release(queue, running, KV, {"drain": WIDE})
    assert started(result) == ["ns/v0", "ns/v1"]
    assert all("parallelMigrationsPerCluster (5)" in why for _, why in result.waiting)


def test_outbound_cap_per_source_node_and_others_still_start() -> None:
    queue = [
        q("ns/a1", "p", Purpose.MAINTENANCE, 0, "a"),
        q("ns/a2", "p", Purpose.MAINTENANCE, 1, "a"),
        q("ns/a3", "p", Purpose.MAINTENANCE, 2, "a"),
        q("ns/b1", "p", Purpose.MAINTENANCE, 3, "b"),
    ]
    assert started(release(queue, [], KV, {"p": WIDE})) == ["ns/a1", "ns/a2", "ns/b1"]
    # One already running out of a (someone else's): only one more from a.
    assert started(release(queue, [Running("x/y", "a")], KV, {"p": WIDE})) == ["ns/a1", "ns/b1"]


def test_policy_limits_hold_with_their_own_running_migrations() -> None:
    queue = [q(f"ns/v{i}", "lb", Purpose.LOAD_BALANCING, i, source=f"n{i % 2}") for i in range(4)]
    limits = {"lb": PolicyLimits(max_concurrent=2, max_concurrent_per_node=1)}
    assert started(release(queue, [], KV, limits)) == ["ns/v0", "ns/v1"]
    assert started(release(queue, [Running("ns/old", "n0", "lb")], KV, limits)) == ["ns/v1"]
    assert started(release(queue, [Running("ns/old", "n9", "lb"), Running("ns/o2", "n8", "lb")], KV, limits)) == []


def test_priority_evacuation_maintenance_balancing_consolidation_then_plan_order() -> None:
    queue = [
        q("ns/c", "cons", Purpose.CONSOLIDATION, 0, "n1"),
        q("ns/l", "lb", Purpose.LOAD_BALANCING, 0, "n2"),
        q("ns/m2", "drain", Purpose.MAINTENANCE, 1, "n3"),
        q("ns/m1", "drain", Purpose.MAINTENANCE, 0, "n4"),
        q("ns/e", "evac", Purpose.EVACUATION, 5, "n5"),
    ]
    limits = {p: WIDE for p in ("cons", "lb", "drain", "evac")}
    running = [Running(f"x/{i}", f"r{i}") for i in range(3)]  # two slots left
    assert started(release(queue, running, KV, limits)) == ["ns/e", "ns/m1"]
    assert started(release(queue, [], KV, limits)) == ["ns/e", "ns/m1", "ns/m2", "ns/l", "ns/c"]


def test_a_vmi_already_migrating_waits() -> None:
    result = release([q("ns/v", "p", Purpose.MAINTENANCE, 0)], [Running("ns/v", "a")], KV, {"p": WIDE})
    assert started(result) == []
    assert result.waiting[0][1] == "the VMI is already migrating"


def test_the_cluster_cap_from_the_kubevirt_cr_is_what_counts() -> None:
    kv = KubevirtMigrationConfig(parallel_migrations_per_cluster=1, parallel_outbound_migrations_per_node=1)
    queue = [q("ns/v0", "p", Purpose.MAINTENANCE, 0, "a"), q("ns/v1", "p", Purpose.MAINTENANCE, 1, "b")]
    assert started(release(queue, [], kv, {"p": WIDE})) == ["ns/v0"]


def test_a_later_wave_of_a_plan_waits_until_the_earlier_waves_have_finished() -> None:
    """A plan's capacity holds per wave (wave 2's target has room once wave 1's VMI has left it), so the executor
    must not start wave 2 while a move of wave 1 of the same plan is queued or running."""
    first = Queued("ns/a", "lb", Purpose.LOAD_BALANCING, 0, "n1", "n3", plan="p1", wave=0)
    second = Queued("ns/b", "lb", Purpose.LOAD_BALANCING, 1, "n0", "n1", plan="p1", wave=1)
    both = release([first, second], [], KV, {})
    assert [m.key for m in both.start] == ["ns/a"]
    assert both.waiting[0][0].key == "ns/b"
    assert "wave 2 of its plan waits for wave 1" in both.waiting[0][1]
    # While wave 1's move runs, wave 2 still waits; once it has finished, wave 2 goes.
    running = [Running("ns/a", "n1", "lb", plan="p1", wave=0)]
    assert release([second], running, KV, {}).start == ()
    assert [m.key for m in release([second], [], KV, {}).start] == ["ns/b"]
    # A migration left from an older plan does not hold back a new plan's waves.
    old = [Running("ns/x", "n2", "lb", plan="p0", wave=0)]
    assert [m.key for m in release([second], old, KV, {}).start] == ["ns/b"]
