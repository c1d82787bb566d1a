"""What the simulation asks the engine to write to the API server: one value per write, returned by each tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class VmimStatus:
    namespace: str
    name: str
    status: Mapping[str, Any]  # merge-patched into .status


@dataclass(frozen=True, slots=True)
class VmimFinalizerRemoval:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class VmimDeletion:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class VmiPatch:
    namespace: str
    name: str
    patch: Mapping[str, Any]  # merge patch of the whole object (labels, status)
    # KubeVirt replaces `status.migrationState` whole at hand-off (`handleTargetPodHandoff`): the engine then writes
    # the patch's labels and status fields as a JSON patch (`add` replaces a member), so nothing of the previous
    # migration survives, as a merge patch would leave it.
    replace: bool = False


@dataclass(frozen=True, slots=True)
class NodeReady:
    name: str
    ready: bool


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event with KubeVirt's reason (kubevirt.md §7.1) on a VMIM or a VMI."""

    namespace: str
    kind: str  # VirtualMachineInstanceMigration | VirtualMachineInstance
    name: str
    uid: str | None
    reason: str
    message: str
    warning: bool = False
    component: str = "virt-controller"


@dataclass(frozen=True, slots=True)
class VmimCreate:
    """A VMIM KubeVirt's own controllers create (the evacuation controller)."""

    namespace: str
    manifest: Mapping[str, Any]
    vmi: str  # the VMI's name, for the VMI event


@dataclass(frozen=True, slots=True)
class NodeLabel:
    """A label KubeVirt's node controller writes on a Node (`kubevirt.io/schedulable=false`)."""

    name: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class NodeTaint:
    """The scenario's `nodeDrain` event: taint the node `<key>:NoSchedule` (as `kubectl taint` would)."""

    name: str
    key: str


Write = (
    VmimStatus | VmimFinalizerRemoval | VmimDeletion | VmiPatch | NodeReady | Event | VmimCreate | NodeTaint | NodeLabel
)


@dataclass(frozen=True, slots=True)
class TickResult:
    writes: tuple[Write, ...]
    outcomes: tuple[dict[str, Any], ...]
