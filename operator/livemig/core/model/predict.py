"""`predict`: a technique's figures for one VM on one link = the stepper run to its end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from livemig.core.model.params import LinkParams, MigrationSettings, VmParams
from livemig.core.model.results import Prediction
from livemig.core.model.stepper import MigrationRun
from livemig.core.vocabulary import Technique


def predict(
    technique: Technique,
    vm: VmParams,
    link: LinkParams,
    settings: MigrationSettings | None = None,
    *,
    timeline: bool = True,
) -> Prediction:
    """Run `technique` as livemig would actuate it (see `techniques.actuation`) until it ends."""
    run = MigrationRun(technique, vm, link, settings or _DEFAULT_SETTINGS, record_timeline=timeline)
    return run.run_to_end()


def predict_all(
    vm: VmParams,
    link: LinkParams,
    settings: MigrationSettings | None = None,
    techniques: Iterable[Technique] = tuple(Technique),
    *,
    timeline: bool = True,
) -> Mapping[Technique, Prediction]:
    """Every technique's prediction (all seven by default), in `Technique` order."""
    return {t: predict(t, vm, link, settings, timeline=timeline) for t in techniques}


_DEFAULT_SETTINGS = MigrationSettings()
