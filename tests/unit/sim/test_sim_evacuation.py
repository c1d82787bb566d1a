"""The evacuation controller's pure rules: eligibility, caps per pass, re-queue, backoff (KubeVirt v1.8)."""

from __future__ import annotations

from dataclasses import dataclass, field

from livemig.core.cluster import EvictionStrategy, Node, Taint, TaintEffect
from livemig.sim.evacuation import BACKOFF_S, REQUEUE_S, EvacuationController


@dataclass
class Spec:
    eviction_strategy: EvictionStrategy = EvictionStrategy.LIVE_MIGRATE
    live_migratable: bool = True


@dataclass
class V:
    key: str
    node: str
    phase: str = "Running"
    migration_uid: str | None = None
    spec: Spec = field(default_factory=Spec)


DRAIN = Taint("kubevirt.io/drain", "", TaintEffect.NO_SCHEDULE)
NODES = {"a": Node("a", 32, 1e11, taints=(DRAIN,)), "b": Node("b", 32, 1e11)}


def step(
    c: EvacuationController,
    now: float,
    vmis: list[V],
    unfinished: list[tuple[str, str]] = (),  # type: ignore[assignment]
    cluster_cap: int = 5,
    node_cap: int = 2,
) -> list[str]:
    out = c.step(
        now,
        nodes=NODES,
        vmis=vmis,
        unfinished=unfinished,
        drain_taint_key="kubevirt.io/drain",
        cluster_cap=cluster_cap,
        node_cap=node_cap,
    )
    return [f"{m['metadata']['namespace']}/{m['spec']['vmiName']}" for m in out]


def test_one_pass_creates_min_of_cluster_and_node_free_slots_for_eligible_vmis_only() -> None:
    vmis = [V(f"ns/v{i}", "a") for i in range(5)]
    unmigratable = Spec(EvictionStrategy.LIVE_MIGRATE_IF_POSSIBLE, live_migratable=False)
    vmis += [
        V("ns/none", "a", spec=Spec(EvictionStrategy.NONE)),
        V("ns/b1", "b"),
        V("ns/if-possible", "a", spec=unmigratable),
    ]
    c = EvacuationController()
    assert step(c, 0.0, vmis) == ["ns/v0", "ns/v1"]  # node cap 2
    # Within the re-queue interval nothing more; requested VMIMs count until seen.
    assert step(c, REQUEUE_S - 0.1, vmis) == []
    assert step(c, REQUEUE_S, vmis) == [], "the two requested VMIMs still hold the node's slots"
    c.seen("ns/v0")
    c.seen("ns/v1")
    # The cluster cap (5) is full with both evacuations and three other migrations: nothing new.
    full = [("ns/v0", "a"), ("ns/v1", "a"), ("x/y", "b"), ("x/z", "b"), ("x/w", "b")]
    assert step(c, 2 * REQUEUE_S, vmis, unfinished=full) == []
    # v0 and v1 landed on b; one other migration still runs: two more from a.
    vmis[0].node = vmis[1].node = "b"
    assert step(c, 3 * REQUEUE_S, vmis, unfinished=[("x/y", "b")]) == ["ns/v2", "ns/v3"]
    # One slot left in the cluster: one VMIM.
    c.seen("ns/v2")
    c.seen("ns/v3")
    busy = [("ns/v2", "a"), ("x/y", "b"), ("x/z", "b"), ("x/w", "b")]
    vmis[3].node = "b"
    assert step(c, 4 * REQUEUE_S, vmis, unfinished=busy) == ["ns/v4"]


def test_a_failed_evacuation_backs_off_twenty_seconds_doubling_and_a_success_resets_it() -> None:
    vmis = [V("ns/v", "a")]
    c = EvacuationController()
    assert step(c, 0.0, vmis) == ["ns/v"]
    c.seen("ns/v")
    c.finished("ns/v", False, 10.0)
    assert step(c, 10.0 + BACKOFF_S - 1, vmis) == []
    # The node is re-queued every 5 s: the first pass after the backoff creates the VMIM.
    assert step(c, 10.0 + BACKOFF_S - 1 + REQUEUE_S, vmis) == ["ns/v"]
    c.seen("ns/v")
    c.finished("ns/v", False, 40.0)
    assert c.backoff_until("ns/v") == 40.0 + 2 * BACKOFF_S
    c.finished("ns/v", True, 50.0)
    assert c.backoff_until("ns/v") == 0.0


def test_untainted_nodes_and_busy_vmis_are_left_alone() -> None:
    c = EvacuationController()
    vmis = [V("ns/b", "b"), V("ns/migrating", "a", migration_uid="u"), V("ns/stopped", "a", phase="Succeeded")]
    assert step(c, 0.0, vmis) == []
