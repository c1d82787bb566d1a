"""KubeVirt's migration configuration and MigrationPolicy rules, as the simulator names them.

The single implementation lives in the pure core (`livemig.core.kubevirt`), shared with the planners and the
operator; this module keeps the simulator's names importable.  `MigrationConfiguration` is
`livemig.core.kubevirt.KubevirtMigrationConfig` (KubeVirt's `MigrationConfiguration`).
"""

from __future__ import annotations

from livemig.core.kubevirt import (
    MIGRATION_POLICY_GROUP,
    MIGRATION_POLICY_PLURAL,
    MIGRATION_POLICY_VERSION,
    HandoffDecision,
    KubevirtMigrationConfig,
    KvMigrationPolicy,
    apply_kv_migration_policy,
    decide_handoff_config,
    match_kv_migration_policy,
    parse_kv_migration_policy,
    parse_migration_configuration,
)

MigrationConfiguration = KubevirtMigrationConfig

__all__ = [
    "MIGRATION_POLICY_GROUP",
    "MIGRATION_POLICY_PLURAL",
    "MIGRATION_POLICY_VERSION",
    "HandoffDecision",
    "KvMigrationPolicy",
    "MigrationConfiguration",
    "apply_kv_migration_policy",
    "decide_handoff_config",
    "match_kv_migration_policy",
    "parse_kv_migration_policy",
    "parse_migration_configuration",
]
