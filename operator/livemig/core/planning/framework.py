"""Plans are data: ordered moves with their predicted cost and schedule, plus the plan's efficacy indicators.

Every purpose has one pure entry point with the same shape (`Planner`): snapshot + planning spec + cost model →
`Plan`.  The core returns decisions; it never logs or acts on them (the controller applies, the CLI prints).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from livemig.core.cluster import ClusterSnapshot
from livemig.core.planning.costs import CostModel
from livemig.core.planning.spec import PlanningSpec
from livemig.core.vocabulary import Purpose, Technique


class PlanStatus(StrEnum):
    READY = "Ready"  # moves to apply
    NOTHING_TO_DO = "NothingToDo"  # no trigger fired, or nothing could be moved
    REJECTED = "Rejected"  # a plan was found but refused (e.g. its end state would trigger moves again)


@dataclass(frozen=True, slots=True)
class Move:
    """One live migration: which VMI, from where to where, how, at what predicted cost, when, and why."""

    namespace: str
    name: str
    source: str
    target: str
    technique: Technique
    predicted_time_s: float
    predicted_downtime_s: float
    predicted_bytes: int
    bandwidth_bps: float  # per-migration bandwidth assumed by the prediction
    reason: str  # why this VMI moves to this target
    technique_reason: str  # why this technique (the model's selector)
    start_s: float = 0.0  # scheduled start, seconds after the plan starts
    finish_s: float = 0.0  # predicted finish
    wave: int = 0  # moves of one wave may run together under the limits; wave n+1 starts after wave n
    predicted_risk_window_s: float = 0.0  # post-copy: how long the VM depends on both nodes and the link

    @property
    def vmi(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A VMI in scope that the plan leaves where it is, and why (cooldown, budget, no feasible target, ...)."""

    vmi: str
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class NodeAction:
    """A change to a node the plan asks for after its moves (consolidation: cordon or label released nodes)."""

    node: str
    cordon: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Efficacy:
    """Indicators of what the plan achieves, computed over the in-scope nodes (utilisation as fractions)."""

    moves: int = 0
    bytes_moved: int = 0
    total_downtime_s: float = 0.0
    makespan_s: float = 0.0
    nodes_released: tuple[str, ...] = ()
    nodes_used_before: int = 0
    nodes_used_after: int = 0
    cpu_max_before: float = 0.0
    cpu_max_after: float = 0.0
    memory_max_before: float = 0.0
    memory_max_after: float = 0.0
    cpu_stddev_before: float = 0.0
    cpu_stddev_after: float = 0.0
    memory_stddev_before: float = 0.0
    memory_stddev_after: float = 0.0
    nodes_over_threshold_before: int = 0  # balancing: nodes above the high threshold
    nodes_over_threshold_after: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    purpose: Purpose
    policy: str
    status: PlanStatus
    reason: str
    snapshot_time_s: float
    moves: tuple[Move, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    node_actions: tuple[NodeAction, ...] = ()
    efficacy: Efficacy = field(default_factory=Efficacy)
    limits: dict[str, Any] = field(default_factory=dict)  # the limits the schedule honours
    # Load balancing: the nodes found hot (above `high`, or previously hot and inside the hysteresis band); the
    # next cycle passes them back as `BalancingSpec.previously_hot`.
    hot_nodes: tuple[str, ...] = ()

    @property
    def waves(self) -> tuple[tuple[Move, ...], ...]:
        count = max((m.wave for m in self.moves), default=-1) + 1
        return tuple(tuple(m for m in self.moves if m.wave == w) for w in range(count))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (enums as their strings)."""
        out = asdict(self)
        out["purpose"] = str(self.purpose)
        out["status"] = str(self.status)
        for move, raw in zip(self.moves, out["moves"], strict=True):
            raw["technique"] = str(move.technique)
            raw["vmi"] = move.vmi
        out["waves"] = [[m.vmi for m in wave] for wave in self.waves]
        return out


class Planner(Protocol):
    """The common interface: one pure function per purpose."""

    def __call__(self, snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel) -> Plan: ...


def plan_id(spec: PlanningSpec, snapshot: ClusterSnapshot, moves: tuple[Move, ...]) -> str:
    """Deterministic: the same snapshot, policy and moves give the same id (so a restart never duplicates)."""
    body = json.dumps(
        [spec.name, str(spec.purpose), snapshot.time_s, [(m.vmi, m.source, m.target) for m in moves]],
        sort_keys=True,
    )
    return "plan-" + hashlib.sha256(body.encode()).hexdigest()[:12]
