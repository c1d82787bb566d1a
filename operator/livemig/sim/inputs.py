"""What the engine reports from its watches: VMIMs, VMIs, nodes, namespaces, the KubeVirt CR and its
MigrationPolicies changed; and faults posted to the control endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from livemig.core.cluster import Taint, TaintEffect
from livemig.core.kubevirt import KubevirtMigrationConfig, KvMigrationPolicy
from livemig.core.vocabulary import Outcome
from livemig.sim import rules
from livemig.sim.base import VMI_FINAL_PHASES
from livemig.sim.deletion import Deletions
from livemig.sim.evacuation import EVACUATION_ANNOTATION
from livemig.sim.faults import Fault
from livemig.sim.objects import MigrationState
from livemig.sim.outcomes import VMI_SHUTDOWN_REASON
from livemig.sim.rules import Phase
from livemig.sim.writes import VmimDeletion


class Inputs(Deletions):
    """The simulation's inputs: the state the API server holds, as the engine's watches see it change."""

    def on_vmim(self, manifest: Mapping[str, Any], now: float) -> None:
        """A VMIM was seen (ADDED or MODIFIED).  A deletionTimestamp means: abort."""
        meta = manifest.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        m = self.migrations.get(key)
        if m is None or m.uid != meta.get("uid"):
            spec = manifest.get("spec") or {}
            self._seq += 1
            phase_now = (manifest.get("status") or {}).get("phase") or ""
            m = MigrationState(
                namespace=str(meta.get("namespace")),
                name=str(meta.get("name")),
                uid=str(meta.get("uid") or uuid.uuid4()),
                vmi_key=f"{meta.get('namespace')}/{spec.get('vmiName', '')}",
                seq=self._seq,
                created_at=now,
                priority=str(spec.get("priority") or ""),
                # v1.5 has no such field (pruned): a VMIM that bypassed the webhook still gets no selector.
                added_node_selector=(
                    dict(spec.get("addedNodeSelector") or {}) if self.kubevirt_version.has_added_node_selector else {}
                ),
                created_epoch_s=_epoch(meta.get("creationTimestamp")),
                evacuation_node=(meta.get("annotations") or {}).get(EVACUATION_ANNOTATION),
                unschedulable_timeout_s=rules.pod_timeout_override(
                    meta.get("annotations") or {},
                    rules.UNSCHEDULABLE_TIMEOUT_ANNOTATION,
                    rules.UNSCHEDULABLE_POD_TIMEOUT_S,
                ),
                pending_timeout_s=rules.pod_timeout_override(
                    meta.get("annotations") or {}, rules.PENDING_TIMEOUT_ANNOTATION, rules.PENDING_POD_TIMEOUT_S
                ),
            )
            if m.evacuation_node is not None:
                self.evacuation.seen(m.vmi_key)
            if phase_now in ("Succeeded", "Failed"):
                # Finished before this simulator started (or seen again after a restart): keep it for GC only.
                m.phase = Phase(phase_now)
                m.final_at = now
                m.finalizer_removed = rules.MIGRATION_FINALIZER not in (meta.get("finalizers") or [])
            self.migrations[key] = m
            if m.phase.is_final:
                self._gc_needed = True
            else:
                self.open[key] = m
        if meta.get("deletionTimestamp") and not m.deleting:
            m.deleting = True
            if m.phase.is_final:
                self._release_finalizer(m)
            else:
                _add_condition(m, "migrationAbortRequested", self.timestamp(now))
                self._vmim_status(m)

    def on_vmim_gone(self, namespace: str, name: str) -> None:
        self.migrations.pop(f"{namespace}/{name}", None)
        self.open.pop(f"{namespace}/{name}", None)

    def on_kubevirt_config(self, config: KubevirtMigrationConfig, feature_gates: Iterable[str] | None = None) -> None:
        self.config = config
        if feature_gates is not None:
            self.feature_gates = frozenset(feature_gates)

    def on_policy(self, policy: KvMigrationPolicy) -> None:
        self.policies[policy.name] = policy

    def on_policy_gone(self, name: str) -> None:
        self.policies.pop(name, None)

    def on_namespace_labels(self, name: str, labels: Mapping[str, str]) -> None:
        self.namespace_labels[name] = dict(labels)

    def on_node(
        self, name: str, labels: Mapping[str, str], taints: Sequence[Mapping[str, Any]], cordoned: bool
    ) -> None:
        """A Node changed in the API (cordon, taints, labels): the scheduler uses what the API says, as
        kube-scheduler would.  Readiness stays the simulator's (there is no kubelet)."""
        node = self.nodes.get(name)
        if node is None:
            return
        parsed: list[Taint] = []
        for t in taints:
            try:
                effect = TaintEffect(str(t.get("effect", "NoSchedule")))
            except ValueError:
                continue
            parsed.append(Taint(str(t.get("key", "")), str(t.get("value", "") or ""), effect))
        node.spec = replace(node.spec, labels=dict(labels), taints=tuple(parsed), schedulable=not cordoned)

    def on_vmi_labels(self, key: str, labels: Mapping[str, str]) -> None:
        vmi = self.vmis.get(key)
        if vmi is not None:
            vmi.labels = dict(labels)

    def on_vmi_phase(self, key: str, phase: str, now: float) -> None:
        """The VMI's phase as the API shows it, when someone other than the simulator changed it (a VMI not
        Running yet, or shut down).  A final phase is never left: the simulator does not resurrect VMs."""
        vmi = self.vmis.get(key)
        if vmi is None or not phase or phase == vmi.phase or vmi.phase in VMI_FINAL_PHASES:
            return
        vmi.phase = phase
        if phase in VMI_FINAL_PHASES:
            for m in [o for o in self.open.values() if o.vmi_key == key and o.phase is not Phase.UNSET]:
                self._fail(m, now, VMI_SHUTDOWN_REASON, outcome=Outcome.FAILED)

    def on_vmi_gone(self, key: str, now: float) -> None:
        """The VMI was deleted.  KubeVirt shuts it down first (its unfinished VMIMs fail: "vmi shutdown during
        migration"), then deletes every VMIM of a VMI that no longer exists."""
        if key not in self.vmis:
            return
        self.on_vmi_phase(key, "Succeeded", now)
        self.vmis.pop(key)
        for m in list(self.migrations.values()):
            if m.vmi_key != key or m.deleting:
                continue
            if m.phase is Phase.UNSET:
                self._delete_orphan(m)
            else:
                m.deleting = True
                self._writes.append(VmimDeletion(m.namespace, m.name))

    def add_fault(self, fault: Fault) -> int:
        self.faults.append(fault)
        return len(self.faults) - 1


def _epoch(stamp: object) -> float:
    """RFC 3339 `2026-11-27T12:00:00Z` as Unix seconds (0 when absent or malformed)."""
    if not isinstance(stamp, str):
        return 0.0
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _add_condition(m: MigrationState, kind: str, stamp: str) -> None:
    if any(c.get("type") == kind for c in m.conditions):
        return
    m.conditions.append({"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp})
