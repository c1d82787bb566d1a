"""`KubevirtSectionReader`: a snapshot's `kubevirt:` section, which holds two things: KubeVirt's migration
configuration (`spec.configuration.migrations`, read by livemig.core.kubevirt's one parser) and the keys that size
virt-launcher pods (`LauncherSizing`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from livemig.core.cluster import LauncherSizing
from livemig.core.kubevirt import KubevirtMigrationConfig, read_migration_configuration
from livemig.core.snapshot_parser.fields import FieldReader

#: Keys of a snapshot's `kubevirt:` section that size virt-launcher pods (`LauncherSizing`), not migrations.
LAUNCHER_KEYS = ("memoryOvercommit", "cpuAllocationRatio", "additionalGuestMemoryOverheadRatio")


class KubevirtSectionReader(FieldReader):
    def kubevirt(self, value: object, path: str) -> tuple[KubevirtMigrationConfig, LauncherSizing]:
        if not isinstance(value, Mapping):
            return read_migration_configuration(value, path, self.errors), LauncherSizing()
        migrations = {k: v for k, v in value.items() if k not in LAUNCHER_KEYS}
        config = read_migration_configuration(migrations, path, self.errors, also_known=LAUNCHER_KEYS)
        return config, self.launcher(value, path)

    def launcher(self, value: Mapping[str, object], path: str) -> LauncherSizing:
        kw: dict[str, float] = {}
        for key, attr, minimum in (
            ("memoryOvercommit", "memory_overcommit_percent", 10),
            ("cpuAllocationRatio", "cpu_allocation_ratio", 1),
        ):
            if value.get(key) is not None:
                n = self.number(value[key], f"{path}.{key}", integer=True, minimum=minimum)
                if n is not None:
                    kw[attr] = int(n)
        ratio = value.get("additionalGuestMemoryOverheadRatio")
        if ratio is not None:
            where = f"{path}.additionalGuestMemoryOverheadRatio"
            try:
                number = float(ratio) if isinstance(ratio, str | int | float) and not isinstance(ratio, bool) else None
            except ValueError:
                number = None
            if number is None or not math.isfinite(number) or number < 1.0:
                self.fail(where, f"must be a number of at least 1.0 (as a string in KubeVirt), not {ratio!r}")
            else:
                kw["additional_guest_memory_overhead_ratio"] = number
        return LauncherSizing(**kw)  # type: ignore[arg-type]
