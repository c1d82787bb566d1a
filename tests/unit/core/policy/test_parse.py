"""parse_policy / load_policy: defaults, units, error collection, and the shipped examples."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from livemig.core.errors import SpecErrors
from livemig.core.policy import (
    Comparison,
    Limits,
    LivemigPolicy,
    SelectorOperator,
    TechniquePolicy,
    load_policy,
    matches,
    parse_policy,
)
from livemig.core.vocabulary import Objective, Purpose, TechniqueMode

REPO = Path(__file__).resolve().parents[4]
EXAMPLES = sorted((REPO / "examples" / "policies").glob("*.yaml"))


def manifest(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": name}, "spec": spec}


def errors_of(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecErrors) as excinfo:
        parse_policy(doc)
    return {e.path: e.problem for e in excinfo.value.errors}


def test_examples_exist_for_every_purpose() -> None:
    purposes = {load_policy(path).purpose for path in EXAMPLES}
    assert purposes == set(Purpose)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_parses(path: Path) -> None:
    policy = load_policy(path)
    assert isinstance(policy, LivemigPolicy)
    assert policy.name == path.read_text().split("name: ", 1)[1].split()[0]


def test_minimal_policy_gets_the_crd_defaults() -> None:
    policy = parse_policy(
        manifest({"purpose": "LoadBalancing", "loadBalancing": {"memory": {"high": 0.9, "target": 0.7}}})
    )
    assert policy.technique == TechniquePolicy(
        mode=TechniqueMode.AUTO, objective=Objective.BALANCED, allow_post_copy=False, allow_auto_converge=False
    )
    assert policy.limits == Limits(
        max_concurrent_migrations=2,
        max_concurrent_migrations_per_node=1,
        cooldown_s=600.0,
        max_migrations_per_vmi=3,
        window_s=3600.0,
    )
    assert policy.dry_run is False
    assert policy.interval_s == 60.0
    assert policy.prometheus is None
    assert policy.load_balancing is not None
    assert policy.load_balancing.hysteresis == 0.05
    assert policy.load_balancing.averaging_window_s == 300.0
    assert policy.load_balancing.cpu is None
    assert policy.selector.namespace_selector is None
    assert policy.node_selector is None


def test_units_are_converted_once() -> None:
    policy = parse_policy(
        manifest(
            {
                "purpose": "Evacuation",
                "evacuation": {"healthQuery": "up == 0", "threshold": 1, "comparison": "LessThan", "for": "1m30s"},
                "technique": {"maxDowntime": "250ms", "bandwidthPerMigration": "64Mi", "completionTimeoutPerGiB": 5},
                "limits": {"cooldown": "1h30m", "window": "24h"},
                "interval": "15s",
                "prometheus": {"url": "https://prom:9090", "timeout": "500ms"},
            }
        )
    )
    assert policy.evacuation is not None
    assert policy.evacuation.for_s == 90.0
    assert policy.evacuation.comparison is Comparison.LESS_THAN
    assert policy.evacuation.is_unhealthy(0.0)
    assert not policy.evacuation.is_unhealthy(1.0)
    assert policy.evacuation.node_label == "node"
    assert math.isclose(policy.technique.max_downtime_s or 0, 0.25)
    assert policy.technique.bandwidth_per_migration_bps == 64 * 2**20
    assert policy.technique.completion_timeout_per_gib == 5
    assert policy.limits.cooldown_s == 5400.0
    assert policy.limits.window_s == 86400.0
    assert policy.interval_s == 15.0
    assert policy.prometheus is not None
    assert policy.prometheus.timeout_s == 0.5
    assert policy.prometheus.max_age_s == 120.0


def test_bandwidth_accepts_integers_and_zero_means_unlimited() -> None:
    spec = {"purpose": "LoadBalancing", "loadBalancing": {"cpu": {"high": 0.8, "target": 0.5}}}
    assert (
        parse_policy(
            manifest({**spec, "technique": {"bandwidthPerMigration": 0}})
        ).technique.bandwidth_per_migration_bps
        == 0.0
    )
    assert (
        parse_policy(
            manifest({**spec, "technique": {"bandwidthPerMigration": "1G"}})
        ).technique.bandwidth_per_migration_bps
        == 1e9
    )


def test_maintenance_window_and_selectors() -> None:
    policy = parse_policy(
        manifest(
            {
                "purpose": "Maintenance",
                "nodeSelector": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
                "maintenance": {
                    "nodeNames": ["n1", "n2"],
                    "nodeLabelSelector": {"matchLabels": {"maint": "yes"}},
                    "window": {"start": "2026-11-28T22:00:00Z", "end": "2026-11-29T00:00:00+01:00"},
                },
            }
        )
    )
    m = policy.maintenance
    assert m is not None
    assert m.window is not None
    assert m.node_names == ("n1", "n2")
    assert m.cordoned is False
    assert m.max_nodes_in_parallel == 1
    start = datetime(2026, 11, 28, 22, 0, tzinfo=UTC).timestamp()
    assert m.window.start_s == start
    assert m.window.end_s == start + 3600
    assert m.window.contains(start)
    assert not m.window.contains(start + 3600)
    assert policy.node_selector is not None
    assert policy.node_selector.match_expressions[0].operator is SelectorOperator.IN
    assert matches(policy.node_selector, {"zone": "b"})
    assert not matches(policy.node_selector, {"zone": "c"})
    assert matches(m.node_label_selector, {"maint": "yes"})


def test_consolidation_headroom_defaults_per_field() -> None:
    policy = parse_policy(
        manifest(
            {"purpose": "Consolidation", "consolidation": {"lowUtilization": {"cpu": 0.3}, "headroom": {"memory": 0.1}}}
        )
    )
    c = policy.consolidation
    assert c is not None
    assert c.low_utilization.cpu == 0.3
    assert c.low_utilization.memory is None
    assert c.headroom.cpu == 0.2
    assert c.headroom.memory == 0.1
    assert c.max_nodes_per_cycle == 1
    assert c.cordon_emptied is False


def test_all_errors_are_collected_with_dotted_paths() -> None:
    errors = errors_of(
        manifest(
            {
                "purpose": "LoadBalancing",
                "loadBalancing": {"cpu": {"high": 0.5, "target": 0.9}},
                "technique": {"mode": "PostCopy"},
                "limits": {"cooldown": "soon", "maxConcurrentMigrations": 0},
                "interval": "2s",
                "surprise": 1,
            }
        )
    )
    assert set(errors) == {
        "spec.loadBalancing.cpu.target",
        "spec.technique.mode",
        "spec.limits.cooldown",
        "spec.limits.maxConcurrentMigrations",
        "spec.interval",
        "spec.surprise",
    }
    assert errors["spec.limits.cooldown"] == "must be a duration like 30s, 10m or 1h30m, not 'soon'"
    assert errors["spec.technique.mode"] == "mode PostCopy requires allowPostCopy: true"


def test_the_message_reads_path_colon_problem() -> None:
    doc = manifest(
        {"purpose": "Consolidation", "consolidation": {"lowUtilization": {"cpu": 0.1}}, "limits": {"cooldown": "30 s"}}
    )
    with pytest.raises(SpecErrors, match=r"^spec\.limits\.cooldown: must be a duration like 30s, 10m or 1h30m"):
        parse_policy(doc)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (
            {
                "apiVersion": "livemig.io/v1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "x"},
                "spec": {"purpose": "Consolidation", "consolidation": {"lowUtilization": {"cpu": 0.1}}},
            },
            "apiVersion",
        ),
        (
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "Policy",
                "metadata": {"name": "x"},
                "spec": {"purpose": "Consolidation", "consolidation": {"lowUtilization": {"cpu": 0.1}}},
            },
            "kind",
        ),
        (
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "Bad_Name"},
                "spec": {"purpose": "Consolidation", "consolidation": {"lowUtilization": {"cpu": 0.1}}},
            },
            "metadata.name",
        ),
        ({"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": "x"}}, "spec"),
        (
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "x"},
                "spec": {"purpose": "Consolidation", "consolidation": {"lowUtilization": {}}},
            },
            "spec.consolidation.lowUtilization",
        ),
        (
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "x"},
                "spec": {"purpose": "LoadBalancing", "loadBalancing": {"pressure": {}}},
            },
            "spec.loadBalancing.pressure",
        ),
        (
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "x"},
                "spec": {"purpose": "LoadBalancing", "loadBalancing": {"cpu": {"high": 0, "target": 0}}},
            },
            "spec.loadBalancing.cpu.high",
        ),
    ],
)
def test_other_rejections(doc: dict[str, Any], path: str) -> None:
    assert path in errors_of(doc)


def test_load_policy_reports_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SpecErrors, match="cannot read"):
        load_policy(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    with pytest.raises(SpecErrors, match="not valid YAML"):
        load_policy(broken)
    two = tmp_path / "two.yaml"
    two.write_text("a: 1\n---\nb: 2\n")
    with pytest.raises(SpecErrors, match="exactly one MigrationPolicy, found 2"):
        load_policy(two)
