"""Outputs of the performance model: the stepper's state and a whole run's prediction."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from livemig.core.vocabulary import AbortReason, Outcome, Technique


class MigrationMode(StrEnum):
    """KubeVirt's `status.migrationState.mode`."""

    PRE_COPY = "PreCopy"
    POST_COPY = "PostCopy"
    PAUSED = "Paused"


class Phase(StrEnum):
    """Finer than the mode: where the migration is in its physics."""

    PRE_COPY = "pre-copy"  # iterative passes, guest running (or paused by KubeVirt)
    STOP_AND_COPY = "stop-and-copy"  # guest stopped, last dirty pages + state on the wire (downtime)
    POST_COPY = "post-copy"  # guest running on the target, remaining pages pulled once
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Degradation:
    """What the migration costs the guest beyond its downtime.

    `throttle_cpu_s`: integral of the auto-converge throttle over time (seconds of vCPU time taken away per vCPU);
    `fault_stall_s`: time the vCPUs wait on post-copy page faults; `max_slowdown`: the largest fraction of guest
    throughput lost at any moment (the final throttle, or the post-copy stall fraction).
    """

    throttle_cpu_s: float = 0.0
    fault_stall_s: float = 0.0
    max_slowdown: float = 0.0

    @property
    def total_s(self) -> float:
        return self.throttle_cpu_s + self.fault_stall_s


@dataclass(frozen=True, slots=True)
class RunState:
    """A snapshot of a `MigrationRun` (what KubeVirt's migrationState and metrics would show)."""

    elapsed_s: float
    phase: Phase
    mode: MigrationMode
    remaining_bytes: float  # bytes still to send in the current pass/phase (libvirt dataRemaining)
    transferred_bytes: float  # bytes on the wire so far (libvirt dataProcessed)
    rounds: int  # completed pre-copy passes
    throttle: float  # current auto-converge throttle, 0..0.99
    dirty_rate_bps: float  # effective guest dirty rate now (after throttle; 0 while stopped)
    transfer_rate_bps: float  # wire rate now
    done: bool
    outcome: Outcome | None
    abort_reason: AbortReason | None
    downtime_s: float  # guest stopped so far
    risk_window_s: float  # time spent after the post-copy switch so far
    vm_lost: bool  # a link failure after the post-copy switch: the VM's state is split between hosts


@dataclass(frozen=True, slots=True)
class Prediction:
    """The figures of one technique for one VM on one link."""

    technique: Technique
    total_time_s: float
    downtime_s: float
    transferred_bytes: int
    rounds: int
    outcome: Outcome
    abort_reason: AbortReason | None
    degradation: Degradation
    risk_window_s: float  # post-copy: the VM is lost if the link fails during this window
    final_throttle: float
    switch_time_s: float | None  # when post-copy started (None if it did not)
    throttle_steps: tuple[tuple[float, float], ...]  # (elapsed_s, new throttle) each time auto-converge raised it
    timeline: tuple[tuple[float, float], ...]  # (elapsed_s, remaining_bytes) points, for --plot
    # The model's horizon (MigrationSettings.horizon_s) when the run stopped there, nothing else having ended it
    # (outcome not-converged without a caller's cap before it); None otherwise.
    stopped_at_horizon_s: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome.succeeded
