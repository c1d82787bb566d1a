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


def _named(name: str, parse: Callable[[str], object]) -> None:
    parse.__name__ = name  # argparse names the expected kind by the function's name in its own messages


def quantity(*, allow_zero: bool = False, maximum: int = MAX_BYTES) -> Callable[[str], int]:
    """A byte quantity (`4Gi`, `500M`, `512`), rounded up to whole bytes; zero only with `allow_zero`."""

    def parse(text: str) -> int:
        try:
            amount = parse_bytes(text, "", allow_zero=allow_zero)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(exc.problem) from None
        if amount > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum} bytes, got {_shown(text)}")
        return amount

    _named("quantity", parse)
    return parse


def rate(*, allow_zero: bool = False, maximum: float = MAX_RATE_BPS) -> Callable[[str], float]:
    """A rate as bytes per second: a bit rate (`1Gbit`, `500Mbit`) or bytes/s (`64Mi`); zero only with `allow_zero`."""

    def parse(text: str) -> float:
        try:
            bps = parse_bitrate(text, "", allow_zero=allow_zero)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(exc.problem) from None
        if bps > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g} bytes/s, got {_shown(text)}")
        return bps

    _named("rate", parse)
    return parse


def duration(*, allow_zero: bool = True, maximum: float = MAX_SECONDS) -> Callable[[str], float]:
    """A Go-style duration (`300ms`, `10m`, `1h30m`; a bare number is seconds) in seconds."""

    def parse(text: str) -> float:
        try:
            seconds = parse_duration(text, "", allow_zero=allow_zero)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(exc.problem) from None
        if seconds > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g} s, got {_shown(text)}")
        return seconds

    _named("duration", parse)
    return parse


def number(*, allow_zero: bool = True, maximum: float = math.inf) -> Callable[[str], float]:
    """A finite plain number, not negative (and above zero unless `allow_zero`), at most `maximum`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {_shown(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {_shown(text)}")
        if value < 0 or (value == 0 and not allow_zero):
            kind = "a non-negative" if allow_zero else "a positive"
            raise argparse.ArgumentTypeError(f"must be {kind} number, got {_shown(text)}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {_shown(text)}")
        return value

    _named("number", parse)
    return parse


def integer(*, minimum: int, maximum: int) -> Callable[[str], int]:
    """A whole number written in decimal digits (`-` allowed when `minimum` < 0), within [minimum, maximum]."""

    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 30:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {_shown(text)}")
        value = int(stripped)
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be a whole number from {minimum} to {maximum}, got {_shown(text)}")
        return value

    _named("integer", parse)
    return parse


port = integer(minimum=0, maximum=65535)
"""A TCP port, 0-65535 (0: any free port)."""

seed = integer(minimum=0, maximum=2**63 - 1)
"""A random seed: a non-negative whole number."""


def time_scale(text: str) -> float:
    """Simulated seconds per wall second: finite, from 0.001 to 1e6 (above that the simulator cannot keep up)."""
    value = number(allow_zero=False)(text)
    if not MIN_TIME_SCALE <= value <= MAX_TIME_SCALE:
        raise argparse.ArgumentTypeError(
            f"must be from {MIN_TIME_SCALE:g} to {MAX_TIME_SCALE:g} simulated seconds per wall second, "
            f"got {_shown(text)}"
        )
    return value
