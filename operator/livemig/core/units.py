"""Quantities, bit rates and durations, parsed once at the edge into bytes, bytes/s and seconds.

Kubernetes quantities are bytes (`125Mi`, `125M`, `1Gi`); bit rates say so (`1Gbit`, `500Mbit`, `10Gbps`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from livemig.core.errors import SpecError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([KMGTPE]i|[kKMGTPE]?)\s*$")
_BITRATE = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+))\s*([kKMGT]?)(bit|bps|b/s)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}

GB = 10**9
GIB = 2**30
PAGE_SIZE = 4096


def _shown(value: object, limit: int = 40) -> str:
    """A bad value as a problem shows it: its repr, cut short so that a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


def parse_quantity(value: str | int | float, field: str) -> float:
    """A Kubernetes quantity (`4Gi`, `200M`, `1.5Gi`, `512`) as a number of base units (bytes)."""
    if isinstance(value, bool):
        raise SpecError(field, f"must be a quantity like 4Gi, not {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise SpecError(field, f"must be a finite quantity, not {_shown(value)}")
        return float(value)
    match = _QUANTITY.match(str(value))
    if not match:
        raise SpecError(field, f"must be a quantity like 4Gi or 500M, not {_shown(value)}")
    suffix = match.group(2)
    scale = _BINARY.get(suffix) or _DECIMAL[suffix]
    try:
        amount = float(Decimal(match.group(1)) * scale)
    except (InvalidOperation, ArithmeticError):  # an exponent beyond what Decimal can scale (1e999999999Ei)
        raise SpecError(field, f"must be a finite quantity, not {_shown(value)}") from None
    if not math.isfinite(amount):
        raise SpecError(field, f"must be a finite quantity, not {_shown(value)}")
    return amount


def parse_bytes(value: str | int | float, field: str, *, allow_zero: bool = True) -> int:
    """A non-negative byte quantity, rounded up to whole bytes."""
    amount = parse_quantity(value, field)
    if amount < 0:
        raise SpecError(field, f"must not be negative, got {_shown(value)}")
    if amount == 0 and not allow_zero:
        raise SpecError(field, f"must be greater than zero, got {_shown(value)}")
    return math.ceil(amount)


def parse_bitrate(value: str | int | float, field: str, *, allow_zero: bool = False) -> float:
    """A bit rate (`1Gbit`, `500Mbit`, `10Gbps`) as bytes per second.  A bare number is bytes per second."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    else:
        text = str(value)
        match = _BITRATE.match(text)
        if match:
            try:
                rate = float(Decimal(match.group(1)) * _DECIMAL[match.group(2)]) / 8.0
            except ArithmeticError:
                raise SpecError(field, f"must be a finite rate, not {_shown(value)}") from None
        elif _QUANTITY.match(text):
            # A quantity of bytes per second, as KubeVirt's bandwidthPerMigration (`64Mi`).
            rate = parse_quantity(text, field)
        else:
            raise SpecError(
                field, f"must be a bit rate like 1Gbit or 500Mbit (or bytes/s like 64Mi), not {_shown(value)}"
            )
    if not math.isfinite(rate):
        raise SpecError(field, f"must be a finite rate, not {_shown(value)}")
    if rate < 0:
        raise SpecError(field, f"must be a non-negative rate, got {_shown(value)}")
    if rate == 0 and not allow_zero:
        raise SpecError(field, f"must be greater than zero, got {_shown(value)}")
    return rate


def parse_duration(value: str | int | float, field: str, *, allow_zero: bool = True) -> float:
    """A Go-style duration (`300ms`, `10m`, `1h30m`) as seconds.  A bare number is seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        if not text:
            raise SpecError(field, "must be a duration like 300ms or 10m, not empty")
        if re.fullmatch(r"\d+(?:\.\d*)?", text):
            seconds = float(text)
        else:
            pos = 0
            nanoseconds = 0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    break
                nanoseconds += _go_duration_part_ns(match.group(1), _DURATION_NS[match.group(2)])
                pos = match.end()
            if pos != len(text) or pos == 0:
                raise SpecError(field, f"must be a duration like 300ms or 10m, not {_shown(value)}")
            if nanoseconds > _GO_DURATION_MAX_NS:
                # Go's time.ParseDuration (and the API server's CEL `duration()`) refuse what int64 nanoseconds
                # cannot hold.
                raise SpecError(field, f"must be a duration of at most about 292 years, not {_shown(value)}")
            seconds = nanoseconds / 1e9
    if not math.isfinite(seconds):
        raise SpecError(field, f"must be a finite duration, not {_shown(value)}")
    if seconds < 0:
        raise SpecError(field, f"must not be negative, got {_shown(value)}")
    if seconds == 0 and not allow_zero:
        raise SpecError(field, f"must be greater than zero, got {_shown(value)}")
    return seconds


_GO_DURATION_MAX_NS = 2**63 - 1


def _go_duration_part_ns(number: str, unit_ns: int) -> int:
    """One `<number><unit>` of a duration in whole nanoseconds, as Go's time.ParseDuration (and so the API server's
    CEL `duration()`) computes it: the fraction is truncated per part, so `0.1ns` is 0 and `1.5ns` is 1."""
    whole, _, fraction = number.partition(".")
    nanoseconds = int(whole or "0") * unit_ns
    if fraction:
        # Go's leadingFraction keeps digits while they fit an int64 and ignores the rest.
        kept, scale = 0, 1
        for digit in fraction:
            if kept > _GO_DURATION_MAX_NS // 10:
                break
            kept, scale = kept * 10 + int(digit), scale * 10
        nanoseconds += int(float(kept) * (unit_ns / scale))
    return nanoseconds


def decimal_gb_ceil(memory_bytes: float) -> int:
    """ceil(bytes / 10^9), as KubeVirt's `Quantity.ScaledValue(Giga)` in its completion-timeout formula."""
    return max(0, math.ceil(memory_bytes / GB))


def completion_timeout_s(per_gib: float, memory_bytes: float) -> float:
    """KubeVirt's acceptable completion time: completionTimeoutPerGiB × ceil(bytes / 10^9) (8 GiB → 9 × 150 s)."""
    return per_gib * decimal_gb_ceil(memory_bytes)
