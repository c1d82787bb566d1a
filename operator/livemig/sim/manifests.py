"""The Kubernetes objects the simulator writes, as manifests: Nodes and their status, VMIs, Events, and the JSON
patch that replaces a VMI's status fields whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livemig.core.capacity import DEFAULT_SIZING, memory_request_bytes
from livemig.core.cluster import LauncherSizing
from livemig.sim.objects import VmiState
from livemig.sim.writes import Event

KV_GROUP, KV_VERSION = "kubevirt.io", "v1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "livemig-sim"}


def event_manifest(event: Event, stamp: str) -> dict[str, Any]:
    involved: dict[str, Any] = (
        {"apiVersion": "v1", "kind": "Node", "name": event.name}
        if event.kind == "Node"
        else {
            "apiVersion": f"{KV_GROUP}/{KV_VERSION}",
            "kind": event.kind,
            "name": event.name,
            "namespace": event.namespace,
        }
    )
    if event.uid:
        involved["uid"] = event.uid
    return {
        "metadata": {"generateName": f"{event.name}.", "namespace": event.namespace},
        "involvedObject": involved,
        "reason": event.reason,
        "message": event.message,
        "type": "Warning" if event.warning else "Normal",
        "source": {"component": event.component},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


BANDWIDTH_ANNOTATION = "livemig.io/migration-bandwidth"


def bandwidth_text(bytes_per_s: float) -> str:
    """A link rate as the annotation livemig reads (`25Gbit`, `10Gbit`, `2500Mbit`)."""
    bits = bytes_per_s * 8
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bits >= scale and abs(bits / scale - round(bits / scale)) < 1e-9:
            return f"{round(bits / scale)}{unit}bit"
    return f"{bits:.0f}bit"


def json_patch_ops(patch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A VMI patch's labels and top-level status fields as JSON-patch operations that replace each value whole
    (`add` replaces an existing member; a `None` label is removed).  The VMI always has labels and a status."""
    ops: list[dict[str, Any]] = []
    for key, value in ((patch.get("metadata") or {}).get("labels") or {}).items():
        path = "/metadata/labels/" + key.replace("~", "~0").replace("/", "~1")
        ops.append({"op": "remove", "path": path} if value is None else {"op": "add", "path": path, "value": value})
    for key, value in (patch.get("status") or {}).items():
        ops.append({"op": "add", "path": f"/status/{key}", "value": value})
    return ops


def node_manifest(node: Any, *, annotate_bandwidth: bool = True) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": node.name, "kubevirt.io/schedulable": "true", **node.labels, **MANAGED_BY}
    spec: dict[str, Any] = {
        "taints": [{"key": t.key, "value": t.value, "effect": str(t.effect)} for t in node.taints],
        "unschedulable": not node.schedulable,
    }
    metadata: dict[str, Any] = {"name": node.name, "labels": labels}
    if annotate_bandwidth:
        metadata["annotations"] = {BANDWIDTH_ANNOTATION: bandwidth_text(node.link_bandwidth_bps)}
    return {"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": spec}


def node_status(node: Any, ready: bool, stamp: str) -> dict[str, Any]:
    capacity = {"cpu": _cpu(node.cpu_cores), "memory": str(int(node.memory_bytes)), "pods": "250"}
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready and node.healthy else "False",
                "reason": "KubeletReady" if ready and node.healthy else "NodeStatusUnknown",
                "message": "simulated by livemig-sim" if ready else "node failure injected by livemig-sim",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ],
        "addresses": [{"type": "Hostname", "address": node.name}],
    }


def vmi_manifest(
    v: VmiState, stamp: str, document: Mapping[str, Any] | None = None, *, sizing: LauncherSizing = DEFAULT_SIZING
) -> dict[str, Any]:
    """The VMI as virt-handler keeps it; `document` is the scenario's entry, whose Kubernetes-shaped scheduling
    fields (affinity, tolerations) are copied verbatim.  `resources.requests` as virt-api's defaulting leaves them:
    memory = the VMI's request, else the guest memory under memoryOvercommit; CPU only when the VMI sets one."""
    spec_vmi = v.spec
    namespace, name = v.key.split("/", 1)
    conditions: list[dict[str, Any]] = [
        {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp},
    ]
    if spec_vmi.live_migratable:
        conditions.append(
            {"type": "LiveMigratable", "status": "True", "lastProbeTime": None, "lastTransitionTime": None}
        )
    else:
        conditions.append(
            {
                "type": "LiveMigratable",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": None,
                "reason": "DisksNotLiveMigratable",
                "message": f"PVC {name}-root is not shared, live migration requires that all PVCs must be shared "
                "(using ReadWriteMany access mode)",
            }
        )
    memory = str(int(spec_vmi.memory_bytes))
    requests: dict[str, Any] = {"memory": str(int(memory_request_bytes(spec_vmi, sizing)))}
    if spec_vmi.cpu_request_cores is not None:
        requests["cpu"] = _cpu(spec_vmi.cpu_request_cores)
    resources: dict[str, Any] = {"requests": requests}
    if spec_vmi.overcommit_guest_overhead:
        resources["overcommitGuestOverhead"] = True
    spec: dict[str, Any] = {
        "domain": {
            "cpu": {"sockets": 1, "cores": spec_vmi.vcpus, "threads": 1},
            "memory": {"guest": memory},
            "resources": resources,
            "devices": {"interfaces": [{"name": "default", "masquerade": {}}]},
        },
        "networks": [{"name": "default", "pod": {}}],
        "evictionStrategy": str(spec_vmi.eviction_strategy),
    }
    if spec_vmi.node_selector:
        spec["nodeSelector"] = dict(spec_vmi.node_selector)
    for key in ("affinity", "tolerations"):
        if document and document.get(key):
            spec[key] = document[key]
    return {
        "apiVersion": f"{KV_GROUP}/{KV_VERSION}",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace, "labels": {**v.labels, **MANAGED_BY}},
        "spec": spec,
        "status": {
            "phase": "Running",
            "nodeName": v.node,
            "migrationMethod": "LiveMigration",
            "conditions": conditions,
            "interfaces": [{"name": "default", "ipAddress": "10.244.0.2"}],
        },
    }


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"
