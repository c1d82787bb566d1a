"""The migration performance model: pure, typed, deterministic.  Equations and sources: docs/model.md.

- `MigrationRun`: the one implementation of the physics, stepped in time (the simulator drives it).
- `predict`: a technique's figures = the stepper run to its end.
- `select_technique`: the actuatable, allowed technique that best fits a selection policy, with its reason.
"""

from livemig.core.model.params import (
    CompressionParams,
    LinkParams,
    MigrationSettings,
    PostCopyParams,
    StopRules,
    ThrottleParams,
    TraceReplayParams,
    VmParams,
    XbzrleParams,
    XenParams,
    XenRateLimiter,
)
from livemig.core.model.predict import predict, predict_all
from livemig.core.model.results import Degradation, MigrationMode, Phase, Prediction, RunState
from livemig.core.model.select import Selection, SelectionPolicy, select_technique
from livemig.core.model.stepper import MigrationRun
from livemig.core.model.techniques import Actuation, DeadlineAction, actuation, kubevirt_actuation

__all__ = [
    "Actuation",
    "CompressionParams",
    "DeadlineAction",
    "Degradation",
    "LinkParams",
    "MigrationMode",
    "MigrationRun",
    "MigrationSettings",
    "Phase",
    "PostCopyParams",
    "Prediction",
    "RunState",
    "Selection",
    "SelectionPolicy",
    "StopRules",
    "ThrottleParams",
    "TraceReplayParams",
    "VmParams",
    "XbzrleParams",
    "XenParams",
    "XenRateLimiter",
    "actuation",
    "kubevirt_actuation",
    "predict",
    "predict_all",
    "select_technique",
]
