"""Session fixtures for the kind end-to-end suite: one kind cluster with real KubeVirt per session, always deleted.

Without Docker (no engine behind the docker CLI), kind or kubectl, every test that needs the cluster is skipped with
the reason; set LIVEMIG_E2E_REQUIRE=1 (a CI job with Docker) to make that a failure instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator

import pytest
import yaml

from . import kubevirt_expectations as kv
from .harness import (
    KIND_CONFIG,
    KindCluster,
    Kubectl,
    download,
    kubevirt_cr_for_emulation,
    missing_prerequisites,
    vmi_manifest,
)

# Deadlines (seconds). Generous: image pulls on a laptop, and QEMU without KVM (TCG) inside kind's node containers.
KIND_READY_S = 600
KUBEVIRT_OPERATOR_READY_S = 900
KUBEVIRT_AVAILABLE_S = 1800
VMI_READY_S = 900


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed e2e test, attach what the cluster looked like (VMIs, VMIMs, pods, recent events) to the report."""
    report: pytest.TestReport = yield
    kubectl = getattr(item, "funcargs", {}).get("kind_cluster")
    if report.when == "call" and report.failed and isinstance(kubectl, Kubectl):
        for title, args in (
            ("objects", ("get", "vmi,vmim,pods", "-A", "-o", "wide")),
            ("events", ("get", "events", "-A", "--sort-by=.lastTimestamp")),
        ):
            result = kubectl.run(*args, check=False, timeout_s=60)
            report.sections.append((f"kind cluster {title}", result.stdout[-20000:] + result.stderr))
    return report


@pytest.fixture(scope="session")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """A fresh kind cluster from kind-config.yaml under a unique name; deleted at the end, also after a failure."""
    missing = missing_prerequisites()
    if missing:
        reason = "e2e needs Docker, kind and kubectl: " + "; ".join(missing)
        if os.environ.get("LIVEMIG_E2E_REQUIRE"):
            pytest.fail(f"LIVEMIG_E2E_REQUIRE is set but {reason}")
        pytest.skip(reason)
    cluster = KindCluster(f"livemig-e2e-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("kind") / "kubeconfig")
    try:
        cluster.create(KIND_CONFIG, wait_s=KIND_READY_S)
        yield Kubectl(cluster.kubeconfig)
    finally:
        cluster.delete()


@pytest.fixture(scope="session")
def kubevirt(kind_cluster: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """KubeVirt (the pinned release, from its release URLs) with software emulation, waited for until Available."""
    work = tmp_path_factory.mktemp("kubevirt")
    operator = work / "kubevirt-operator.yaml"
    download(kv.OPERATOR_MANIFEST_URL, operator, sha256=kv.OPERATOR_MANIFEST_SHA256)
    cr = kubevirt_cr_for_emulation(yaml.safe_load(download(kv.CR_MANIFEST_URL, work / "kubevirt-cr.yaml")))
    k = kind_cluster
    k.run("create", "-f", str(operator), timeout_s=300)  # KubeVirt's guide uses create (its CRDs are large)
    k.wait("crd/kubevirts.kubevirt.io", condition="condition=Established", timeout_s=120)
    k.wait(
        "deployment/virt-operator",
        condition="condition=Available",
        timeout_s=KUBEVIRT_OPERATOR_READY_S,
        namespace=kv.KUBEVIRT_NAMESPACE,
    )
    k.create(cr)
    k.wait(
        f"kubevirt/{kv.KUBEVIRT_CR_NAME}",
        condition="condition=Available",
        timeout_s=KUBEVIRT_AVAILABLE_S,
        namespace=kv.KUBEVIRT_NAMESPACE,
    )
    return k


@pytest.fixture(scope="session")
def e2e_namespace(kind_cluster: Kubectl) -> str:
    name = "livemig-e2e"
    kind_cluster.run("create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def cirros_vmi(kubevirt: Kubectl, e2e_namespace: str) -> str:
    """A running, live-migratable cirros VMI (labelled for the KubeVirt MigrationPolicy tests); returns its name."""
    name = "cirros"
    kubevirt.create(vmi_manifest(name, e2e_namespace, {"app": "cirros", "livemig.io/e2e": "fidelity"}))
    for condition in ("condition=Ready", "condition=LiveMigratable"):
        kubevirt.wait(f"vmi/{name}", condition=condition, timeout_s=VMI_READY_S, namespace=e2e_namespace)
    return name
