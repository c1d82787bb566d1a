"""The per-VMI migration data plane: the seam between KubeVirt's control flow (the simulator) and the physics.

`backend: sim` (the default) is the model engineer's stepper, `livemig.core.model.MigrationRun`, the single
implementation of the physics (contracts §2).  `backend: qemu` (issue 6, the lab engineer) plugs in here with the same
`MigrationBackend` protocol: real QEMU instances migrated over loopback, advanced in wall time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from livemig.core.errors import SpecError
from livemig.core.kubevirt import KubevirtMigrationConfig
from livemig.core.model import LinkParams, MigrationRun, MigrationSettings, Prediction, RunState, VmParams
from livemig.core.vocabulary import AbortReason, Technique


class MigrationBackend(Protocol):
    """What the simulator drives: one migration, stepped in simulated seconds, plus KubeVirt's external events."""

    def advance(self, dt_s: float, *, dirty_rate_bps: float, bandwidth_bps: float) -> RunState: ...

    def abort(self, reason: AbortReason) -> bool:
        """Cancel; False when refused (stop-and-copy or post-copy already began)."""
        ...

    def fail_link(self) -> bool: ...

    def state(self) -> RunState: ...

    def predict(self) -> Prediction:
        """What the model predicts for this migration from its start values (for the outcome log)."""
        ...


@dataclass(frozen=True, slots=True)
class MigrationStart:
    """Everything a backend needs to start a migration (values at the start)."""

    vmi_key: str
    technique: Technique
    vm: VmParams
    link: LinkParams
    settings: MigrationSettings


def technique_for(config: KubevirtMigrationConfig) -> Technique:
    """The technique KubeVirt's flags amount to: auto-converge if allowed, else post-copy (pre-copy first, switch at
    the completion timeout) if allowed, else plain pre-copy."""
    if config.allow_auto_converge:
        return Technique.AUTO_CONVERGE
    if config.allow_post_copy:
        return Technique.POST_COPY
    return Technique.PRE_COPY


def settings_for(config: KubevirtMigrationConfig) -> MigrationSettings:
    """KubeVirt's resolved migration configuration as the model's settings (qemu profile, KubeVirt's timeouts)."""
    return MigrationSettings(
        completion_timeout_per_gib=config.completion_timeout_per_gib,
        progress_timeout_s=config.progress_timeout_s,
        allow_post_copy=config.allow_post_copy,
        allow_auto_converge=config.allow_auto_converge,
        allow_workload_disruption=config.allows_workload_disruption,
    )


class ModelBackend:
    """`backend: sim`: the performance model's stepper, run as KubeVirt runs a migration with the resolved
    configuration (`MigrationRun.for_kubevirt_config`: completion and progress timeouts, post-copy switch or pause)."""

    def __init__(self, start: MigrationStart) -> None:
        self._start = start
        self._run = MigrationRun.for_kubevirt_config(start.vm, start.link, start.settings)

    def advance(self, dt_s: float, *, dirty_rate_bps: float, bandwidth_bps: float) -> RunState:
        return self._run.advance(dt_s, dirty_rate_bps=dirty_rate_bps, bandwidth_bps=bandwidth_bps)

    def abort(self, reason: AbortReason) -> bool:
        return self._run.abort(reason)

    def fail_link(self) -> bool:
        return self._run.fail_link()

    def state(self) -> RunState:
        return self._run.state()

    def predict(self) -> Prediction:
        s = self._start
        return MigrationRun.for_kubevirt_config(s.vm, s.link, s.settings).run_to_end()


BackendFactory = Callable[[MigrationStart], MigrationBackend]
_BACKENDS: dict[str, BackendFactory] = {"sim": ModelBackend}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Plug in another data plane (the lab registers `qemu`)."""
    _BACKENDS[name] = factory


def backend_factory(name: str | None, field: str = "backend") -> BackendFactory:
    key = name or "sim"
    try:
        return _BACKENDS[key]
    except KeyError:
        raise SpecError(
            field, f"backend {key!r} is not available here (known: {', '.join(sorted(_BACKENDS))}; qemu needs the lab)"
        ) from None
