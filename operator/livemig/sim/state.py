"""The simulated cluster: VMIs, nodes and migrations in memory, advanced by `Simulation.tick(now)`.

This is virt-controller's and virt-handler's logic without the API server: inputs arrive as method calls (a VMIM was
created or is being deleted, the KubeVirt CR or a MigrationPolicy changed, a fault was posted), and `tick` returns the
writes the engine must make (`Write` values) plus outcome records.  Time is always passed in (`now`, simulated
seconds), so tests drive it with a `ManualClock`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from livemig.core.cluster import Taint, TaintEffect
from livemig.core.kubevirt import KubevirtMigrationConfig, KvMigrationPolicy
from livemig.core.vocabulary import Outcome
from livemig.sim import rules
from livemig.sim.admission import Admission
from livemig.sim.base import VMI_FINAL_PHASES
from livemig.sim.evacuation import EVACUATION_ANNOTATION
from livemig.sim.faults import Fault, FaultType, timed_faults_due
from livemig.sim.objects import MigrationState, VmiState
from livemig.sim.outcomes import (
    SOURCE_REPORTED_FAILED_REASON,
    TARGET_POD_SHUTDOWN_REASON,
    VM_LOST_REASON,
    VMI_SHUTDOWN_REASON,
)
from livemig.sim.rules import Phase
from livemig.sim.writes import (
    Event,
    NodeLabel,
    NodeReady,
    NodeTaint,
    TickResult,
    VmimDeletion,
)

NODE_SCHEDULABLE_LABEL = "kubevirt.io/schedulable"
NODE_MONITOR_GRACE_S = 40.0  # kube-controller-manager --node-monitor-grace-period
HEARTBEAT_TIMEOUT_S = 300.0  # KubeVirt node controller heartBeatTimeout
HEARTBEAT_RECHECK_S = 60.0  # ... and its recheckInterval


def heartbeat_noticed_at(failed_at: float) -> float:
    """When KubeVirt's node controller notices a node whose virt-handler stopped at `failed_at`: at its first
    once-a-minute check after the heartbeat is 5 min old (so 5 to 6 min after the failure)."""
    stale_at = failed_at + HEARTBEAT_TIMEOUT_S
    return math.ceil(stale_at / HEARTBEAT_RECHECK_S) * HEARTBEAT_RECHECK_S


class Simulation(Admission):
    """All of the simulated cluster's state and KubeVirt's rules applied to it."""

    # ---- inputs ----

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

    # ---- the tick ----

    def tick(self, now: float) -> TickResult:
        self._fire_faults(now)
        self._node_lifecycle(now)
        for m in sorted(self.open.values(), key=lambda x: x.seq):
            if m.phase is Phase.UNSET:
                self._start_pending(m, now)
        self._handle_deletions(now)
        self._admit(now)
        self._evacuate(now)
        for m in sorted(self.open.values(), key=lambda x: x.seq):
            if not m.phase.is_final:
                self._advance(m, now)
        self._garbage_collect()
        writes, outcomes = tuple(self._writes), tuple(self._outcomes)
        self._writes.clear()
        self._outcomes.clear()
        return TickResult(writes, outcomes)

    # ---- faults ----

    def _fire_faults(self, now: float) -> None:
        for i in timed_faults_due(self.faults, self.fired, now):
            self.fired.add(i)
            fault = self.faults[i]
            self.faults_fired[fault.type.value] += 1
            if fault.type is FaultType.NODE_FAILURE and fault.node in self.nodes:
                self._fail_node(fault.node, now)
            elif fault.type is FaultType.NODE_DRAIN and fault.node in self.nodes:
                self._writes.append(NodeTaint(fault.node, self.config.node_drain_taint_key))
            elif fault.type is FaultType.LINK_FAILURE and fault.node is not None:
                for m in list(self.open.values()):
                    if m.phase is Phase.RUNNING and fault.node in (m.source_node, m.target_node) and m.backend:
                        m.backend.fail_link()
                        m.last = m.backend.state()

    def _node_lifecycle(self, now: float) -> None:
        """What the control plane notices of a failed node, and when.  The node lifecycle controller marks it
        NotReady after `node-monitor-grace-period` (40 s without a kubelet status); KubeVirt's node controller
        (pkg/virt-controller/watch/node/node.go) checks every minute for a virt-handler heartbeat older than 5 min,
        then labels the node `kubevirt.io/schedulable=false` and fails the VMIs on it (`NodeUnresponsive`).  Until
        then those VMIs still read Running.  Simplification: KubeVirt fails a VMI only once its virt-launcher pod is
        gone too; the simulator takes the failed node's pods as gone (as after fencing) at that moment."""
        for name, node in self.nodes.items():
            if node.failed_at is None:
                continue
            if not node.not_ready_written and now - node.failed_at >= NODE_MONITOR_GRACE_S:
                node.not_ready_written = True
                self._writes.append(NodeReady(name, False))
            if not node.unresponsive and now >= heartbeat_noticed_at(node.failed_at):
                node.unresponsive = True
                self._writes.append(NodeLabel(name, NODE_SCHEDULABLE_LABEL, "false"))
                self._writes.append(
                    Event(
                        "default",
                        "Node",
                        name,
                        None,
                        "NodeUnresponsive",
                        "virt-handler is not responsive, marking node as unresponsive",
                    )
                )
                for vmi in self.vmis.values():
                    if vmi.node == name and vmi.phase == "Running":
                        self._fail_vmi_on_unresponsive_node(vmi, name, now)

    def _fail_vmi_on_unresponsive_node(self, vmi: VmiState, node: str, now: float) -> None:
        vmi.phase = "Failed"
        vmi.reason = f"node {node} failed"
        self.vmis_lost += 1
        self._vmi_patch(vmi, {"status": {"phase": "Failed", "reason": "NodeUnresponsive"}})
        namespace, name = vmi.key.split("/", 1)
        self._writes.append(
            Event(
                namespace,
                "VirtualMachineInstance",
                name,
                None,
                "NodeUnresponsive",
                f"virt-handler on node {node} is not responsive, marking VMI as failed",
            )
        )
        for m in [o for o in self.open.values() if o.vmi_key == vmi.key and o.phase is not Phase.UNSET]:
            self._fail(m, now, VMI_SHUTDOWN_REASON, outcome=Outcome.FAILED)

    def _fail_node(self, name: str, now: float) -> None:
        node = self.nodes[name]
        if node.failed_at is not None:
            return
        node.ready = False
        node.failed_at = now
        for m in list(self.open.values()):
            if m.phase.is_final or name not in (m.source_node, m.target_node):
                continue
            if m.phase is Phase.RUNNING and m.mode == "PostCopy":
                m.vm_lost = True  # the running state is split between the two nodes
                self._fail(
                    m,
                    now,
                    VM_LOST_REASON.replace("its migration link failed", f"node {name} failed"),
                    outcome=Outcome.FAILED,
                    lost_reason="NodeUnresponsive",
                )
            elif m.phase is Phase.RUNNING and name == m.source_node:
                # The source QEMU is gone: the target's incoming migration breaks and its virt-launcher exits.
                self._fail(m, now, TARGET_POD_SHUTDOWN_REASON, outcome=Outcome.FAILED)
            elif m.phase is Phase.RUNNING or name == m.target_node:
                # The target side is gone: the source reports the broken migration (or the target pod is).
                self._fail(m, now, SOURCE_REPORTED_FAILED_REASON, outcome=Outcome.FAILED)
            # Not started yet with the source node gone: no source virt-handler will ever start it; it waits until
            # the VMI is failed at the heartbeat timeout (_node_lifecycle).

    # ---- for the exporter ----

    def latest_handed_off(self) -> dict[str, MigrationState]:
        """Per VMI, the migration its `status.migrationState` describes: the newest one past the hand-off (KubeVirt
        replaces the struct there, so older ones are no longer visible on the VMI)."""
        out: dict[str, MigrationState] = {}
        for m in sorted(self.migrations.values(), key=lambda x: x.seq):
            if m.config is not None and m.vmi_key in self.vmis:
                out[m.vmi_key] = m
        return out


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
