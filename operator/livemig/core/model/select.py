"""The technique selector: which actuatable, allowed technique fits this VM on this link, and why (one line).

Candidates: mode `Auto` -> pre-copy, plus post-copy and auto-converge where the policy allows them; a fixed mode ->
that technique (or pre-copy, with a note, if the policy does not allow it).  A candidate is *feasible* when it is
predicted to succeed with downtime <= maxDowntime (livemig's selection constraint, not QEMU's downtime limit) and a
guest slowdown <= max_degradation.  Among feasible candidates:

- `MinDowntime`: least downtime, then least total time;
- `MinTotalTime`: least total time, then least downtime;
- `Balanced`: among those within 10 % of the fastest, the least guest impact (no post-copy risk window first, then
  the least throttle/fault-stall time), then the least downtime.

With no feasible candidate it takes the least downtime among those that succeed, else pre-copy (it fails cleanly:
the source keeps the VM).  Ties keep the order pre-copy, auto-converge, post-copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from livemig.core.errors import SpecError
from livemig.core.model.params import LinkParams, MigrationSettings, VmParams
from livemig.core.model.predict import predict
from livemig.core.model.results import Prediction
from livemig.core.model.stepper import MigrationRun
from livemig.core.model.techniques import actuation, mechanics_for
from livemig.core.vocabulary import Objective, Outcome, Technique, TechniqueMode

BALANCED_SLACK = 1.10  # Balanced accepts up to 10 % more total time for less guest impact
_SUCCEEDED = frozenset(o for o in Outcome if o.succeeded)
_PREFERENCE = (Technique.PRE_COPY, Technique.AUTO_CONVERGE, Technique.POST_COPY)
_MODE_TECHNIQUE = {
    TechniqueMode.PRE_COPY: Technique.PRE_COPY,
    TechniqueMode.POST_COPY: Technique.POST_COPY,
    TechniqueMode.AUTO_CONVERGE: Technique.AUTO_CONVERGE,
}


@dataclass(frozen=True, slots=True)
class SelectionPolicy:
    """The technique part of a livemig policy plus the migration settings in force.

    `max_downtime_s` None means QEMU's downtime limit.  `max_degradation` is the largest tolerated loss of guest
    throughput at any moment (auto-converge throttle, post-copy fault stall), 0..1.
    """

    mode: TechniqueMode = TechniqueMode.AUTO
    objective: Objective = Objective.BALANCED
    max_downtime_s: float | None = None
    allow_post_copy: bool = False
    allow_auto_converge: bool = False
    max_degradation: float = 1.0
    settings: MigrationSettings = field(default_factory=MigrationSettings)

    def __post_init__(self) -> None:
        if self.max_downtime_s is not None and not self.max_downtime_s > 0:
            raise SpecError("max_downtime_s", f"must be greater than zero, got {self.max_downtime_s!r}")
        if not 0.0 <= self.max_degradation <= 1.0:
            raise SpecError("max_degradation", f"must be between 0 and 1, got {self.max_degradation!r}")

    @property
    def downtime_budget_s(self) -> float:
        return self.max_downtime_s if self.max_downtime_s is not None else self.settings.downtime_limit_s

    def allows(self, technique: Technique) -> bool:
        if technique is Technique.PRE_COPY:
            return True
        if technique is Technique.POST_COPY:
            return self.allow_post_copy
        if technique is Technique.AUTO_CONVERGE:
            return self.allow_auto_converge
        return False  # modelled only: livemig cannot actuate it


@dataclass(frozen=True, slots=True)
class Selection:
    chosen: Technique
    reason: str
    predictions: Mapping[Technique, Prediction]
    feasible: bool  # the chosen technique meets the policy's constraints
    candidates: tuple[Technique, ...]


def candidates(policy: SelectionPolicy) -> tuple[tuple[Technique, ...], str]:
    """The techniques the selector may choose from, and a note when a fixed mode is not allowed."""
    if policy.mode is TechniqueMode.AUTO:
        return tuple(t for t in _PREFERENCE if policy.allows(t)), ""
    wanted = _MODE_TECHNIQUE[policy.mode]
    if policy.allows(wanted):
        return (wanted,), ""
    return (Technique.PRE_COPY,), f"mode {policy.mode} but {wanted} is not allowed, so pre-copy; "


def select_technique(
    vm: VmParams, link: LinkParams, policy: SelectionPolicy | None = None, *, compare_all: bool = True
) -> Selection:
    """Choose a technique.  `compare_all=False` predicts only the candidates (fast path for planners)."""
    policy = policy or _DEFAULT_POLICY
    chosen_from, note = candidates(policy)
    settings = policy.settings
    if compare_all:
        predictions = {t: predict(t, vm, link, settings) for t in Technique}
    else:
        predictions = _predict_candidates(chosen_from, vm, link, settings)
    budget = policy.downtime_budget_s
    max_degradation = policy.max_degradation
    feasible = [
        t
        for t in chosen_from
        if predictions[t].outcome in _SUCCEEDED
        and predictions[t].downtime_s <= budget
        and predictions[t].degradation.max_slowdown <= max_degradation
    ]
    if feasible:
        chosen = _rank(feasible, predictions, policy.objective)
        why = _why_feasible(chosen, feasible, chosen_from, policy.objective)
    else:
        succeeded = [t for t in chosen_from if predictions[t].outcome in _SUCCEEDED]
        if succeeded:
            chosen = min(succeeded, key=lambda t: (predictions[t].downtime_s, predictions[t].total_time_s))
            if all(predictions[t].downtime_s > budget for t in succeeded):
                why = f"none meets max downtime {_dur(budget)}; least downtime"
            else:
                why = f"none within the tolerated degradation {max_degradation:.0%}; least downtime"
        else:
            chosen = Technique.PRE_COPY if Technique.PRE_COPY in chosen_from else chosen_from[0]
            why = "no allowed technique is predicted to finish; pre-copy fails cleanly (the source keeps the VM)"
    others = [_brief(t, predictions[t], budget) for t in chosen_from if t is not chosen]
    reason = f"{chosen}: {note}{why}; {_figures(predictions[chosen])}"
    if others:
        reason += " (" + "; ".join(others) + ")"
    return Selection(
        chosen=chosen,
        reason=reason,
        predictions=predictions,
        feasible=chosen in feasible,
        candidates=chosen_from,
    )


def _predict_candidates(
    chosen_from: tuple[Technique, ...], vm: VmParams, link: LinkParams, settings: MigrationSettings
) -> dict[Technique, Prediction]:
    """The candidates' predictions, re-using the pre-copy run where another technique provably runs identically:
    auto-converge when no pass dirtied more than the trigger threshold of what it sent (the throttle never starts),
    post-copy when pre-copy completed its stop-and-copy before the switch time (tests check both equalities)."""
    predictions: dict[Technique, Prediction] = {}
    if Technique.PRE_COPY not in chosen_from:
        for t in chosen_from:
            predictions[t] = predict(t, vm, link, settings, timeline=False)
        return predictions
    mechanics = mechanics_for(Technique.PRE_COPY, vm, link, settings)  # the same for all three
    run = MigrationRun(Technique.PRE_COPY, vm, link, settings, mechanics=mechanics, record_timeline=False)
    base = run.run_to_end()
    predictions[Technique.PRE_COPY] = base
    for t in chosen_from:
        if t is Technique.PRE_COPY:
            continue
        if t is Technique.AUTO_CONVERGE and run.max_pass_dirty_ratio <= settings.throttle.trigger_threshold:
            predictions[t] = replace(base, technique=t)
            continue
        act = actuation(t, vm, settings)
        started = run.stop_and_copy_started_s
        if (
            t is Technique.POST_COPY
            and base.outcome is Outcome.COMPLETED
            and started is not None
            and (started <= act.deadline_s_or_inf)
        ):
            predictions[t] = replace(base, technique=t)
            continue
        other = MigrationRun(t, vm, link, settings, actuation_override=act, mechanics=mechanics, record_timeline=False)
        predictions[t] = other.run_to_end()
    return predictions


def _rank(feasible: list[Technique], predictions: Mapping[Technique, Prediction], objective: Objective) -> Technique:
    order = {t: i for i, t in enumerate(_PREFERENCE)}
    if objective is Objective.MIN_DOWNTIME:
        return min(feasible, key=lambda t: (predictions[t].downtime_s, predictions[t].total_time_s, order[t]))
    if objective is Objective.MIN_TOTAL_TIME:
        return min(feasible, key=lambda t: (predictions[t].total_time_s, predictions[t].downtime_s, order[t]))
    fastest = min(predictions[t].total_time_s for t in feasible)
    near = [t for t in feasible if predictions[t].total_time_s <= fastest * BALANCED_SLACK]
    return min(
        near,
        key=lambda t: (
            predictions[t].risk_window_s > 0.0,
            predictions[t].degradation.total_s,
            predictions[t].downtime_s,
            order[t],
        ),
    )


def _why_feasible(
    chosen: Technique, feasible: list[Technique], chosen_from: tuple[Technique, ...], objective: Objective
) -> str:
    if len(chosen_from) == 1:
        return "the only candidate"
    if len(feasible) == 1:
        return "the only allowed technique predicted to finish within the limits"
    if objective is Objective.MIN_DOWNTIME:
        return "least downtime"
    if objective is Objective.MIN_TOTAL_TIME:
        return "shortest total time"
    return "within 10 % of the fastest with the least guest impact"


def _dur(seconds: float) -> str:
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def _figures(p: Prediction) -> str:
    if not p.outcome.succeeded:
        return f"predicted {_outcome(p)} after {_dur(p.total_time_s)}"
    text = f"total {_dur(p.total_time_s)}, downtime {_dur(p.downtime_s)}"
    if p.risk_window_s > 0.0:
        text += f", risk window {_dur(p.risk_window_s)}"
    if p.final_throttle > 0.0:
        text += f", throttle {p.degradation.max_slowdown:.0%}"
    return text


def _outcome(p: Prediction) -> str:
    if p.outcome is Outcome.ABORTED and p.abort_reason is not None:
        return f"aborted ({p.abort_reason})"
    return str(p.outcome)


def _brief(t: Technique, p: Prediction, budget: float) -> str:
    if not p.outcome.succeeded:
        return f"{t} {_outcome(p)} at {_dur(p.total_time_s)}"
    over = " > max" if p.downtime_s > budget else ""
    return f"{t} {_dur(p.total_time_s)}/{_dur(p.downtime_s)}{over}"


_DEFAULT_POLICY = SelectionPolicy()
