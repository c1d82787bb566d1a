"""The Helm chart installs into the real API server and its roles grant what they say."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
