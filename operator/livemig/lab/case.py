"""One lab experiment (a `LabCase`) and the matrix file, parsed and validated once at the edge.

The CLI flags and the matrix file use the same names (`memory`, `working-set`, `dirty-pages-per-s`, ...), so one
parser serves both; errors name the flag (`--working-set: ...`) or the matrix field (`cases[3].working-set: ...`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from livemig.core.errors import SpecError, SpecErrors
from livemig.core.units import PAGE_SIZE, completion_timeout_s, parse_bitrate, parse_bytes, parse_duration
from livemig.core.vocabulary import Technique

MIB = 2**20
LAB_TECHNIQUES = (Technique.PRE_COPY, Technique.POST_COPY, Technique.AUTO_CONVERGE, Technique.XBZRLE)
# The guest kernel and busybox need some room beside the dirtier's working set.
GUEST_OVERHEAD_BYTES = 64 * MIB
MIN_MEMORY_BYTES = 128 * MIB
MAX_MEMORY_BYTES = 2048 * MIB  # TCG on a shared 2-core box: keep guests small


class Pattern(StrEnum):
    """The dirtier's access pattern over its working set."""

    SEQUENTIAL = "sequential"
    RANDOM = "random"
    HOT_COLD = "hot-cold"


class CutPhase(StrEnum):
    """When a link cut happens: seconds after `migrate` (pre-copy) or after `migrate-start-postcopy`."""

    PRE_COPY = "pre-copy"
    POST_COPY = "post-copy"


@dataclass(frozen=True, slots=True)
class LinkCut:
    """Close the relay (both directions, FIN) `after_s` seconds into `phase`, then watch for `observe_s`."""

    after_s: float
    phase: CutPhase = CutPhase.PRE_COPY
    observe_s: float = 8.0


@dataclass(frozen=True, slots=True)
class LabCase:
    """One migration: the guest, the link, the technique and KubeVirt's settings as libvirt applies them."""

    technique: Technique
    memory_bytes: int = 256 * MIB
    working_set_bytes: int = 128 * MIB
    dirty_pages_per_s: int = 2000
    bandwidth_bps: float = 200e6 / 8
    downtime_limit_s: float = 0.3
    timeout_s: float = 60.0
    post_copy_timeout_per_gib: float = 1.0
    xbzrle_cache_bytes: int = 64 * MIB
    pattern: Pattern = Pattern.SEQUENTIAL
    bytes_per_page: int = 8
    throttle_initial_pct: int = 20  # QEMU's defaults; libvirt leaves them alone for KubeVirt
    throttle_increment_pct: int = 10
    name: str = ""
    repeat: int = 1
    link_cut: LinkCut | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def post_copy_switch_s(self) -> float:
        """KubeVirt's switch to post-copy: completionTimeoutPerGiB × ceil(memory / 10^9) after the start."""
        return completion_timeout_s(self.post_copy_timeout_per_gib, self.memory_bytes)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        mbit = self.bandwidth_bps * 8 / 1e6
        return f"{self.technique}_bw{mbit:g}M_d{self.dirty_pages_per_s}"


# Names shared by the CLI (as --flags) and the matrix file.
CASE_KEYS = (
    "name",
    "technique",
    "memory",
    "working-set",
    "dirty-pages-per-s",
    "bandwidth",
    "downtime-limit",
    "timeout",
    "post-copy-timeout-per-gib",
    "xbzrle-cache",
    "pattern",
    "bytes-per-page",
    "repeat",
)


def _number(value: Any, path: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(path, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SpecError(path, f"must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise SpecError(path, f"must be a non-negative number, got {value!r}")
    if integer and number != int(number):
        raise SpecError(path, f"must be a whole number, got {value!r}")
    return number


def parse_case(doc: Mapping[str, Any], prefix: str = "") -> LabCase:
    """A `LabCase` from CLI/matrix names; collects every error (SpecErrors) with its path."""
    errors: list[SpecError] = []
    values: dict[str, Any] = {}

    def path(key: str) -> str:
        return f"{prefix}{key}" if prefix in ("", "--") else f"{prefix}.{key}"

    unknown = sorted(set(doc) - set(CASE_KEYS))
    for key in unknown:
        errors.append(SpecError(path(key), f"unknown setting (known: {', '.join(CASE_KEYS)})"))

    def take(key: str, attr: str, convert: Any) -> None:
        if doc.get(key) is None:
            return
        try:
            values[attr] = convert(doc[key], path(key))
        except SpecError as exc:
            errors.append(exc)

    def technique(value: Any, where: str) -> Technique:
        names = [str(t) for t in LAB_TECHNIQUES]
        if str(value) not in names:
            raise SpecError(where, f"must be one of {', '.join(names)}, got {value!r}")
        return Technique(str(value))

    def pattern(value: Any, where: str) -> Pattern:
        names = [str(p) for p in Pattern]
        if str(value) not in names:
            raise SpecError(where, f"must be one of {', '.join(names)}, got {value!r}")
        return Pattern(str(value))

    if doc.get("technique") is None:
        errors.append(SpecError(path("technique"), "is required"))
    take("technique", "technique", technique)
    take("name", "name", lambda v, _p: str(v))
    take("memory", "memory_bytes", lambda v, p: parse_bytes(v, p, allow_zero=False))
    take("working-set", "working_set_bytes", lambda v, p: parse_bytes(v, p, allow_zero=False))
    take("dirty-pages-per-s", "dirty_pages_per_s", lambda v, p: int(_number(v, p, integer=True)))
    take("bandwidth", "bandwidth_bps", lambda v, p: parse_bitrate(v, p))
    take("downtime-limit", "downtime_limit_s", lambda v, p: parse_duration(v, p, allow_zero=False))
    take("timeout", "timeout_s", lambda v, p: parse_duration(v, p, allow_zero=False))
    take("post-copy-timeout-per-gib", "post_copy_timeout_per_gib", lambda v, p: _number(v, p))
    take("xbzrle-cache", "xbzrle_cache_bytes", lambda v, p: parse_bytes(v, p, allow_zero=False))
    take("pattern", "pattern", pattern)
    take("bytes-per-page", "bytes_per_page", lambda v, p: int(_number(v, p, integer=True)))
    take("repeat", "repeat", lambda v, p: int(_number(v, p, integer=True)))
    if errors:
        raise SpecErrors(errors)

    case = LabCase(**values)
    # Cross-field and range checks.
    if not MIN_MEMORY_BYTES <= case.memory_bytes <= MAX_MEMORY_BYTES:
        raw = doc.get("memory")  # a quantity from a matrix file, or bytes from the CLI (livemig.cli.args)
        got = f"{raw} bytes" if isinstance(raw, int) else repr(raw)
        errors.append(SpecError(path("memory"), f"must be between 128Mi and 2Gi, got {got}"))
    elif case.working_set_bytes > case.memory_bytes - GUEST_OVERHEAD_BYTES:
        errors.append(
            SpecError(path("working-set"), "must leave at least 64Mi of the memory for the guest kernel and busybox")
        )
    if case.working_set_bytes < MIB:
        errors.append(SpecError(path("working-set"), "must be at least 1Mi"))
    if case.working_set_bytes % MIB:
        errors.append(SpecError(path("working-set"), "must be a whole number of MiB (the dirtier takes MiB)"))
    if case.memory_bytes % MIB:
        errors.append(SpecError(path("memory"), "must be a whole number of MiB"))
    if not 1 <= case.bytes_per_page <= PAGE_SIZE:
        errors.append(SpecError(path("bytes-per-page"), f"must be between 1 and {PAGE_SIZE}"))
    if case.xbzrle_cache_bytes % PAGE_SIZE:
        errors.append(SpecError(path("xbzrle-cache"), "must be a multiple of the 4096-byte page"))
    if case.repeat < 1:
        errors.append(SpecError(path("repeat"), "must be at least 1"))
    if errors:
        raise SpecErrors(errors)
    return case


def parse_matrix(doc: Any, prefix: str = "") -> tuple[LabCase, ...]:
    """A matrix file: `{defaults: {...}, cases: [{...}, ...]}`; each case overrides the defaults."""
    if not isinstance(doc, Mapping):
        raise SpecError(prefix or "(file)", "must be a mapping with `cases` (and optional `defaults`)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise SpecError(f"{prefix}defaults", "must be a mapping")
    cases = doc.get("cases")
    if not isinstance(cases, Sequence) or isinstance(cases, str) or not cases:
        raise SpecError(f"{prefix}cases", "must be a non-empty list of cases")
    errors: list[SpecError] = []
    parsed: list[LabCase] = []
    for index, item in enumerate(cases):
        where = f"{prefix}cases[{index}]"
        if not isinstance(item, Mapping):
            errors.append(SpecError(where, "must be a mapping"))
            continue
        try:
            parsed.append(parse_case({**defaults, **item}, where))
        except SpecErrors as exc:
            errors.extend(exc.errors)
        except SpecError as exc:
            errors.append(exc)
    names = [case.label for case in parsed]
    for index, name in enumerate(names):
        if name in names[:index]:
            errors.append(SpecError(f"{prefix}cases[{index}].name", f"duplicates an earlier case name {name!r}"))
    if errors:
        raise SpecErrors(errors)
    return tuple(parsed)
