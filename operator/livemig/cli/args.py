"""argparse `type=` parsers for every number the `livemig` command takes, in one place.

Each parser turns the flag's text into a finite value within its range or raises `argparse.ArgumentTypeError`,
which argparse reports as one line naming the flag (`argument --memory: must not be negative, got '-4Gi'`) and
exit status 2.  Quantities, rates and durations are read by `livemig.core.units`, as in policies and scenarios.

Ranges: byte quantities and rates fit Kubernetes' int64 quantities (at most 8Ei); durations fit Go's
`time.Duration` (at most 2562047h); time scales lie in [0.001, 1e6] simulated seconds per wall second.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

from livemig.core.errors import SpecError
from livemig.core.units import parse_bitrate, parse_bytes, parse_duration

MAX_BYTES = 2**63 - 1  # a Kubernetes quantity is an int64
MAX_RATE_BPS = float(2**63 - 1)
MAX_SECONDS = (2**63 - 1) / 1e9  # Go's time.Duration counts int64 nanoseconds
MIN_TIME_SCALE = 1e-3
MAX_TIME_SCALE = 1e6


def _shown(text: str, limit: int = 40) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit - 4]}...{shown[-1]}"


@dataclass(frozen=True, slots=True)
class ArgType:
    """One flag kind: `convert` reads the text (raising ArgumentTypeError), then the range is checked here.

    The value is finite, within [minimum, maximum], and not zero unless `zero_allowed`.
    """

    kind: str
    convert: Callable[[str], float]
    minimum: float
    maximum: float
    zero_allowed: bool = True
    unit: str = ""
    integral: bool = False

    @property
    def __name__(self) -> str:  # argparse names the expected kind by it in its own messages
        return self.kind

    def __call__(self, text: str) -> float:
        value = self.convert(text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, not {_shown(text)}")
        unit = f" {self.unit}" if self.unit else ""
        if value == 0 and not self.zero_allowed:
            raise argparse.ArgumentTypeError(f"must be greater than zero, got {_shown(text)}")
        if value < self.minimum:
            raise argparse.ArgumentTypeError(f"must be at least {self.minimum:g}{unit}, got {_shown(text)}")
        if value > self.maximum:
            raise argparse.ArgumentTypeError(f"must be at most {self.maximum:g}{unit}, got {_shown(text)}")
        return value


def _from_units(parse: Callable[[str], float]) -> Callable[[str], float]:
    """A core/units parser whose SpecError becomes argparse's error (argparse adds the flag's name)."""

    def convert(text: str) -> float:
        try:
            return parse(text)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(exc.problem) from None

    return convert


def quantity(*, allow_zero: bool = False, maximum: int = MAX_BYTES) -> ArgType:
    """A byte quantity (`4Gi`, `500M`, `512`), rounded up to whole bytes; zero only with `allow_zero`."""
    return ArgType(
        "quantity",
        _from_units(lambda text: parse_bytes(text, "", allow_zero=allow_zero)),
        minimum=0,
        maximum=maximum,
        zero_allowed=allow_zero,
        unit="bytes",
        integral=True,
    )


def rate(*, allow_zero: bool = False, maximum: float = MAX_RATE_BPS) -> ArgType:
    """A rate as bytes per second: a bit rate (`1Gbit`, `500Mbit`) or bytes/s (`64Mi`); zero only with `allow_zero`."""
    return ArgType(
        "rate",
        _from_units(lambda text: parse_bitrate(text, "", allow_zero=allow_zero)),
        minimum=0,
        maximum=maximum,
        zero_allowed=allow_zero,
        unit="bytes/s",
    )


def duration(*, allow_zero: bool = True, maximum: float = MAX_SECONDS) -> ArgType:
    """A Go-style duration (`300ms`, `10m`, `1h30m`; a bare number is seconds) in seconds."""
    return ArgType(
        "duration",
        _from_units(lambda text: parse_duration(text, "", allow_zero=allow_zero)),
        minimum=0,
        maximum=maximum,
        zero_allowed=allow_zero,
        unit="s",
    )


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {_shown(text)}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"must be a number, not {_shown(text)}")
    return value


def number(*, allow_zero: bool = True, minimum: float = 0.0, maximum: float = 1e15) -> ArgType:
    """A finite plain number (`150`, `0.5`, `1e3`) within [minimum, maximum]; zero only with `allow_zero`."""
    return ArgType("number", _float, minimum=minimum, maximum=maximum, zero_allowed=allow_zero)


def _int(text: str) -> float:
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 30:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {_shown(text)}")
    return int(stripped)


def integer(*, minimum: int, maximum: int) -> ArgType:
    """A whole number in decimal digits within [minimum, maximum] (the value is an int)."""
    return ArgType("integer", _int, minimum=minimum, maximum=maximum, integral=True)


port = integer(minimum=0, maximum=65535)
"""A TCP port, 0-65535 (0: any free port)."""

seed = integer(minimum=0, maximum=2**63 - 1)
"""A random seed: a non-negative whole number."""

time_scale = number(allow_zero=False, minimum=MIN_TIME_SCALE, maximum=MAX_TIME_SCALE)
"""Simulated seconds per wall second: 0.001 to 1e6 (beyond, the simulator's sleeps overflow or cannot keep up)."""
