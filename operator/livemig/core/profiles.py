"""Usage profiles: a value that may change over time, evaluated purely with `value_at(t_s)`.

A snapshot's usage value (VMI CPU, memory, dirty rate; node usage) is a constant or one of these profiles. Time `t_s`
is seconds since the profile's origin (the snapshot, or the start of a simulation). Values never go below zero.

Shapes (YAML):
    2.5                                     constant
    {constant: 2.5}                         constant
    {phases: [{duration: 10m, value: X}, ...], repeat: false}
    {diurnal: {mean: X, amplitude: Y, period: 24h, phase: 0s}}
    {bursts: {base: X, peak: Y, every: 10m, duration: 1m}}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from livemig.core.errors import SpecError
from livemig.core.units import parse_duration

#: Parses one scalar value of the profile's unit (cores, bytes, bytes/s), raising SpecError(field, ...).
ScalarParser = Callable[[object, str], float]


class Profile(Protocol):
    """Anything with a pure `value_at(t_s)`."""

    def value_at(self, t_s: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Constant:
    value: float

    def value_at(self, t_s: float) -> float:
        return self.value


@dataclass(frozen=True, slots=True)
class Phase:
    duration_s: float
    value: float


@dataclass(frozen=True, slots=True)
class Phases:
    """Piecewise-constant values.  Without `repeat`, the last phase's value holds after the end; t < 0 is phase 0."""

    phases: tuple[Phase, ...]
    repeat: bool = False

    @property
    def cycle_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def value_at(self, t_s: float) -> float:
        t = max(0.0, t_s)
        cycle = self.cycle_s
        if self.repeat and cycle > 0:
            t = math.fmod(t, cycle)
        for phase in self.phases:
            if t < phase.duration_s:
                return phase.value
            t -= phase.duration_s
        return self.phases[-1].value


@dataclass(frozen=True, slots=True)
class Diurnal:
    """mean + amplitude · sin(2π (t − phase) / period), never below zero."""

    mean: float
    amplitude: float
    period_s: float
    phase_s: float = 0.0

    def value_at(self, t_s: float) -> float:
        return max(0.0, self.mean + self.amplitude * math.sin(2.0 * math.pi * (t_s - self.phase_s) / self.period_s))


@dataclass(frozen=True, slots=True)
class Bursts:
    """`peak` during the first `duration` of every `every` seconds (starting at t = 0), `base` otherwise."""

    base: float
    peak: float
    every_s: float
    duration_s: float

    def value_at(self, t_s: float) -> float:
        t = math.fmod(t_s, self.every_s)
        if t < 0:
            t += self.every_s
        return self.peak if t < self.duration_s else self.base


AnyProfile = Constant | Phases | Diurnal | Bursts

_KINDS = ("constant", "phases", "diurnal", "bursts")


def parse_profile(value: object, field: str, scalar: ScalarParser, errors: list[SpecError]) -> AnyProfile | None:
    """Parse a constant or a profile object; append problems to `errors` and return None if there were any."""
    if not isinstance(value, Mapping):
        try:
            return Constant(_non_negative(scalar(value, field), field))
        except SpecError as exc:
            errors.append(exc)
            return None
    kinds = [k for k in value if k in _KINDS]
    unknown = [k for k in value if k not in _KINDS and k != "repeat"]
    if len(kinds) != 1 or unknown or ("repeat" in value and kinds != ["phases"]):
        errors.append(
            SpecError(field, "must be a value or an object with exactly one of constant, phases, diurnal, bursts")
        )
        return None
    kind = kinds[0]
    before = len(errors)
    body = value[kind]
    path = f"{field}.{kind}"
    result: AnyProfile | None = None
    if kind == "constant":
        number = _scalar(body, path, scalar, errors)
        if number is not None:
            result = Constant(number)
    elif kind == "phases":
        result = _parse_phases(body, value.get("repeat", False), field, scalar, errors)
    elif kind == "diurnal":
        fields = _object(body, path, ("mean", "amplitude", "period"), ("phase",), errors)
        if fields is not None:
            mean = _scalar(fields["mean"], f"{path}.mean", scalar, errors)
            amplitude = _scalar(fields["amplitude"], f"{path}.amplitude", scalar, errors)
            period = _duration(fields["period"], f"{path}.period", errors, allow_zero=False)
            phase = _duration(fields.get("phase", 0), f"{path}.phase", errors)
            if None not in (mean, amplitude, period, phase):
                assert mean is not None
                assert amplitude is not None
                assert period is not None
                assert phase is not None
                result = Diurnal(mean, amplitude, period, phase)
    else:
        fields = _object(body, path, ("base", "peak", "every", "duration"), (), errors)
        if fields is not None:
            base = _scalar(fields["base"], f"{path}.base", scalar, errors)
            peak = _scalar(fields["peak"], f"{path}.peak", scalar, errors)
            every = _duration(fields["every"], f"{path}.every", errors, allow_zero=False)
            duration = _duration(fields["duration"], f"{path}.duration", errors)
            if every is not None and duration is not None and duration > every:
                errors.append(SpecError(f"{path}.duration", "must not be longer than every"))
            elif None not in (base, peak, every, duration):
                assert base is not None
                assert peak is not None
                assert every is not None
                assert duration is not None
                result = Bursts(base, peak, every, duration)
    return result if len(errors) == before else None


def _parse_phases(
    body: object, repeat: object, field: str, scalar: ScalarParser, errors: list[SpecError]
) -> Phases | None:
    path = f"{field}.phases"
    if not isinstance(body, list) or not body:
        errors.append(SpecError(path, "must be a non-empty list of {duration, value}"))
        return None
    if not isinstance(repeat, bool):
        errors.append(SpecError(f"{field}.repeat", f"must be true or false, not {repeat!r}"))
    phases: list[Phase] = []
    for i, item in enumerate(body):
        fields = _object(item, f"{path}[{i}]", ("duration", "value"), (), errors)
        if fields is None:
            continue
        duration = _duration(fields["duration"], f"{path}[{i}].duration", errors, allow_zero=False)
        number = _scalar(fields["value"], f"{path}[{i}].value", scalar, errors)
        if duration is not None and number is not None:
            phases.append(Phase(duration, number))
    if len(phases) != len(body) or not isinstance(repeat, bool):
        return None
    return Phases(tuple(phases), repeat)


def _object(
    body: object, path: str, required: tuple[str, ...], optional: tuple[str, ...], errors: list[SpecError]
) -> Mapping[str, object] | None:
    if not isinstance(body, Mapping):
        errors.append(SpecError(path, f"must be an object with {', '.join(required + optional)}"))
        return None
    ok = True
    for key in required:
        if key not in body:
            errors.append(SpecError(f"{path}.{key}", "is required"))
            ok = False
    for key in body:
        if key not in required and key not in optional:
            errors.append(SpecError(f"{path}.{key}", f"unknown field (expected {', '.join(required + optional)})"))
            ok = False
    return body if ok else None


def _non_negative(number: float, field: str) -> float:
    if number < 0:
        raise SpecError(field, f"must not be negative, got {number!r}")
    return number


def _scalar(value: object, field: str, scalar: ScalarParser, errors: list[SpecError]) -> float | None:
    try:
        return _non_negative(scalar(value, field), field)
    except SpecError as exc:
        errors.append(exc)
        return None


def _duration(value: object, field: str, errors: list[SpecError], *, allow_zero: bool = True) -> float | None:
    try:
        if not isinstance(value, str | int | float):
            raise SpecError(field, f"must be a duration like 10m, not {value!r}")
        return parse_duration(value, field, allow_zero=allow_zero)
    except SpecError as exc:
        errors.append(exc)
        return None
