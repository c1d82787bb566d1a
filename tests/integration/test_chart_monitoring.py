"""The chart's alerts and Grafana dashboard, evaluated by Prometheus' own rule engine (`promtool test rules`) on the
series the operator's real metrics registry exports: the alerts fire when they should (and not before their `for`),
name the policy, and every dashboard query returns data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from livemig.controller.metrics import OperatorMetrics
from livemig.devcluster.prometheus import PrometheusError, prometheus_binary

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

CHART = Path(__file__).resolve().parents[2] / "charts" / "livemig"
MINUTES = 60  # every input series has one sample a minute for this many minutes


@pytest.fixture(scope="module")
def helm() -> Path:
    result = subprocess.run(["bash", "hack/controlplane/build.sh"], capture_output=True, text=True, check=True)
    return Path(result.stdout.strip()) / "helm"


@pytest.fixture(scope="module")
def promtool() -> Path:
    try:
        candidate: Path | None = prometheus_binary().parent / "promtool"
    except PrometheusError:
        candidate = None
    found = candidate if candidate and candidate.is_file() else None
    if found is None and (which := shutil.which("promtool")):
        found = Path(which)
    if found is None:
        if os.environ.get("CI"):
            raise AssertionError("no promtool (apt-get install -y --no-install-recommends prometheus)")
        pytest.skip("no promtool (apt-get install -y --no-install-recommends prometheus)")
    return found


def _input_series(metrics: OperatorMetrics, overrides: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The registry's exposition as promtool input series: counters and histograms grow by their value every
    minute, gauges hold theirs; `overrides` replaces the values of the series it names."""
    overrides = dict(overrides or {})
    series = []
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            name = f"{sample.name}{{{labels}}}"
            growing = family.type in ("counter", "histogram")
            values = overrides.pop(name, f"0+{sample.value}x{MINUTES}" if growing else f"{sample.value}x{MINUTES}")
            series.append({"series": name, "values": values})
    assert not overrides, f"overrides for series the operator does not export: {sorted(overrides)}"
    return series


def _promtool_test(promtool: Path, tmp_path: Path, groups: list[dict[str, Any]], test: dict[str, Any]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    check = subprocess.run([str(promtool), "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [test]}))
    result = subprocess.run(
        [str(promtool), "test", "rules", tests.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _rendered_rule_groups(helm: Path) -> list[dict[str, Any]]:
    args = ["--set", "metrics.prometheusRule.enabled=true", "--show-only", "templates/monitoring.yaml"]
    rendered = subprocess.run(
        [str(helm), "template", "lm", str(CHART), "-n", "livemig-system", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    (rule,) = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def _annotations(rule: dict[str, Any], policy: str) -> dict[str, str]:
    """What Prometheus makes of the rule's annotation templates for `policy` (the chart must pass them through
    Helm unexpanded)."""
    out = {}
    for key, text in rule["annotations"].items():
        out[key] = text.replace("{{ $labels.policy }}", policy)
    return out


def test_alerts_fire_on_the_operators_metrics(helm: Path, promtool: Path, tmp_path: Path) -> None:
    groups = _rendered_rule_groups(helm)
    rules = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {
        "LivemigMigrationsFailing",
        "LivemigMetricsUnavailable",
        "LivemigPolicyDegraded",
        "LivemigNoEvaluation",
    }
    for name in ("LivemigMigrationsFailing", "LivemigMetricsUnavailable", "LivemigPolicyDegraded"):
        assert "{{ $labels.policy }}" in rules[name]["annotations"]["summary"], name

    # "drain" fails a migration and is otherwise healthy; "lb" completes migrations but has no metrics, is Degraded
    # and its last evaluation was at t=0.
    metrics = OperatorMetrics()
    metrics.migrations.labels("drain", "Maintenance", "pre-copy", "failed").inc()
    metrics.migrations.labels("drain", "Maintenance", "pre-copy", "completed").inc()
    metrics.migrations.labels("lb", "LoadBalancing", "post-copy", "completed").inc()
    metrics.metrics_unavailable.labels("drain").set(0)
    metrics.metrics_unavailable.labels("lb").set(1)
    for policy, degraded in (("drain", 0), ("lb", 1)):
        metrics.condition.labels(policy, "Degraded").set(degraded)
        metrics.condition.labels(policy, "Ready").set(1)
    metrics.last_evaluation.labels("drain").set(0)
    metrics.last_evaluation.labels("lb").set(0)
    # drain is evaluated every minute: its timestamp follows the clock.
    series = _input_series(metrics, {'livemig_last_evaluation_timestamp_seconds{policy="drain"}': f"0+60x{MINUTES}"})

    def firing(name: str, policy: str) -> dict[str, Any]:
        labels = {"policy": policy, **rules[name]["labels"]}
        return {"exp_labels": labels, "exp_annotations": _annotations(rules[name], policy)}

    # Failing: active from 1 min (the first increase), firing after its 5 min `for`. Metrics unavailable: 10 min.
    # Degraded: 15 min. No evaluation: 600 s without one, then 5 min.
    expected = {
        5: {},
        9: {"LivemigMigrationsFailing": "drain"},
        20: {
            "LivemigMigrationsFailing": "drain",
            "LivemigMetricsUnavailable": "lb",
            "LivemigPolicyDegraded": "lb",
            "LivemigNoEvaluation": "lb",
        },
    }
    alert_tests = [
        {
            "eval_time": f"{minute}m",
            "alertname": name,
            "exp_alerts": [firing(name, policy)] if (policy := want.get(name)) else [],
        }
        for minute, want in expected.items()
        for name in rules
    ]
    _promtool_test(
        promtool, tmp_path, groups, {"interval": "1m", "input_series": series, "alert_rule_test": alert_tests}
    )


def test_every_dashboard_query_returns_data_from_the_operators_metrics(promtool: Path, tmp_path: Path) -> None:
    dashboard = json.loads((CHART / "dashboards" / "livemig.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = set(re.findall(r"\$(\w+)", " ".join(exprs)))
    assert "policy" in used  # the panels filter by the policy variable...
    assert used <= variables  # ...and every variable a query uses is defined

    # One of everything the operator records, as a policy in the middle of a drain would.
    metrics = OperatorMetrics()
    metrics.started.labels("drain", "pre-copy").inc()
    metrics.migrations.labels("drain", "Maintenance", "pre-copy", "completed").inc()
    metrics.in_flight.labels("drain").set(1)
    metrics.queue.labels("drain").set(3)
    metrics.evaluation.labels("drain").observe(0.2)
    metrics.evaluations.labels("drain", "Planned").inc()
    metrics.last_evaluation.labels("drain").set(0)
    metrics.prediction_error.labels("duration").observe(1.1)
    metrics.prediction_error.labels("downtime").observe(0.8)
    metrics.condition.labels("drain", "Degraded").set(1)
    metrics.metrics_unavailable.labels("drain").set(1)

    # Each query becomes an alert that fires iff the query returns something (Grafana's "All" is `.*`).
    rules = [
        {"alert": f"DashboardQuery{i}", "expr": f"count({expr.replace('$policy', '.*')}) > 0"}
        for i, expr in enumerate(exprs)
    ]
    tests = [{"eval_time": "30m", "alertname": rule["alert"], "exp_alerts": [{"exp_labels": {}}]} for rule in rules]
    _promtool_test(
        promtool,
        tmp_path,
        [{"name": "dashboard", "rules": rules}],
        {"interval": "1m", "input_series": _input_series(metrics), "alert_rule_test": tests},
    )
