"""Session fixtures shared by the integration tests: one real control plane per test session.

The control plane is etcd + kube-apiserver built from Go modules (hack/controlplane/build.sh, cached outside the
repository).  Every test gets its own namespace; nothing relies on garbage collection or namespace deletion, which
need the kube-controller-manager that does not run here.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from livemig.devcluster import BinariesMissingError, DevCluster
from support.ci_skips import pytest_make_collect_report, pytest_runtest_makereport

# In CI (CI=true) a skip outside tests/e2e/ fails the run (support/ci_skips.py).
__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]

REPO_ROOT = Path(__file__).resolve().parent.parent
KUBEVIRT_CRDS = REPO_ROOT / "hack" / "kubevirt-crds"
LIVEMIG_CRDS = REPO_ROOT / "crds"


@pytest.fixture(scope="session")
def devcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A running etcd + kube-apiserver (TLS, RBAC, service-account issuer) for the whole session."""
    cluster = DevCluster(tmp_path_factory.mktemp("devcluster"), attached=True)
    try:
        cluster.start()
    except BinariesMissingError as exc:
        if os.environ.get("CI"):
            raise  # CI installs everything: a missing binary there is a failure, not a skip
        pytest.skip(f"control-plane binaries unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def _apply_crds(devcluster: DevCluster, directory: Path) -> list[str]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        pytest.fail(f"no CRDs in {directory}")
    names: list[str] = []
    for path in files:
        result = devcluster.kubectl("apply", "--server-side", "-f", str(path), "-o", "name")
        names += [line.strip() for line in result.stdout.splitlines() if line.strip()]
    crd_names = [n for n in names if n.startswith("customresourcedefinition")]
    devcluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crd_names)
    return crd_names


@pytest.fixture(scope="session")
def kubevirt_crds(devcluster: DevCluster) -> list[str]:
    """KubeVirt's CRDs (test copies written from the reference), installed and Established."""
    return _apply_crds(devcluster, KUBEVIRT_CRDS)


@pytest.fixture(scope="session")
def livemig_crds(devcluster: DevCluster) -> list[str]:
    """livemig's own CRDs from crds/, installed and Established."""
    return _apply_crds(devcluster, LIVEMIG_CRDS)


@pytest.fixture
def namespace(devcluster: DevCluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, labelled with the test's name (namespaces are never deleted here)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    test_label = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:63].strip("-_.") or "x"
    devcluster.kubectl("create", "namespace", name)
    devcluster.kubectl("label", "namespace", name, f"livemig.io/test={test_label}")
    return name
