"""How a policy's migrations are carried out: `technique` (which technique, within which downtime, bandwidth and
timeout) and `limits` (how many migrations at once, cluster-wide and per node; how often per VMI).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livemig.core.policy.reader import QUANTITY_RE, SECONDS_PER_HOUR, SMALL_SUFFIX, Reader, enum_values, kind_of
from livemig.core.policy.spec import Limits, TechniquePolicy
from livemig.core.units import parse_quantity
from livemig.core.vocabulary import Objective, TechniqueMode


def _bandwidth(r: Reader, raw: Mapping[str, Any], path: str) -> float | bool | None:
    """bandwidthPerMigration in bytes/s: None when unset, False when invalid."""
    where = f"{path}.bandwidthPerMigration"
    value = raw.get("bandwidthPerMigration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        r.fail(where, f"must be a quantity like 64Mi (bytes per second), not {kind_of(value)} {value!r}")
        return False
    if isinstance(value, int):
        if value < 0:
            r.fail(where, f"must not be negative, got {value}")
            return False
        return float(value)
    if not QUANTITY_RE.fullmatch(value):
        r.fail(where, f"must be a quantity like 64Mi (bytes per second), not {value!r}")
        return False
    if value[-1] in SMALL_SUFFIX and not value[-2:-1].isalpha():
        return float(value[:-1]) * SMALL_SUFFIX[value[-1]]
    return parse_quantity(value, where)


def read_technique(r: Reader, spec: Mapping[str, Any], path: str) -> TechniquePolicy | None:
    where = f"{path}.technique"
    raw = r.section(
        spec,
        "technique",
        path,
        (
            "mode",
            "objective",
            "allowPostCopy",
            "allowAutoConverge",
            "maxDowntime",
            "bandwidthPerMigration",
            "completionTimeoutPerGiB",
        ),
        default_empty=True,
    )
    if raw is None:
        return None
    mode = r.enum(raw, "mode", where, TechniqueMode, enum_values(TechniqueMode), default=TechniqueMode.AUTO)
    objective = r.enum(raw, "objective", where, Objective, enum_values(Objective), default=Objective.BALANCED)
    post_copy = r.boolean(raw, "allowPostCopy", where, default=False)
    auto_converge = r.boolean(raw, "allowAutoConverge", where, default=False)
    max_downtime_s = r.duration(
        raw,
        "maxDowntime",
        where,
        default=None,
        maximum_s=2000.0,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 2000s",
    )
    bandwidth = _bandwidth(r, raw, where)
    timeout = r.integer(raw, "completionTimeoutPerGiB", where, minimum=0)
    if mode is TechniqueMode.POST_COPY and post_copy is False:
        r.fail(f"{where}.mode", "mode PostCopy requires allowPostCopy: true")
        mode = None
    if mode is TechniqueMode.AUTO_CONVERGE and auto_converge is False:
        r.fail(f"{where}.mode", "mode AutoConverge requires allowAutoConverge: true")
        mode = None
    if mode is None or objective is None or post_copy is None or auto_converge is None or bandwidth is False:
        return None
    if (raw.get("maxDowntime") is not None and max_downtime_s is None) or (
        raw.get("completionTimeoutPerGiB") is not None and timeout is None
    ):
        return None
    return TechniquePolicy(
        mode=mode,
        objective=objective,
        allow_post_copy=post_copy,
        allow_auto_converge=auto_converge,
        max_downtime_s=max_downtime_s,
        bandwidth_per_migration_bps=bandwidth if isinstance(bandwidth, float) else None,
        completion_timeout_per_gib=timeout,
    )


def read_limits(r: Reader, spec: Mapping[str, Any], path: str) -> Limits | None:
    where = f"{path}.limits"
    raw = r.section(
        spec,
        "limits",
        path,
        ("maxConcurrentMigrations", "maxConcurrentMigrationsPerNode", "cooldown", "maxMigrationsPerVMI", "window"),
        default_empty=True,
    )
    if raw is None:
        return None
    cluster = r.integer(raw, "maxConcurrentMigrations", where, default=2, minimum=1, maximum=1000)
    per_node = r.integer(raw, "maxConcurrentMigrationsPerNode", where, default=1, minimum=1, maximum=100)
    cooldown = r.duration(
        raw, "cooldown", where, default="10m", maximum_s=720 * SECONDS_PER_HOUR, bounds_text="at most 720h"
    )
    per_vmi = r.integer(raw, "maxMigrationsPerVMI", where, default=3, minimum=1, maximum=1000)
    window = r.duration(
        raw,
        "window",
        where,
        default="1h",
        maximum_s=720 * SECONDS_PER_HOUR,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 720h",
    )
    if cluster is not None and per_node is not None and per_node > cluster:
        r.fail(
            f"{where}.maxConcurrentMigrationsPerNode",
            f"must not exceed maxConcurrentMigrations ({cluster}), got {per_node}",
        )
        return None
    if cluster is None or per_node is None or cooldown is None or per_vmi is None or window is None:
        return None
    return Limits(
        max_concurrent_migrations=cluster,
        max_concurrent_migrations_per_node=per_node,
        cooldown_s=cooldown,
        max_migrations_per_vmi=per_vmi,
        window_s=window,
    )
