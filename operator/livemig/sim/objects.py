"""The simulation's in-memory objects: VMIs, nodes and migrations as virt-controller and virt-handler track them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livemig.core.cluster import Node, Vmi
from livemig.core.kubevirt import KubevirtMigrationConfig
from livemig.core.model import RunState
from livemig.core.vocabulary import Outcome, Technique
from livemig.sim import rules
from livemig.sim.backend import MigrationBackend
from livemig.sim.rules import Phase

# KubeVirt's PhaseTransitionTimeBuckets (pkg/monitoring/metrics/virt-controller/metrics.go, v1.5.0 to v1.8.0).
PHASE_BUCKETS_S = (0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)


class PhaseHistogram:
    """kubevirt_vmi_migration_phase_transition_time_from_creation_seconds: simulated seconds from a VMIM's creation
    to each phase it enters, by phase."""

    def __init__(self) -> None:
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def observe(self, phase: str, seconds: float) -> None:
        counts = self.buckets.setdefault(phase, [0] * (len(PHASE_BUCKETS_S) + 1))
        for i, bound in enumerate(PHASE_BUCKETS_S):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[phase] = self.sums.get(phase, 0.0) + seconds


@dataclass
class VmiState:
    spec: Vmi
    node: str
    labels: dict[str, str]
    phase: str = "Running"
    reason: str | None = None
    migration_uid: str | None = None  # bound unfinished migration
    throttle: float = 0.0  # auto-converge CPU throttle of the guest (0..0.99)
    paused: bool = False
    cpu_seconds: float = 0.0  # wall-equivalent counter (see docs/simulator.md)
    delay_seconds: float = 0.0  # vCPU time runnable but not running (node over-committed), wall-equivalent

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass
class NodeState:
    spec: Node
    ready: bool = True  # for the simulator's scheduler: False from the moment the node fails
    failed_at: float | None = None
    not_ready_written: bool = False  # the Node's Ready condition went False (after the grace period)
    unresponsive: bool = False  # KubeVirt's node controller noticed the stale virt-handler heartbeat
    cpu_seconds: dict[str, float] = field(default_factory=lambda: {"idle": 0.0, "user": 0.0, "system": 0.0})
    psi: dict[str, float] = field(
        default_factory=lambda: {
            "cpu_waiting": 0.0,
            "memory_waiting": 0.0,
            "memory_stalled": 0.0,
            "io_waiting": 0.0,
            "io_stalled": 0.0,
        }
    )


@dataclass
class MigrationState:
    namespace: str
    name: str
    uid: str
    vmi_key: str
    seq: int
    created_at: float
    priority: str = ""
    added_node_selector: Mapping[str, str] = field(default_factory=dict)
    phase: Phase = Phase.UNSET
    timestamps: list[dict[str, str]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    source_node: str = ""
    target_node: str | None = None
    has_target_pod: bool = False
    pod_unschedulable: bool = False
    pod_pending_since: float = 0.0
    next_at: float = 0.0
    requeue_at: float = 0.0
    config: KubevirtMigrationConfig | None = None
    policy_name: str | None = None
    matched_policy: str | None = None
    technique: Technique | None = None
    backend: MigrationBackend | None = None
    last: RunState | None = None
    mode: str | None = None
    running_since: float | None = None
    end_at: float | None = None
    final_at: float | None = None
    abort_requested: bool = False
    abort_status: str | None = None
    deleting: bool = False
    failure_reason: str | None = None
    outcome: Outcome | None = None
    vm_lost: bool = False
    predicted: dict[str, Any] | None = None
    bandwidth_bps: float = 0.0
    dirty_rate_bps: float = 0.0
    finalizer_removed: bool = False
    max_throttle: float = 0.0
    created_epoch_s: float = 0.0  # metadata.creationTimestamp (whole seconds)
    evacuation_node: str | None = None  # annotation kubevirt.io/evacuationMigration
    unschedulable_timeout_s: float = rules.UNSCHEDULABLE_POD_TIMEOUT_S
    pending_timeout_s: float = rules.PENDING_POD_TIMEOUT_S
    unschedulable_reported: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def view(self) -> rules.MigrationView:
        return rules.MigrationView(
            self.key, self.vmi_key, self.phase, self.source_node, self.has_target_pod, self.priority, self.created_at
        )


def summarize(migrations: Iterable[MigrationState]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in migrations:
        counts[m.phase.value or "Unset"] = counts.get(m.phase.value or "Unset", 0) + 1
    return counts
