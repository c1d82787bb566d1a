"""Two operator processes with Kopf peering against one API server: only one acts; SIGKILL it mid-drain and the
other takes over within the stated bound; no migration is duplicated and the drain completes (issue 11, item 4)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from livemig.controller.process import OperatorProcess
from support.stack_helpers import apply, node, policy_status, scenario, vmi, vmims, wait_until

pytestmark = pytest.mark.integration

#: Kopf peering lifetime (controller/app.py: 20 s) plus one peering refresh and a cycle: the documented bound.
TAKEOVER_BOUND_S = 60


def _migrating(operator: OperatorProcess) -> int:
    return operator.log.read_text(errors="replace").count('"migration": "lm-')


def test_one_replica_acts_and_the_standby_takes_over_after_a_crash(start_stack: Any, tmp_path: Path) -> None:
    nodes = [node(f"node-0{i}") for i in range(1, 5)]
    vmis = [vmi("prod", f"web-{i:02d}", "node-01") for i in range(10)]
    stack = start_stack(scenario(nodes, vmis), operator=False, time_scale=20.0)
    assert stack.cluster is not None
    assert stack.sim is not None
    apply(stack, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "livemig"}})
    leader = OperatorProcess(
        stack.cluster.kubeconfig,
        work_dir=tmp_path,
        name="leader",
        extra_args=["--peering", "livemig", "--priority", "200"],
    )
    standby = OperatorProcess(
        stack.cluster.kubeconfig,
        work_dir=tmp_path,
        name="standby",
        extra_args=["--peering", "livemig", "--priority", "100"],
    )
    leader.start()
    standby.start()
    try:
        apply(
            stack,
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "drain"},
                "spec": {
                    "purpose": "Maintenance",
                    "maintenance": {"nodeNames": ["node-01"]},
                    "interval": "5s",
                    "limits": {"maxConcurrentMigrations": 1, "maxConcurrentMigrationsPerNode": 1, "cooldown": "0s"},
                },
            },
        )
        wait_until(lambda: len(vmims(stack)) >= 3, timeout_s=120, what="three migrations")
        assert _migrating(leader) >= 3
        assert _migrating(standby) == 0, "the standby acted while the leader was alive"
        leader.kill()
        wait_until(lambda: _migrating(standby) > 0, timeout_s=TAKEOVER_BOUND_S, what="the standby taking over")
        wait_until(
            lambda: any(
                n.get("name") == "node-01" and n.get("state") == "Drained"
                for n in policy_status(stack, "drain").get("nodes") or []
            ),
            timeout_s=240,
            what="node-01 drained",
        )
    finally:
        leader.kill()
        standby.stop()
    per_vmi = collections.Counter(r["vmi"] for r in stack.sim.outcomes())
    assert per_vmi == {f"prod/web-{i:02d}": 1 for i in range(10)}, per_vmi
    assert all(r["result"] == "Succeeded" for r in stack.sim.outcomes())
