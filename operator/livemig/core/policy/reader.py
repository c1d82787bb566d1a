"""The field reader behind the MigrationPolicy parser: the CRD's structural-schema rules (types, enums, bounds,
patterns, unknown fields under fieldValidation=Strict), each failure collected as a SpecError with the API server's
dotted path.  The patterns use ASCII classes and full matches, as Go's regexp does (Python's `$` would accept a final
newline, and its `\\s` Unicode spaces)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from livemig.core.errors import SpecError
from livemig.core.units import parse_duration

E = TypeVar("E")

DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")
QUANTITY_RE = re.compile(
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# RFC 3339 with upper-case T and Z: the API server's date-time format also takes lower case, but the CEL rule on the
# window (timestamp()) does not, so the CRD rejects it in the end.
# re.ASCII: the API server's patterns are Go regexps, whose \d and \s are ASCII only (fullmatch, not match: Python's
# `$` also matches before a final newline, Go's does not).
DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.ASCII)
URL_RE = re.compile(r"^https?://[^\s]+$", re.ASCII)
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
SMALL_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3}

SECONDS_PER_HOUR = 3600.0


class Reader:
    """Reads fields of one manifest, recording every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def fail(self, path: str, problem: str) -> None:
        self.errors.append(SpecError(path, problem))

    # -- shapes ------------------------------------------------------------------------------------------------------

    def mapping(self, value: Any, path: str, allowed: Sequence[str] | None) -> Mapping[str, Any] | None:
        """An object; with `allowed`, every other key is an unknown field (as fieldValidation=Strict reports)."""
        if not isinstance(value, Mapping):
            self.fail(path, f"must be an object, not {kind_of(value)}")
            return None
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail(f"{path}.{key}", f"unknown field (known: {', '.join(allowed)})")
        return value

    def section(
        self, parent: Mapping[str, Any], key: str, path: str, allowed: Sequence[str], *, default_empty: bool = False
    ) -> Mapping[str, Any] | None:
        if key not in parent or parent[key] is None:
            return {} if default_empty else None
        return self.mapping(parent[key], f"{path}.{key}", allowed)

    def string(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        default: str | None = None,
        min_length: int = 0,
        max_length: int | None = None,
        pattern: re.Pattern[str] | None = None,
        pattern_hint: str = "",
    ) -> str | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(where, "required")
            return default
        if not isinstance(value, str):
            self.fail(where, f"must be a string, not {kind_of(value)}")
            return None
        if len(value) < min_length:
            self.fail(where, f"must be at least {min_length} characters long")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(where, f"must be at most {max_length} characters long")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(where, f"must be {pattern_hint or 'of the form ' + pattern.pattern}, not {value!r}")
            return None
        return value

    def enum(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        enum_type: Callable[[str], E],
        allowed: Sequence[str],
        *,
        required: bool = False,
        default: E | None = None,
    ) -> E | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(where, f"required (one of {', '.join(allowed)})")
            return default
        if not isinstance(value, str) or value not in allowed:
            self.fail(where, f"must be one of {', '.join(allowed)}, not {value!r}")
            return None
        return enum_type(value)

    def boolean(self, parent: Mapping[str, Any], key: str, path: str, *, default: bool) -> bool | None:
        value = parent.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(f"{path}.{key}", f"must be true or false, not {kind_of(value)} {value!r}")
            return None
        return value

    def integer(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type: the API server takes 3.0 for an integer field too
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be an integer, not {kind_of(value)} {value!r}")
            return None
        if minimum is not None and value < minimum:
            self.fail(where, f"must be at least {minimum}, got {value}")
            return None
        if maximum is not None and value > maximum:
            self.fail(where, f"must be at most {maximum}, got {value}")
            return None
        return value

    def number(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(where, "required")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(where, f"must be a number, not {kind_of(value)} {value!r}")
            return None
        number = float(value)
        if minimum is not None and (number < minimum or (exclusive_minimum and number == minimum)):
            self.fail(where, f"must be {'greater than' if exclusive_minimum else 'at least'} {minimum:g}, got {value}")
            return None
        if maximum is not None and number > maximum:
            self.fail(where, f"must be at most {maximum:g}, got {value}")
            return None
        return number

    def duration(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: str | None,
        minimum_s: float = 0.0,
        maximum_s: float | None = None,
        exclusive_minimum: bool = False,
        bounds_text: str = "",
    ) -> float | None:
        """A Go-style duration string (`300ms`, `10m`, `1h30m`) as seconds, within bounds."""
        where = f"{path}.{key}"
        text = self.string(
            parent,
            key,
            path,
            default=default,
            max_length=32,
            pattern=DURATION_RE,
            pattern_hint="a duration like 30s, 10m or 1h30m",
        )
        if text is None:
            return None
        try:
            seconds = parse_duration(text, where)
        except SpecError as exc:  # the pattern passed, but Go's int64 nanoseconds cannot hold it
            self.fail(where, exc.problem)
            return None
        too_small = seconds < minimum_s or (exclusive_minimum and seconds == minimum_s)
        if too_small or (maximum_s is not None and seconds > maximum_s):
            self.fail(where, f"must be {bounds_text}, got {text!r}")
            return None
        return seconds

    def string_list(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        max_items: int,
        min_length: int = 0,
        max_length: int | None = None,
        unique: bool = False,
    ) -> tuple[str, ...] | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(where, f"must be a list, not {kind_of(value)}")
            return None
        if len(value) > max_items:
            self.fail(where, f"must have at most {max_items} items, got {len(value)}")
            return None
        items: list[str] = []
        ok = True
        for index, item in enumerate(value):
            item_path = f"{where}[{index}]"
            if not isinstance(item, str):
                self.fail(item_path, f"must be a string, not {kind_of(item)}")
                ok = False
            elif len(item) < min_length or (max_length is not None and len(item) > max_length):
                self.fail(item_path, f"must be {min_length} to {max_length} characters long")
                ok = False
            elif unique and item in items:
                self.fail(item_path, f"duplicate value {item!r}")
                ok = False
            else:
                items.append(item)
        return tuple(items) if ok else None


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def enum_values(enum_type: type[Any]) -> tuple[str, ...]:
    return tuple(member.value for member in enum_type)
