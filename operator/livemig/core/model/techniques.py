"""What a technique means to KubeVirt and to the round engine.

`actuation()` is the KubeVirt configuration livemig writes for a technique (its MigrationPolicy: throttle, completion
deadline and what happens there); `kubevirt_actuation()` is KubeVirt's own reading of whatever configuration is in
force, which the simulator runs.  `mechanics_for()` picks the family module that says how the technique's passes run.
`MigrationRun` takes both at its start, and the technique selector computes them once for several runs.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import NamedTuple

from livemig.core.model import postcopy
from livemig.core.model.compression import adaptive_compression_mechanics, xbzrle_mechanics
from livemig.core.model.mechanics import Mechanics
from livemig.core.model.params import LinkParams, MigrationSettings, StopRules, VmParams
from livemig.core.model.precopy import precopy_mechanics
from livemig.core.model.tracereplay import trace_replay_mechanics
from livemig.core.model.workingset import working_set_mechanics
from livemig.core.units import completion_timeout_s
from livemig.core.vocabulary import Technique


class DeadlineAction(StrEnum):
    """What happens when the completion deadline passes (KubeVirt `processInflightMigration`)."""

    NONE = "none"
    SWITCH_TO_POST_COPY = "switch-to-post-copy"
    PAUSE = "pause"
    ABORT = "abort"


class Actuation(NamedTuple):
    """How KubeVirt is configured for one migration: throttle on/off, the completion deadline and its action.
    (Immutable; a NamedTuple because one is built for every prediction.)"""

    auto_converge: bool
    deadline_s: float | None
    on_deadline: DeadlineAction
    progress_timeout_s: float | None

    @property
    def deadline_s_or_inf(self) -> float:
        return self.deadline_s if self.deadline_s is not None else math.inf


def kubevirt_actuation(vm: VmParams, settings: MigrationSettings) -> Actuation:
    """KubeVirt's behaviour for the configuration in `settings`, taken literally (what the simulator runs).

    qemu profile: deadline = completionTimeoutPerGiB x ceil(M / 10^9) (0 disables); at the deadline post-copy if
    allowed with workload disruption, else a pause if disruption is allowed, else abort.  xen profile: no timeouts.
    """
    if settings.stop_rules is not StopRules.QEMU:
        return Actuation(settings.allow_auto_converge, None, DeadlineAction.NONE, None)
    deadline = completion_timeout_s(settings.completion_timeout_per_gib, vm.memory_bytes)
    disruption = settings.workload_disruption_allowed
    if disruption and settings.allow_post_copy:
        action = DeadlineAction.SWITCH_TO_POST_COPY
    elif disruption:
        action = DeadlineAction.PAUSE
    else:
        action = DeadlineAction.ABORT
    progress = settings.progress_timeout_s if settings.progress_timeout_s > 0 else None
    return Actuation(
        settings.allow_auto_converge,
        deadline if deadline > 0 else None,
        action if deadline > 0 else DeadlineAction.NONE,
        progress,
    )


def actuation(technique: Technique, vm: VmParams, settings: MigrationSettings) -> Actuation:
    """What livemig makes KubeVirt do for `technique` (the KubeVirt MigrationPolicy it writes).

    - pre-copy (and the modelled-only techniques): no post-copy, no auto-converge; at the completion timeout abort
      (or pause, if the cluster explicitly allows workload disruption).
    - auto-converge: the same with allowAutoConverge.
    - post-copy: allowPostCopy with completionTimeoutPerGiB = `post_copy_timeout_per_gib`: switch at that deadline
      (in both profiles: it is the technique's switch time, 0 = at once).
    """
    if technique is Technique.POST_COPY:
        switch = postcopy.switch_time_s(settings.post_copy_timeout_per_gib, vm.memory_bytes)
        progress = (
            settings.progress_timeout_s
            if settings.stop_rules is StopRules.QEMU and settings.progress_timeout_s > 0
            else None
        )
        return Actuation(False, switch, DeadlineAction.SWITCH_TO_POST_COPY, progress)
    if settings.stop_rules is not StopRules.QEMU:
        return Actuation(technique is Technique.AUTO_CONVERGE, None, DeadlineAction.NONE, None)
    deadline = completion_timeout_s(settings.completion_timeout_per_gib, vm.memory_bytes)
    action = DeadlineAction.PAUSE if settings.allow_workload_disruption else DeadlineAction.ABORT
    progress = settings.progress_timeout_s if settings.progress_timeout_s > 0 else None
    return Actuation(
        technique is Technique.AUTO_CONVERGE,
        deadline if deadline > 0 else None,
        action if deadline > 0 else DeadlineAction.NONE,
        progress,
    )


def mechanics_for(technique: Technique, vm: VmParams, link: LinkParams, settings: MigrationSettings) -> Mechanics:
    if technique is Technique.XBZRLE:
        return xbzrle_mechanics(vm, settings.xbzrle)
    if technique is Technique.ADAPTIVE_COMPRESSION:
        return adaptive_compression_mechanics(vm, link, settings.compression)
    if technique is Technique.WORKING_SET:
        return working_set_mechanics(vm)
    if technique is Technique.TRACE_REPLAY:
        return trace_replay_mechanics(vm, settings.trace_replay)
    return precopy_mechanics(vm)
