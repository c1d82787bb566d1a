"""The Helm chart installs into the real API server and its roles grant what they say."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from livemig.devcluster import DevCluster

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[2] / "charts" / "livemig"


def _helm(devcluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(devcluster.bin_dir / "helm"), "--kubeconfig", str(devcluster.kubeconfig), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_chart_lints() -> None:
    result = subprocess.run(["bash", "hack/controlplane/build.sh"], capture_output=True, text=True, check=True)
    helm = Path(result.stdout.strip()) / "helm"
    lint = subprocess.run([str(helm), "lint", "--strict", str(CHART)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_chart_installs_crd_and_roles(devcluster: DevCluster, namespace: str, tmp_path: Path) -> None:
    install = _helm(devcluster, "install", "lm", str(CHART), "-n", namespace)
    assert install.returncode == 0, install.stderr
    devcluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/migrationpolicies.livemig.io")

    devcluster.kubectl("create", "serviceaccount", "author", "-n", namespace)
    devcluster.kubectl("create", "clusterrolebinding", f"{namespace}-author", "--clusterrole=lm-policy-viewer",
                       f"--serviceaccount={namespace}:author")  # fmt: skip
    token = devcluster.kubectl("create", "token", "author", "-n", namespace).stdout.strip()
    author = devcluster.write_token_kubeconfig(token, tmp_path / "author.kubeconfig")

    def can(verb: str) -> str:
        result = devcluster.kubectl("auth", "can-i", verb, "migrationpolicies.livemig.io", kubeconfig=author,
                                    check=False)  # fmt: skip
        return result.stdout.strip()

    assert can("list") == "yes"
    assert can("create") == "no"
    devcluster.kubectl("create", "clusterrolebinding", f"{namespace}-author-edit", "--clusterrole=lm-policy-editor",
                       f"--serviceaccount={namespace}:author")  # fmt: skip
    assert can("create") == "yes"

    uninstall = _helm(devcluster, "uninstall", "lm", "-n", namespace)
    assert uninstall.returncode == 0, uninstall.stderr
    # Helm never deletes CRDs it installed from crds/: policies survive an uninstall.
    devcluster.kubectl("get", "crd", "migrationpolicies.livemig.io")


ALL_ON = CHART / "ci" / "all-on-values.yaml"
TEST_CRDS = CHART.parents[1] / "hack" / "test-crds"


def test_chart_lints_strict_with_every_option_on() -> None:
    result = subprocess.run(["bash", "hack/controlplane/build.sh"], capture_output=True, text=True, check=True)
    helm = Path(result.stdout.strip()) / "helm"
    lint = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "-f", str(ALL_ON)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("values", [None, ALL_ON], ids=["defaults", "all-on"])
def test_rendered_objects_are_accepted_by_the_api_server(
    devcluster: DevCluster, livemig_crds: list[str], namespace: str, values: Path | None
) -> None:
    for path in sorted(TEST_CRDS.glob("*.yaml")):
        devcluster.kubectl("apply", "--server-side", "-f", str(path))
    devcluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    )
    args = ["template", "lm", str(CHART), "-n", namespace, *(["-f", str(values)] if values else [])]
    rendered = _helm(devcluster, *args)
    assert rendered.returncode == 0, rendered.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc}
    expected = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"}
    if values:
        expected |= {"ServiceMonitor", "PrometheusRule", "ConfigMap", "PodDisruptionBudget", "ClusterKopfPeering"}
    assert expected <= kinds
    applied = devcluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered.stdout, check=False
    )
    assert applied.returncode == 0, applied.stderr
    assert "Warning" not in applied.stderr, applied.stderr


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("operator.replicaCount=-1", "/operator/replicaCount"),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("operator.prometheusUrl=prometheus:9090", "/operator/prometheusUrl"),
        ("operator.defaultMigrationBandwidth=fast", "/operator/defaultMigrationBandwidth"),
        ("operator.metricsPort=70000", "/operator/metricsPort"),
        ("metrics.serviceMonitor.interval=soon", "/metrics/serviceMonitor/interval"),
        ("operator.replicas=2", "additional properties 'replicas'"),
        ("podDisruptionBudget.minAvailable=half", "/podDisruptionBudget/minAvailable"),
    ],
)
def test_bad_values_are_rejected_naming_the_value(setting: str, named: str) -> None:
    result = subprocess.run(["bash", "hack/controlplane/build.sh"], capture_output=True, text=True, check=True)
    helm = Path(result.stdout.strip()) / "helm"
    out = subprocess.run(
        [str(helm), "template", "lm", str(CHART), "--set", setting], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    assert named in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("settings", "blocks"),
    [
        (["operator.replicaCount=1"], True),
        (["operator.replicaCount=2"], False),
        (["operator.replicaCount=2", "podDisruptionBudget.minAvailable=2"], True),
        (["operator.replicaCount=2", "podDisruptionBudget.minAvailable=50%"], False),
        (["operator.replicaCount=2", "podDisruptionBudget.minAvailable=51%"], True),
        (["operator.replicaCount=3", "podDisruptionBudget.minAvailable=2"], False),
    ],
)
def test_a_budget_that_would_block_every_eviction_is_refused(settings: list[str], blocks: bool) -> None:
    """minAvailable >= replicas makes `kubectl drain` of the operator's node wait forever: refuse it, naming both
    values, instead of installing it."""
    result = subprocess.run(["bash", "hack/controlplane/build.sh"], capture_output=True, text=True, check=True)
    helm = Path(result.stdout.strip()) / "helm"
    args = [arg for setting in ["podDisruptionBudget.enabled=true", *settings] for arg in ("--set", setting)]
    out = subprocess.run([str(helm), "template", "lm", str(CHART), *args], capture_output=True, text=True, check=False)
    if blocks:
        assert out.returncode != 0
        assert "podDisruptionBudget.minAvailable" in out.stderr, out.stderr
        assert "operator.replicaCount" in out.stderr, out.stderr
    else:
        assert out.returncode == 0, out.stderr
        (budget,) = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "PodDisruptionBudget"]
        assert budget["spec"]["minAvailable"] in (1, 2, "50%")


def test_the_grafana_dashboard_queries_the_operators_metrics() -> None:
    dashboard = json.loads((CHART / "dashboards" / "livemig.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "livemig_migrations_total",
        "livemig_prediction_error_ratio_bucket",
        "livemig_queue_length",
        "livemig_migrations_in_flight",
        "livemig_evaluation_duration_seconds_bucket",
    ):
        assert metric in exprs, metric
