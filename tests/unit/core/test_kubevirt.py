"""KubeVirt's migration configuration (one type for snapshots, scenarios and the KubeVirt CR) and KubeVirt
MigrationPolicy matching, precedence and merging."""

from __future__ import annotations

import pytest

from livemig.core.errors import SpecErrors
from livemig.core.kubevirt import (
    KubevirtMigrationConfig,
    KvMigrationPolicy,
    apply_kv_migration_policy,
    decide_handoff_config,
    match_kv_migration_policy,
    parse_kv_migration_policy,
    parse_migration_configuration,
)


def policy(
    name: str, vmi: dict[str, str] | None = None, ns: dict[str, str] | None = None, **kw: object
) -> KvMigrationPolicy:
    return KvMigrationPolicy(name=name, vmi_selector=vmi, namespace_selector=ns, **kw)  # type: ignore[arg-type]


def test_defaults_are_kubevirts() -> None:
    cfg = parse_migration_configuration({})
    assert (cfg.parallel_migrations_per_cluster, cfg.parallel_outbound_migrations_per_node) == (5, 2)
    assert (cfg.completion_timeout_per_gib, cfg.progress_timeout_s, cfg.bandwidth_per_migration_bps) == (150, 150, 0)
    assert not cfg.allows_workload_disruption


def test_workload_disruption_follows_post_copy_when_unset() -> None:
    assert parse_migration_configuration({"allowPostCopy": True}).allows_workload_disruption
    cfg = parse_migration_configuration({"allowPostCopy": True, "allowWorkloadDisruption": False})
    assert not cfg.allows_workload_disruption


def test_bad_config_names_every_field() -> None:
    with pytest.raises(SpecErrors) as err:
        parse_migration_configuration(
            {"parallelMigrationsPerCluster": 0, "allowPostCopy": "yes", "bandwidthPerMigration": "x"}
        )
    paths = {e.path for e in err.value.errors}
    assert paths == {
        "kubevirt.parallelMigrationsPerCluster",
        "kubevirt.allowPostCopy",
        "kubevirt.bandwidthPerMigration",
    }


def test_config_round_trips_through_the_manifest() -> None:
    cfg = KubevirtMigrationConfig(
        parallel_migrations_per_cluster=3,
        bandwidth_per_migration_bps=64 * 2**20,
        allow_post_copy=True,
        allow_workload_disruption=False,
    )
    assert parse_migration_configuration(cfg.to_manifest()) == cfg


def test_nil_selectors_never_match_and_empty_selectors_match_all() -> None:
    nil = KvMigrationPolicy(name="a-nil", has_selectors=False)
    empty = policy("b-empty", {}, {})
    assert match_kv_migration_policy([nil], {"app": "db"}, {}) is None
    assert match_kv_migration_policy([nil, empty], {"app": "db"}, {}) is empty


def test_every_selector_pair_must_match() -> None:
    p = policy("p", {"app": "db", "tier": "gold"})
    assert match_kv_migration_policy([p], {"app": "db"}, {}) is None
    assert match_kv_migration_policy([p], {"app": "db", "tier": "gold", "x": "y"}, {}) is p
    q = policy("q", None, {"env": "prod"})
    assert match_kv_migration_policy([q], {"app": "db"}, {"env": "dev"}) is None
    assert match_kv_migration_policy([q], {"app": "db"}, {"env": "prod"}) is q


def test_precedence_total_then_vmi_matches_then_name() -> None:
    two_vmi = policy("z-two-vmi", {"app": "db", "tier": "gold"})
    one_each = policy("a-one-each", {"app": "db"}, {"env": "prod"})
    one_vmi = policy("a-one-vmi", {"app": "db"})
    one_ns = policy("0-one-ns", None, {"env": "prod"})
    labels, ns = {"app": "db", "tier": "gold"}, {"env": "prod"}
    # total 2 beats total 1; among total 2 the one with more VMI matches wins even with a later name
    assert match_kv_migration_policy([one_vmi, one_each, two_vmi, one_ns], labels, ns) is two_vmi
    # total 1 each: more VMI-label matches wins over the namespace one, despite the name
    assert match_kv_migration_policy([one_ns, one_vmi], labels, ns) is one_vmi
    # full tie: smallest name
    b = policy("b", {"app": "db"})
    a = policy("a", {"tier": "gold"})
    assert match_kv_migration_policy([b, a], labels, ns) is a


def test_vmi_with_nil_labels_matches_every_policy_at_score_zero() -> None:
    p = policy("p", {"app": "db"})
    assert match_kv_migration_policy([p], None, {}) is p


def test_merge_policy_over_cluster_config() -> None:
    cluster = KubevirtMigrationConfig(completion_timeout_per_gib=150, bandwidth_per_migration_bps=0)
    merged = apply_kv_migration_policy(
        cluster, policy("p", {}, None, allow_post_copy=True, completion_timeout_per_gib=1)
    )
    assert merged.allow_post_copy
    assert merged.allows_workload_disruption
    assert merged.completion_timeout_per_gib == 1
    assert merged.parallel_migrations_per_cluster == cluster.parallel_migrations_per_cluster
    explicit = apply_kv_migration_policy(
        cluster, policy("p", {}, None, allow_post_copy=True, allow_workload_disruption=False)
    )
    assert not explicit.allows_workload_disruption


def test_handoff_records_policy_only_if_it_sets_a_field_v18() -> None:
    cluster = KubevirtMigrationConfig()
    empty = policy("empty", {})
    d = decide_handoff_config(cluster, [empty], {"a": "b"}, {})
    assert d.policy_name is None
    assert d.matched_policy == "empty"
    assert d.config == cluster
    d = decide_handoff_config(cluster, [policy("ac", {}, None, allow_auto_converge=True)], {"a": "b"}, {})
    assert d.policy_name == "ac"
    assert d.config.allow_auto_converge


def test_parse_policy_manifest() -> None:
    p = parse_kv_migration_policy(
        {
            "metadata": {"name": "fast"},
            "spec": {
                "selectors": {"virtualMachineInstanceSelector": {"app": "db"}},
                "allowPostCopy": True,
                "bandwidthPerMigration": "64Mi",
                "completionTimeoutPerGiB": 1,
            },
        }
    )
    assert p.vmi_selector == {"app": "db"}
    assert p.namespace_selector is None
    assert p.has_selectors
    assert p.bandwidth_per_migration_bps == 64 * 2**20
    assert p.completion_timeout_per_gib == 1
    assert not parse_kv_migration_policy({"metadata": {"name": "x"}, "spec": {}}).has_selectors


def test_parse_policy_rejects_negative_numbers_and_bad_selectors() -> None:
    with pytest.raises(SpecErrors) as err:
        parse_kv_migration_policy(
            {
                "metadata": {"name": "x"},
                "spec": {"selectors": {"namespaceSelector": {"a": 1}}, "completionTimeoutPerGiB": -1},
            }
        )
    assert {e.path for e in err.value.errors} == {
        "migrationPolicy.spec.selectors.namespaceSelector",
        "migrationPolicy.spec.completionTimeoutPerGiB",
    }


def test_manifest_mode_reads_the_kubevirt_cr_as_stored() -> None:
    """The CR carries fields livemig does not model, and 0 is a valid timeout there (0 disables)."""
    doc = {"maxDowntimeMs": 300, "utilityVolumesTimeout": 150, "completionTimeoutPerGiB": 0, "progressTimeout": 0}
    cfg = parse_migration_configuration(doc, "spec.configuration.migrations", manifest=True)
    assert (cfg.completion_timeout_per_gib, cfg.progress_timeout_s) == (0, 0)
    with pytest.raises(SpecErrors) as err:
        parse_migration_configuration(doc)
    problems = {e.path: e.problem for e in err.value.errors}
    assert set(problems) == {
        "kubevirt.maxDowntimeMs",
        "kubevirt.utilityVolumesTimeout",
        "kubevirt.completionTimeoutPerGiB",
        "kubevirt.progressTimeout",
    }
    assert problems["kubevirt.maxDowntimeMs"].startswith("unknown field (expected one of: parallelMigrationsPerCluster")
    assert problems["kubevirt.completionTimeoutPerGiB"] == "must be at least 1, got 0"
    assert problems["kubevirt.progressTimeout"] == "must be greater than zero, got 0"


def test_counts_and_seconds_are_whole_numbers_as_in_kubevirts_api() -> None:
    cfg = parse_migration_configuration(
        {"progressTimeout": "2m", "completionTimeoutPerGiB": 30.0, "bandwidthPerMigration": "1Gbit"}
    )
    assert (cfg.progress_timeout_s, cfg.completion_timeout_per_gib) == (120, 30)
    assert isinstance(cfg.progress_timeout_s, int)
    assert isinstance(cfg.completion_timeout_per_gib, int)
    assert cfg.bandwidth_per_migration_bps == 125_000_000
    with pytest.raises(SpecErrors) as err:
        parse_migration_configuration({"progressTimeout": "2.5s", "completionTimeoutPerGiB": 1.5})
    assert {e.path: e.problem for e in err.value.errors} == {
        "kubevirt.progressTimeout": "must be a whole number of seconds, not '2.5s'",
        "kubevirt.completionTimeoutPerGiB": "must be an integer, not 1.5",
    }


def test_node_drain_taint_key_round_trips_through_the_manifest() -> None:
    cfg = parse_migration_configuration({"nodeDrainTaintKey": "example.com/drain"})
    assert cfg.to_manifest()["nodeDrainTaintKey"] == "example.com/drain"
    assert parse_migration_configuration(cfg.to_manifest()) == cfg
    assert "nodeDrainTaintKey" not in KubevirtMigrationConfig().to_manifest()


def test_simulator_names_stay_importable() -> None:
    from livemig.sim import kvconfig

    assert kvconfig.MigrationConfiguration is KubevirtMigrationConfig
    assert kvconfig.parse_migration_configuration is parse_migration_configuration
    assert kvconfig.decide_handoff_config is decide_handoff_config
