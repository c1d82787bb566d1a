"""The cost of one move, from the performance model, cached per (VMI, bandwidth).

Planners ask a `CostModel` what moving a VMI at a given bandwidth costs; `ModelCosts` answers with the model
engineer's `select_technique` (contracts §2) under the policy's technique settings and KubeVirt's configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from livemig.core.cluster import KubevirtMigrationConfig, Vmi
from livemig.core.guest import guest_params
from livemig.core.model import LinkParams, MigrationSettings, SelectionPolicy, VmParams, select_technique
from livemig.core.planning.spec import TechniqueSpec
from livemig.core.vocabulary import Outcome, Technique


@dataclass(frozen=True, slots=True)
class MoveCost:
    """Predicted cost of one live migration with the chosen technique."""

    technique: Technique
    total_time_s: float
    downtime_s: float
    transferred_bytes: int
    outcome: Outcome
    reason: str  # why this technique (the selector's one-line reason)
    risk_window_s: float = 0.0  # post-copy: the VM is lost if the link fails during this long after the switch

    @property
    def succeeded(self) -> bool:
        return self.outcome.succeeded


class CostModel(Protocol):
    """Predicts a move's cost.  Must be pure and deterministic for equal inputs."""

    def cost(self, vmi: Vmi, bandwidth_bps: float) -> MoveCost: ...


_RATE_STEP = 2 ** (1 / 32)  # ~2.2 %: finer than any dirty-rate measurement


def quantised_rate(rate_bps: float) -> float:
    """A dirty rate rounded up to a geometric grid (~2.2 % steps, from 1 KiB/s), so near-equal VMIs share one
    prediction.  Rounding up keeps the prediction on the safe side."""
    if rate_bps <= 1024.0:
        return 0.0 if rate_bps <= 0 else 1024.0
    return 1024.0 * _RATE_STEP ** math.ceil(math.log(rate_bps / 1024.0, _RATE_STEP) - 1e-9)


class ModelCosts:
    """`CostModel` backed by the performance model's technique selector (livemig.core.model.select_technique).

    Predictions are cached per (guest, bandwidth), the guest as `livemig.core.guest.guest_params` gives it (memory,
    dirty rate, working set, zero pages from the used memory, the writers' CPU share): a planner asks about the same
    VMI at the same bandwidth many times, and identical VMIs share one prediction.  The dirty rate is rounded up to
    a ~2 % grid first (`quantised_rate`), the usage to coarse steps toward the safe side, so 5,000 VMIs cost a few
    hundred predictions, not 5,000.  The cache lives in
    this object, which a caller creates per planning run; the answers stay a pure function of the inputs.
    """

    def __init__(self, policy: SelectionPolicy) -> None:
        self.policy = policy
        self._cache: dict[tuple[VmParams, float], MoveCost] = {}

    @classmethod
    def for_spec(cls, technique: TechniqueSpec, kubevirt: KubevirtMigrationConfig) -> ModelCosts:
        """The selection policy a livemig policy's `spec.technique` gives under KubeVirt's configuration."""
        allow_post_copy = kubevirt.allow_post_copy if technique.allow_post_copy is None else technique.allow_post_copy
        allow_auto_converge = (
            kubevirt.allow_auto_converge if technique.allow_auto_converge is None else technique.allow_auto_converge
        )
        # Set, the policy's completionTimeoutPerGiB replaces the cluster's, 0 (no completion timeout) included.
        timeout = (
            float(technique.completion_timeout_per_gib)
            if technique.completion_timeout_per_gib is not None
            else float(kubevirt.completion_timeout_per_gib)
        )
        settings = MigrationSettings(
            completion_timeout_per_gib=timeout,
            progress_timeout_s=float(kubevirt.progress_timeout_s),
            allow_post_copy=allow_post_copy,
            allow_auto_converge=allow_auto_converge,
            allow_workload_disruption=kubevirt.allows_workload_disruption,
        )
        return cls(
            SelectionPolicy(
                mode=technique.mode,
                objective=technique.objective,
                max_downtime_s=technique.max_downtime_s,
                allow_post_copy=allow_post_copy,
                allow_auto_converge=allow_auto_converge,
                settings=settings,
            )
        )

    def cost(self, vmi: Vmi, bandwidth_bps: float) -> MoveCost:
        vm = guest_params(
            vmi,
            dirty_rate_bps=quantised_rate(vmi.dirty_rate_bps),
            cpu_cores=vmi.cpu_cores,
            memory_used_bytes=vmi.memory_used_bytes,
            quantised=True,
        )
        key = (vm, bandwidth_bps)
        found = self._cache.get(key)
        if found is None:
            selection = select_technique(vm, LinkParams(bandwidth_bps), self.policy, compare_all=False)
            p = selection.predictions[selection.chosen]
            found = MoveCost(
                technique=selection.chosen,
                total_time_s=p.total_time_s,
                downtime_s=p.downtime_s,
                transferred_bytes=p.transferred_bytes,
                outcome=p.outcome,
                reason=selection.reason,
                risk_window_s=p.risk_window_s,
            )
            self._cache[key] = found
        return found
