"""Timed faults as they fire, and a failed node as the control plane notices it: NotReady, then KubeVirt's heartbeat
timeout failing its VMIs; the migrations from or to it fail."""

from __future__ import annotations

import math

from livemig.core.vocabulary import Outcome
from livemig.sim.faults import FaultType, timed_faults_due
from livemig.sim.objects import VmiState
from livemig.sim.outcomes import (
    SOURCE_REPORTED_FAILED_REASON,
    TARGET_POD_SHUTDOWN_REASON,
    VM_LOST_REASON,
    VMI_SHUTDOWN_REASON,
    MigrationOutcomes,
)
from livemig.sim.rules import Phase
from livemig.sim.writes import Event, NodeLabel, NodeReady, NodeTaint

NODE_SCHEDULABLE_LABEL = "kubevirt.io/schedulable"
NODE_MONITOR_GRACE_S = 40.0  # kube-controller-manager --node-monitor-grace-period
HEARTBEAT_TIMEOUT_S = 300.0  # KubeVirt node controller heartBeatTimeout
HEARTBEAT_RECHECK_S = 60.0  # ... and its recheckInterval


def heartbeat_noticed_at(failed_at: float) -> float:
    """When KubeVirt's node controller notices a node whose virt-handler stopped at `failed_at`: at its first
    once-a-minute check after the heartbeat is 5 min old (so 5 to 6 min after the failure)."""
    stale_at = failed_at + HEARTBEAT_TIMEOUT_S
    return math.ceil(stale_at / HEARTBEAT_RECHECK_S) * HEARTBEAT_RECHECK_S


class FailureHandling(MigrationOutcomes):
    """The faults the scenario schedules, and the node lifecycle and KubeVirt node controllers reacting to them."""

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
