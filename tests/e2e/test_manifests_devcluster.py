"""The objects the e2e suite creates pass the local API server's strict validation against the KubeVirt stand-in CRDs
(hack/kubevirt-crds): catches a misspelt field at a modelled level without Docker.  The stand-ins are written from
KubeVirt's types, not copied from KubeVirt, so this is a first check, not the real one (that is the e2e run).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from livemig.devcluster import DevCluster

from .harness import kubevirt_cr_for_emulation, kv_migration_policy_manifest, vmi_manifest, vmim_manifest

pytestmark = pytest.mark.integration

RELEASE_SHAPED_CR = {
    "apiVersion": "kubevirt.io/v1",
    "kind": "KubeVirt",
    "metadata": {"name": "kubevirt"},
    "spec": {"configuration": {"developerConfiguration": {"featureGates": []}}, "imagePullPolicy": "IfNotPresent"},
}


def server_dry_run(devcluster: DevCluster, manifest: dict[str, Any]) -> None:
    result = devcluster.kubectl(
        "create", "--dry-run=server", "--validate=strict", "-f", "-", input=yaml.safe_dump(manifest), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.usefixtures("kubevirt_crds")
def test_e2e_objects_pass_strict_validation(devcluster: DevCluster, namespace: str) -> None:
    cr = kubevirt_cr_for_emulation(RELEASE_SHAPED_CR)
    cr["metadata"]["namespace"] = namespace
    objects = [
        vmi_manifest("cirros", namespace, {"app": "cirros", "livemig.io/e2e": "fidelity"}),
        vmim_manifest("e2e-in-flight", namespace, "cirros", added_node_selector={"livemig.io/e2e-no-such-node": "x"}),
        vmim_manifest("e2e-migrate-1", namespace, "cirros"),
        kv_migration_policy_manifest("e2e-inert", {"livemig.io/e2e": "fidelity"}),
        kv_migration_policy_manifest("e2e-auto-converge", {"livemig.io/e2e": "fidelity"}, allowAutoConverge=True),
        cr,
    ]
    for manifest in objects:
        server_dry_run(devcluster, manifest)


@pytest.mark.usefixtures("kubevirt_crds")
def test_a_misspelt_field_is_caught(devcluster: DevCluster, namespace: str) -> None:
    """The check above can fail: the same VMI with a typo at a modelled level is refused."""
    vmi = vmi_manifest("cirros", namespace, {})
    vmi["spec"]["domain"]["resources"]["requets"] = {"memory": "128Mi"}
    result = devcluster.kubectl(
        "create", "--dry-run=server", "--validate=strict", "-f", "-", input=yaml.safe_dump(vmi), check=False
    )
    assert result.returncode != 0
    assert "requets" in result.stderr
