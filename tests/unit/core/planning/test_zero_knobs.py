"""A value of 0 means what the CRD says it means, from the policy file to the plan.

`spec.technique.bandwidthPerMigration: 0` is "unlimited" (the CRD, and KubeVirt applying a MigrationPolicy's value
over its cluster configuration), not "unset": the cluster's cap must not come back.  `completionTimeoutPerGiB: 0`
is "no completion timeout" (KubeVirt: 0 disables it), not the cluster's 150 s/GB.
"""

from __future__ import annotations

from typing import Any

import pytest

from livemig.core.cluster import KubevirtMigrationConfig
from livemig.core.planning import LimitsSpec, ModelCosts, TechniqueSpec, plan_for_policy
from livemig.core.planning.limits import Limits
from livemig.core.policy import parse_policy
from livemig.core.vocabulary import AbortReason, Outcome

MI = 2**20
LINK_BPS = 10e9 / 8  # the builders' nodes have 10 Gbit/s links
CLUSTER_CAP_BPS = 64 * MI


def _policy(technique: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": "drain"},
        "spec": {
            "purpose": "Maintenance",
            "maintenance": {"nodeNames": ["a"]},
            "technique": {"mode": "PreCopy", **technique},
            "limits": {"cooldown": "0s"},
        },
    }


def _drain_one_vmi(b: Any, technique: dict[str, Any]) -> tuple[float, float]:
    """(the plan's per-migration cap, the move's predicted total time) draining one 8 GiB VMI off node a."""
    snap = b.snapshot(
        [b.node("a"), b.node("b")],
        [b.vmi("vm", "a", memory="8Gi", dirty="1Mi")],
        kubevirt={"bandwidthPerMigration": "64Mi"},
    )
    result = plan_for_policy(snap, parse_policy(_policy(technique)))
    assert [m.vmi for m in result.moves] == ["prod/vm"]
    return float(result.limits["bandwidthPerMigrationBps"] or 0), result.moves[0].predicted_time_s


def test_bandwidth_per_migration_zero_is_unlimited_not_the_clusters_cap(b: Any) -> None:
    cap, time_s = _drain_one_vmi(b, {"bandwidthPerMigration": 0})
    assert cap == 0
    # 8 GiB over the 10 Gbit/s link: about 7 s (at the cluster's 64 MiB/s it would take 128 s).
    assert time_s == pytest.approx(8 * 2**30 / LINK_BPS, rel=0.1)
    cap, time_s = _drain_one_vmi(b, {"bandwidthPerMigration": "0"})
    assert cap == 0
    assert time_s < 20


def test_bandwidth_per_migration_unset_keeps_the_clusters_cap_and_set_replaces_it(b: Any) -> None:
    cap, time_s = _drain_one_vmi(b, {})
    assert cap == CLUSTER_CAP_BPS
    assert time_s == pytest.approx(8 * 2**30 / CLUSTER_CAP_BPS, rel=0.1)
    cap, _ = _drain_one_vmi(b, {"bandwidthPerMigration": "128Mi"})
    assert cap == 128 * MI


def test_limits_take_a_zero_bandwidth_as_no_cap(b: Any) -> None:
    kv = KubevirtMigrationConfig(bandwidth_per_migration_bps=CLUSTER_CAP_BPS)
    limits = Limits.effective(LimitsSpec(), TechniqueSpec(bandwidth_per_migration_bps=0.0), kv)
    snap = b.snapshot([b.node("a"), b.node("b")], [])
    assert limits.move_bandwidth_bps(snap.node("a"), snap.node("b")) == LINK_BPS


def test_completion_timeout_zero_disables_the_timeout_instead_of_taking_the_clusters() -> None:
    kv = KubevirtMigrationConfig(completion_timeout_per_gib=150)
    assert ModelCosts.for_spec(TechniqueSpec(), kv).policy.settings.completion_timeout_per_gib == 150
    seven = ModelCosts.for_spec(TechniqueSpec(completion_timeout_per_gib=7), kv)
    assert seven.policy.settings.completion_timeout_per_gib == 7
    zero = ModelCosts.for_spec(TechniqueSpec(completion_timeout_per_gib=0), kv)
    assert zero.policy.settings.completion_timeout_per_gib == 0


def test_completion_timeout_zero_reaches_the_prediction(b: Any) -> None:
    # An 8 GiB VMI dirtying 200 MiB/s over a 64 MiB/s cap never converges.  With the cluster's 150 s per (decimal)
    # GB the model aborts it at 9 x 150 s; with 0 no completion timeout ends it.
    snap = b.snapshot(
        [b.node("a"), b.node("b")],
        [b.vmi("vm", "a", memory="8Gi", dirty="200Mi")],
        kubevirt={"bandwidthPerMigration": "64Mi"},
    )
    vmi = snap.vmis[0]
    cluster = ModelCosts.for_spec(TechniqueSpec(), snap.kubevirt).cost(vmi, CLUSTER_CAP_BPS)
    assert cluster.outcome is Outcome.ABORTED
    assert str(AbortReason.COMPLETION_TIMEOUT) in cluster.reason
    assert cluster.total_time_s == pytest.approx(9 * 150)
    zero = ModelCosts.for_spec(TechniqueSpec(completion_timeout_per_gib=0), snap.kubevirt).cost(vmi, CLUSTER_CAP_BPS)
    assert str(AbortReason.COMPLETION_TIMEOUT) not in zero.reason
    assert zero.total_time_s > 9 * 150
