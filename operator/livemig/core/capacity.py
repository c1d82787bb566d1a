"""Requests: what a VMI's virt-launcher pod asks of a node, and whether a node admits one more (the one rule).

kube-scheduler admits a pod by its requests (NodeResourcesFit): the requests of every pod already bound to the node,
plus the new pod's, must stay within the node's allocatable CPU and memory.  A migration's target pod is a second
virt-launcher pod, sized like the first by virt-controller (`pkg/virt-controller/services/renderresources.go`,
KubeVirt v1.5-v1.8):

- memory = the VMI's memory request (`spec.domain.resources.requests.memory`; unset: the guest memory, divided by
  `memoryOvercommit`/100 as virt-api's defaulting does) plus virt-launcher's overhead (`GetMemoryOverhead`: page
  tables = request/512, 215Mi for virt-launcher-monitor, virt-launcher, virtlogd, virtqemud and QEMU, 8Mi per vCPU,
  8Mi for the IO thread, 16Mi video RAM, times `additionalGuestMemoryOverheadRatio`), unless the VMI sets
  `overcommitGuestOverhead`;
- CPU = the VMI's own CPU request, else vCPUs / `cpuAllocationRatio` (KubeVirt's default 10).

Not counted (x86_64 without VFIO, SEV, TPM, downward metrics, dedicated CPUs; hotplug and sidecar containers): each
adds to the real overhead, so a node near full by this rule may still refuse.  The planners' placement
(`livemig.core.planning.placement`) and the simulator's scheduler (`livemig.sim.scheduler`) both call
`launcher_requests` and `request_refusal`.  Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from livemig.core.cluster import LauncherSizing, Node, Vmi

MIB = 2**20
#: virt-launcher-monitor 25Mi + virt-launcher 100Mi + virtlogd 20Mi + virtqemud 40Mi + QEMU 30Mi.
STATIC_OVERHEAD_BYTES = (25 + 100 + 20 + 40 + 30) * MIB
PER_VCPU_OVERHEAD_BYTES = 8 * MIB
IOTHREAD_OVERHEAD_BYTES = 8 * MIB
VIDEO_RAM_OVERHEAD_BYTES = 16 * MIB
PAGETABLE_DIVISOR = 512
#: Float sums are compared with these margins (kube-scheduler compares whole bytes and millicores).
_BYTE_MARGIN = 0.5
_CPU_MARGIN = 1e-6


@dataclass(frozen=True, slots=True)
class Requests:
    """CPU (cores) and memory (bytes) requested of a node."""

    cpu_cores: float = 0.0
    memory_bytes: float = 0.0

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu_cores + other.cpu_cores, self.memory_bytes + other.memory_bytes)

    def __sub__(self, other: Requests) -> Requests:
        return Requests(self.cpu_cores - other.cpu_cores, self.memory_bytes - other.memory_bytes)


NO_REQUESTS = Requests()
#: KubeVirt's defaults: no memory overcommit, cpuAllocationRatio 10, no additional overhead ratio.
DEFAULT_SIZING = LauncherSizing()


def memory_request_bytes(vmi: Vmi, sizing: LauncherSizing) -> float:
    """The VMI's memory request before the overhead: its own, else guest memory x 100 / memoryOvercommit."""
    if vmi.memory_request_bytes is not None:
        return vmi.memory_request_bytes
    if sizing.memory_overcommit_percent == 100:
        return vmi.memory_bytes
    return float(int(vmi.memory_bytes) * 100 // sizing.memory_overcommit_percent)


def memory_overhead_bytes(vmi: Vmi, sizing: LauncherSizing) -> float:
    """virt-launcher's memory overhead for `vmi` (KubeVirt's GetMemoryOverhead, the terms listed above)."""
    overhead = (
        memory_request_bytes(vmi, sizing) / PAGETABLE_DIVISOR
        + STATIC_OVERHEAD_BYTES
        + PER_VCPU_OVERHEAD_BYTES * max(1, vmi.vcpus)
        + IOTHREAD_OVERHEAD_BYTES
        + VIDEO_RAM_OVERHEAD_BYTES
    )
    return overhead * sizing.additional_guest_memory_overhead_ratio


def launcher_requests(vmi: Vmi, sizing: LauncherSizing) -> Requests:
    """What `vmi`'s virt-launcher pod (source or migration target alike) requests of its node."""
    memory = memory_request_bytes(vmi, sizing)
    if not vmi.overcommit_guest_overhead:
        memory += memory_overhead_bytes(vmi, sizing)
    cpu = vmi.cpu_request_cores if vmi.cpu_request_cores is not None else vmi.vcpus / sizing.cpu_allocation_ratio
    return Requests(cpu, memory)


def node_base_requests(node: Node) -> Requests:
    """What the node's pods other than virt-launchers request (snapshot `nodes[].otherRequests`)."""
    return Requests(node.other_cpu_requests_cores, node.other_memory_requests_bytes)


def requested_on(node: Node, vmis: Iterable[Vmi], sizing: LauncherSizing) -> Requests:
    """Everything requested of `node`: its other pods plus the virt-launcher pods of `vmis` (placed or incoming)."""
    total = node_base_requests(node)
    for vmi in vmis:
        total += launcher_requests(vmi, sizing)
    return total


def request_refusal(node: Node, requested: Requests, pod: Requests) -> str | None:
    """Why `node`, with `requested` already on it (bound pods and in-flight targets), refuses `pod`; None = admits.

    kube-scheduler's NodeResourcesFit: requested + pod <= allocatable, per resource."""
    if requested.memory_bytes + pod.memory_bytes > node.memory_bytes + _BYTE_MARGIN:
        return "insufficient memory"
    if requested.cpu_cores + pod.cpu_cores > node.cpu_cores + _CPU_MARGIN:
        return "insufficient cpu"
    return None


__all__ = [
    "DEFAULT_SIZING",
    "NO_REQUESTS",
    "LauncherSizing",
    "Requests",
    "launcher_requests",
    "memory_overhead_bytes",
    "memory_request_bytes",
    "node_base_requests",
    "request_refusal",
    "requested_on",
]
