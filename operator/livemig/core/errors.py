"""The one error tree of livemig.  Retry decisions are made only at the Kopf boundary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class LivemigError(Exception):
    """Root of every error livemig raises on purpose."""


class SpecError(LivemigError):
    """Bad input in a spec, snapshot, scenario or CLI argument; names the field (dotted path) and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class SpecErrors(LivemigError):
    """Several spec errors, collected before raising so a user can fix them in one go."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = tuple(errors)


def value_kind(value: object) -> str:
    """How a problem names a bad value: `null`, `an object`, `a list`, else the value's repr."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def join_path(path: str, key: str) -> str:
    """The dotted path of `key` under `path` (just `key` at the top level)."""
    return f"{path}.{key}" if path else key


class StaleMetricsError(LivemigError):
    """Metrics are missing or too old to plan on: make no moves."""


class InfeasiblePlanError(LivemigError):
    """No plan satisfies the constraints; carries the reason."""


class TransientApiError(LivemigError):
    """A call to the API server or Prometheus failed in a way that may pass; retry later."""
