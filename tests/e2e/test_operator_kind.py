"""The operator installed with the chart on kind with real KubeVirt (issue 11, item 6): image built and loaded,
KubeVirt (software emulation), a small Prometheus and the chart installed, two small VMs started, a maintenance policy
applied; the VM on the drained node moves with the technique livemig reported, through livemig's KubeVirt policy.

Needs Docker, kind, kubectl, helm and internet (image pulls, KubeVirt's release manifests); skipped otherwise with
what is missing (tests/e2e/conftest.py). Run: `pytest -m e2e tests/e2e/test_operator_kind.py` (docs/e2e.md).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from .harness import REPO_ROOT, Kubectl, vmi_manifest, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

IMAGE = f"livemig:e2e-{uuid.uuid4().hex[:8]}"
NAMESPACE = "livemig-e2e-operator"


def _run(*argv: str, timeout_s: float = 1800) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_the_chart_installed_operator_drains_a_node_on_kubevirt(kubevirt: Kubectl) -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not on PATH (hack/controlplane/build.sh builds one: add its bin directory to PATH)")
    cluster_name = kubevirt.run("config", "current-context").stdout.strip().removeprefix("kind-")
    _run("docker", "build", "-t", IMAGE, str(REPO_ROOT))
    _run("kind", "load", "docker-image", IMAGE, "--name", cluster_name)
    kubevirt.run("apply", "-f", str(REPO_ROOT / "tests" / "e2e" / "prometheus-e2e.yaml"))
    repository, tag = IMAGE.split(":")
    _run(
        helm,
        "--kubeconfig",
        str(kubevirt.kubeconfig),
        "install",
        "livemig",
        str(REPO_ROOT / "charts" / "livemig"),
        "-n",
        "livemig-system",
        "--create-namespace",
        "--wait",
        "--timeout",
        "10m",
        "--set",
        f"operator.image.repository={repository},operator.image.tag={tag},operator.image.pullPolicy=Never",
        "--set",
        "operator.prometheusUrl=http://prometheus.monitoring.svc:9090",
    )
    kubevirt.run("create", "namespace", NAMESPACE)
    for name in ("vm-a", "vm-b"):
        kubevirt.create(vmi_manifest(name, NAMESPACE, {"app": name, "livemig.io/e2e": "operator"}))
    for name in ("vm-a", "vm-b"):
        for condition in ("condition=Ready", "condition=LiveMigratable"):
            kubevirt.wait(f"vmi/{name}", condition=condition, timeout_s=900, namespace=NAMESPACE)
    source = kubevirt.get("vmi", "vm-a", "-n", NAMESPACE)["status"]["nodeName"]
    policy = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": "e2e-drain"},
        "spec": {
            "purpose": "Maintenance",
            "maintenance": {"nodeNames": [source]},
            "interval": "10s",
            "selector": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}},
            "limits": {"maxConcurrentMigrations": 1, "cooldown": "0s"},
        },
    }
    kubevirt.create(policy)

    def moved() -> list[str]:
        outcomes = kubevirt.get("migrationpolicies.livemig.io", "e2e-drain").get("status", {}).get("recentOutcomes")
        on_source = [
            n for n in ("vm-a", "vm-b") if kubevirt.get("vmi", n, "-n", NAMESPACE)["status"].get("nodeName") == source
        ]
        return ([] if outcomes else ["no outcome recorded yet"]) + [f"{n} still on {source}" for n in on_source]

    wait_until(moved, timeout_s=1800, what=f"the VMs on {source} moved by the operator")
    status = kubevirt.get("migrationpolicies.livemig.io", "e2e-drain")["status"]
    for outcome in status["recentOutcomes"]:
        assert outcome["outcome"] in ("completed", "switched-to-post-copy"), outcome
        vmim = kubevirt.get("vmim", outcome["migration"], "-n", NAMESPACE)
        assert vmim["metadata"]["annotations"]["livemig.io/technique"] == outcome["technique"]
        assert vmim["status"]["migrationState"]["migrationPolicyName"] == f"livemig-{outcome['migration']}", (
            "KubeVirt applied livemig's technique policy"
        )
    assert kubevirt.get("node", source)["spec"].get("unschedulable") is True
