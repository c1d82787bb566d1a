"""`FieldReader`: the typed field readers every section of a snapshot document is read with, and the value parsers
(CPU, memory, rates, times, label values) behind them.

A reader records each problem as a `SpecError` under the field's dotted path and returns None (or an empty value), so
one pass over a document reports every problem; the section readers (scheduling.py, nodes.py, vmis.py,
kubevirt_section.py) build on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from livemig.core.cluster import _EMPTY, Labels
from livemig.core.errors import SpecError, join_path, value_kind
from livemig.core.units import parse_bitrate, parse_bytes, parse_quantity

_E = TypeVar("_E", bound=StrEnum)


class FieldReader:
    """Collects every problem; each helper returns None (and records an error) on bad input."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []
        self.timestamps: list[float] = []

    def fail(self, path: str, problem: str) -> None:
        self.errors.append(SpecError(path, problem))

    def mapping(self, value: object, path: str, allowed: Sequence[str] | None = None) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.fail(path, f"must be an object, not {value_kind(value)}")
            return None
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail(join_path(path, str(key)), f"unknown field (expected one of: {', '.join(allowed)})")
        return value

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.fail(path, f"must be a non-empty string, not {value!r}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, not {value!r}")
            return None
        return value

    def labels(self, value: object, path: str) -> Labels:
        if value is None:
            return _EMPTY
        m = self.mapping(value, path)
        if m is None:
            return _EMPTY
        out: dict[str, str] = {}
        for k, v in m.items():
            if not isinstance(v, str | int | float):
                self.fail(join_path(path, str(k)), f"must be a string, not {value_kind(v)}")
                continue
            out[str(k)] = label_value(v)
        return MappingProxyType(out)

    def number(
        self, value: object, path: str, *, integer: bool = False, minimum: float = 0, maximum: float = math.inf
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not float(value).is_integer()):
            self.fail(path, f"must be {'an integer' if integer else 'a number'}, not {value!r}")
            return None
        if not math.isfinite(value) or value < minimum:
            self.fail(path, f"must be at least {minimum:g}, got {value!r}")
            return None
        if value > maximum:
            self.fail(path, f"must be at most {maximum:g}, got {value!r}")
            return None
        return float(value)

    def call(self, fn: object, value: object, path: str, **kwargs: object) -> float | None:
        try:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise SpecError(path, f"must be a quantity, not {value_kind(value)}")
            return fn(value, path, **kwargs)  # type: ignore[operator,no-any-return]
        except SpecError as exc:
            self.errors.append(exc)
            return None

    def timestamp(self, value: object, path: str) -> float | None:
        seconds = parse_timestamp(value, path, self.errors)
        if seconds is not None:
            self.timestamps.append(seconds)
        return seconds

    def enum(self, value: object, path: str, enum: type[_E]) -> _E | None:
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return enum(value)
        except ValueError:
            self.fail(path, f"must be one of {', '.join(e.value for e in enum)}, not {value!r}")
            return None

    def _missing(self, path: str) -> float | None:
        self.fail(path, "is required")
        return None

    def requests(self, value: object, path: str) -> tuple[float | None, float | None]:
        """`{cpu, memory}` requests (each optional)."""
        if value is None:
            return None, None
        m = self.mapping(value, path, ("cpu", "memory"))
        if m is None:
            return None, None
        cpu = self.call(parse_cpu, m["cpu"], f"{path}.cpu") if m.get("cpu") is not None else None
        memory = self.call(parse_bytes, m["memory"], f"{path}.memory") if m.get("memory") is not None else None
        return cpu, memory


def parse_cpu(value: object, field: str) -> float:
    """CPU cores: `4`, `2.5`, `"32"`, `"2500m"` (millicores)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(field, f"must be a CPU quantity like 2.5 or 2500m, not {value_kind(value)}")
    if isinstance(value, str) and value.strip().endswith("m"):
        text = value.strip()[:-1]
        try:
            cores = float(text) / 1000.0
        except ValueError:
            raise SpecError(field, f"must be a CPU quantity like 2.5 or 2500m, not {value!r}") from None
    else:
        try:
            cores = parse_quantity(value, field)
        except SpecError:
            raise SpecError(field, f"must be a CPU quantity like 2.5 or 2500m, not {value!r}") from None
    if not math.isfinite(cores) or cores < 0:
        raise SpecError(field, f"must be a non-negative CPU quantity, not {value!r}")
    return cores


def parse_memory(value: object, field: str) -> float:
    """Bytes of memory, a usage profile's scalar: one message (a quantity like 6Gi) for every way it can be wrong."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(field, f"must be a quantity like 6Gi, not {value_kind(value)}")
    try:
        return float(parse_bytes(value, field))
    except SpecError:
        raise SpecError(field, f"must be a non-negative quantity like 6Gi, not {value!r}") from None


def parse_rate(value: object, field: str) -> float:
    """A dirty rate, a usage profile's scalar: bytes/s (`100Mi`) or a bit rate (`1Gbit`); zero is a guest at rest."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(field, f"must be a quantity like 100Mi, not {value_kind(value)}")
    try:
        return parse_bitrate(value, field, allow_zero=True)
    except SpecError:
        raise SpecError(
            field, f"must be a quantity like 100Mi (bytes/s) or a bit rate like 1Gbit, not {value!r}"
        ) from None


def parse_timestamp(value: object, field: str, errors: list[SpecError]) -> float | None:
    """RFC 3339 (`2026-11-27T12:00:00Z`) or a number of seconds since the epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, datetime):  # YAML parses unquoted timestamps
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    errors.append(SpecError(field, f"must be an RFC 3339 time like 2026-11-27T12:00:00Z, not {value!r}"))
    return None


def label_value(value: object) -> str:
    """A label value as Kubernetes stores it: YAML reads `true` or `3` unquoted as a bool or a number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
