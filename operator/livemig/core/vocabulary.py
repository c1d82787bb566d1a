"""Enumerations shared by the model, the planners, the simulator and the lab: one spelling everywhere.

Values match the CRD strings (`mode`, `objective`, `purpose`) and the CLI/JSON names (techniques, outcomes).
"""

from __future__ import annotations

from enum import StrEnum


class Technique(StrEnum):
    """A live-migration technique.  Only the first three can be actuated through KubeVirt."""

    PRE_COPY = "pre-copy"
    POST_COPY = "post-copy"
    AUTO_CONVERGE = "auto-converge"
    XBZRLE = "xbzrle"
    ADAPTIVE_COMPRESSION = "adaptive-compression"
    WORKING_SET = "working-set"
    TRACE_REPLAY = "trace-replay"

    @property
    def actuatable(self) -> bool:
        """True when livemig can make KubeVirt use it (through KubeVirt's MigrationPolicy)."""
        return self in ACTUATABLE_TECHNIQUES


ACTUATABLE_TECHNIQUES = frozenset({Technique.PRE_COPY, Technique.POST_COPY, Technique.AUTO_CONVERGE})


class Outcome(StrEnum):
    """How a migration ended; the one outcome set used by the model, the simulator, the lab and the operator."""

    COMPLETED = "completed"
    SWITCHED_TO_POST_COPY = "switched-to-post-copy"  # completed after the switch to post-copy
    FORCED_STOP = "forced-stop"  # xen profile: stop-and-copy forced by a cap
    PAUSED = "paused"  # KubeVirt's workload-disruption pause (completed while paused)
    ABORTED = "aborted"  # see AbortReason
    NOT_CONVERGED = "not-converged"  # a caller's wall-clock cap ended it first
    FAILED = "failed"  # the migration broke (link or node failure, target refused); not a timeout

    @property
    def succeeded(self) -> bool:
        return self in (Outcome.COMPLETED, Outcome.SWITCHED_TO_POST_COPY, Outcome.FORCED_STOP, Outcome.PAUSED)


class AbortReason(StrEnum):
    COMPLETION_TIMEOUT = "completion-timeout"
    PROGRESS_TIMEOUT = "progress-timeout"
    REQUESTED = "requested"  # the VirtualMachineInstanceMigration was deleted


class TechniqueMode(StrEnum):
    """`spec.technique.mode` of a livemig policy."""

    AUTO = "Auto"
    PRE_COPY = "PreCopy"
    POST_COPY = "PostCopy"
    AUTO_CONVERGE = "AutoConverge"


class Objective(StrEnum):
    """`spec.technique.objective` of a livemig policy."""

    MIN_DOWNTIME = "MinDowntime"
    MIN_TOTAL_TIME = "MinTotalTime"
    BALANCED = "Balanced"


class Purpose(StrEnum):
    """`spec.purpose` of a livemig policy."""

    MAINTENANCE = "Maintenance"
    EVACUATION = "Evacuation"
    LOAD_BALANCING = "LoadBalancing"
    CONSOLIDATION = "Consolidation"
