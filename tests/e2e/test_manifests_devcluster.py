"""The e2e suite's pieces that work without Docker, on the local API server (devcluster) with the KubeVirt stand-in
CRDs (hack/kubevirt-crds):

- the objects it creates pass strict validation (a misspelt field at a modelled level is caught; the stand-ins are
  written from KubeVirt's types, not copied from KubeVirt, so this is a first check, not the real one);
- its kubectl helpers (create, wait on a jsonpath, the phase watch) work against a real API server, with the VMIM's
  status written here by hand in KubeVirt's phase order (no KubeVirt runs here).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from livemig.devcluster import DevCluster

from . import kubevirt_expectations as kv
from .checks import observed_phase_problems
from .harness import (
    Kubectl,
    PhaseWatch,
    kubevirt_cr_for_emulation,
    kv_migration_policy_manifest,
    vmi_manifest,
    vmim_manifest,
)

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


@pytest.mark.usefixtures("kubevirt_crds")
def test_phase_watch_follows_a_vmim_to_its_final_phase(devcluster: DevCluster, namespace: str) -> None:
    k = Kubectl(devcluster.kubeconfig, binary=str(devcluster.bin_dir / "kubectl"))
    with PhaseWatch(k, namespace, "watched") as watch:
        k.create(vmim_manifest("watched", namespace, "cirros"))
        k.create(vmim_manifest("other", namespace, "cirros"))  # not watched: the field selector keeps it out
        for phase in kv.PHASES_TO_SUCCESS:
            k.run("patch", "-n", namespace, "vmim", "watched", "--subresource=status", "--type=merge",
                  "-p", json.dumps({"status": {"phase": phase}}))  # fmt: skip
            k.wait("vmim/watched", condition=f"jsonpath={{.status.phase}}={phase}", timeout_s=30, namespace=namespace)
        final = watch.wait_final(60)

    assert final == "Succeeded"
    assert observed_phase_problems(watch.phases) == []
    assert k.get("-n", namespace, "vmim", "watched")["status"]["phase"] == "Succeeded"


@pytest.mark.usefixtures("kubevirt_crds")
def test_phase_watch_gives_up_at_its_deadline(devcluster: DevCluster, namespace: str) -> None:
    k = Kubectl(devcluster.kubeconfig, binary=str(devcluster.bin_dir / "kubectl"))
    with PhaseWatch(k, namespace, "stays-pending") as watch:
        k.create(vmim_manifest("stays-pending", namespace, "cirros"))
        with pytest.raises(AssertionError, match="no final phase within 2 s"):
            watch.wait_final(2)
