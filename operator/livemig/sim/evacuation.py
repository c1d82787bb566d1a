"""KubeVirt's evacuation controller (`pkg/virt-controller/watch/drain/evacuation/evacuation.go`, v1.8), simulated.

The baseline users already have: `kubectl drain` with `evictionStrategy: LiveMigrate`, or the deprecated drain taint.
A node tainted `<nodeDrainTaintKey>:NoSchedule` (the KubeVirt CR's `spec.configuration.migrations.nodeDrainTaintKey`,
default `kubevirt.io/drain`) has all its eligible VMIs evacuated. (KubeVirt also evacuates VMIs whose
`status.evacuationNodeName` its eviction webhook set; the simulator has no eviction webhook.) Eligible
(`GenerateNewMigration` filters): Running, not being deleted, migratable on eviction (`LiveMigrate`, or
`LiveMigrateIfPossible` and LiveMigratable), no unfinished VMIM. With MigrationPriorityQueue off (KubeVirt's default up
to v1.8), one pass
creates `min(clusterFree, nodeFree)` VMIMs (free slots under `parallelMigrationsPerCluster` and the node's
`parallelOutboundMigrationsPerNode`, counting every unfinished VMIM) and the node is re-queued every 5 s; with it on,
one VMIM per candidate at once, `spec.priority: system-critical`, and the priority queue orders them. Each VMIM is
`kubevirt-evacuation-<random>`, annotated `kubevirt.io/evacuationMigration=<node>`, and runs under the cluster's
migration configuration and whatever KubeVirt MigrationPolicy matches — no technique choice. Backoff after failed
evacuations of a VMI: 20 s after the last failure, doubling per consecutive failure, reset by a success (KubeVirt
applies it in the migration controller to the pending VMIM; here the next VMIM is created when the backoff has passed
— the same wait, one fewer Pending VMIM).

Pure: the Simulation calls `step(now)` from its tick and turns the returned manifests into creations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livemig.core.cluster import EvictionStrategy, TaintEffect

EVACUATION_ANNOTATION = "kubevirt.io/evacuationMigration"
EVACUATION_PREFIX = "kubevirt-evacuation-"
REQUEUE_S = 5.0
BACKOFF_S = 20.0
#: A requested VMIM not seen back from the API within this long is requested again.
REQUEST_TIMEOUT_S = 30.0


@dataclass
class EvacuationController:
    requested: dict[str, tuple[float, str]] = field(default_factory=dict)  # VMI key -> (requested at, node)
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # VMI key -> (consecutive, last at)
    next_pass: dict[str, float] = field(default_factory=dict)  # node -> next pass time
    created: int = 0

    def seen(self, vmi_key: str) -> None:
        """The VMIM the controller requested for this VMI exists now."""
        self.requested.pop(vmi_key, None)

    def finished(self, vmi_key: str, succeeded: bool, now: float) -> None:
        if succeeded:
            self.failures.pop(vmi_key, None)
        else:
            count, _ = self.failures.get(vmi_key, (0, now))
            self.failures[vmi_key] = (count + 1, now)

    def backoff_until(self, vmi_key: str) -> float:
        count, last = self.failures.get(vmi_key, (0, 0.0))
        return 0.0 if count == 0 else last + BACKOFF_S * 2 ** (count - 1)

    def step(
        self,
        now: float,
        *,
        nodes: Mapping[str, Any],  # name -> Node spec (taints)
        vmis: Iterable[Any],  # VmiState
        unfinished: Iterable[tuple[str, str]],  # (VMI key, source node) of every unfinished VMIM
        drain_taint_key: str,
        cluster_cap: int,
        node_cap: int,
        priority_queue: bool = False,
    ) -> list[dict[str, Any]]:
        """The VMIMs to create now, as manifests.  With the MigrationPriorityQueue gate on, KubeVirt marks them
        `system-critical` (`system-maintenance` for the descheduler's evictions, which the simulator has not)."""
        for key, (at, _) in list(self.requested.items()):
            if now - at > REQUEST_TIMEOUT_S:
                del self.requested[key]
        busy: set[str] = set()
        outbound: dict[str, int] = {}
        running = 0
        for key, source in unfinished:
            busy.add(key)
            running += 1
            outbound[source] = outbound.get(source, 0) + 1
        for key, (_, source) in self.requested.items():
            if key not in busy:  # not seen back yet: it will be an unfinished VMIM
                busy.add(key)
                running += 1
                outbound[source] = outbound.get(source, 0) + 1
        tainted = {
            name
            for name, spec in nodes.items()
            if any(t.key == drain_taint_key and t.effect is TaintEffect.NO_SCHEDULE for t in spec.taints)
        }
        by_node: dict[str, list[Any]] = {}
        for vmi in vmis:
            if vmi.node in tainted:
                by_node.setdefault(vmi.node, []).append(vmi)
        out: list[dict[str, Any]] = []
        for node in sorted(by_node):
            if now < self.next_pass.get(node, 0.0):
                continue
            self.next_pass[node] = now + REQUEUE_S
            candidates = [v for v in sorted(by_node[node], key=lambda v: v.key) if self._eligible(v, busy, now)]
            # Gate off: only as many as the caps have room for.  Gate on: every candidate at once, and the priority
            # queue (system-critical first) decides who runs.
            free = len(candidates) if priority_queue else min(cluster_cap - running, node_cap - outbound.get(node, 0))
            for vmi in candidates[: max(0, free)]:
                namespace, name = vmi.key.split("/", 1)
                self.requested[vmi.key] = (now, node)
                busy.add(vmi.key)
                running += 1
                outbound[node] = outbound.get(node, 0) + 1
                self.created += 1
                out.append(
                    {
                        "apiVersion": "kubevirt.io/v1",
                        "kind": "VirtualMachineInstanceMigration",
                        "metadata": {
                            "generateName": EVACUATION_PREFIX,
                            "namespace": namespace,
                            "annotations": {EVACUATION_ANNOTATION: node},
                        },
                        "spec": {"vmiName": name, **({"priority": "system-critical"} if priority_queue else {})},
                    }
                )
        return out

    def _eligible(self, vmi: Any, busy: set[str], now: float) -> bool:
        if vmi.phase != "Running" or vmi.migration_uid is not None or vmi.key in busy:
            return False
        if now < self.backoff_until(vmi.key):
            return False
        strategy = vmi.spec.eviction_strategy
        if strategy is EvictionStrategy.LIVE_MIGRATE:
            return bool(vmi.spec.live_migratable)  # KubeVirt would create it and its admission would refuse it
        if strategy is EvictionStrategy.LIVE_MIGRATE_IF_POSSIBLE:
            return bool(vmi.spec.live_migratable)
        return False
