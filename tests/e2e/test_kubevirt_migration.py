"""End to end on kind with real KubeVirt: livemig's CRD and example policies, and the KubeVirt behaviour the simulator
claims to reproduce (docs/simulator.md; kubevirt.md §1-2, §8): phases and their timestamps, the VMI's migrationState
and node, the in-flight refusal, and KubeVirt MigrationPolicy recording under v1.8's rule.

Needs Docker, kind and kubectl; skipped otherwise (tests/e2e/conftest.py).  Run: `pytest -m e2e tests/e2e`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from . import kubevirt_expectations as kv
from .checks import (
    admitted_vmim_problems,
    final_vmim_problems,
    migrated_vmi_problems,
    observed_phase_problems,
    phase_history_problems,
    policy_record_problems,
)
from .harness import REPO_ROOT, Kubectl, PhaseWatch, kv_migration_policy_manifest, vmim_manifest, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

MIGRATION_S = 900  # TCG guest, target pod pulling the launcher and disk images on the other worker
SETTLE_S = 120  # for virt-controller's follow-up writes after the final phase

VMI_SELECTOR = {"livemig.io/e2e": "fidelity"}  # on the cirros VMI (conftest.cirros_vmi)


@dataclass(frozen=True)
class Migration:
    source_node: str
    observed_phases: list[str]
    vmim: dict[str, Any]
    vmi: dict[str, Any]


def migrate(k: Kubectl, namespace: str, vmi: str, vmim_name: str) -> Migration:
    """Create a VMIM for `vmi` and follow it to a final phase; fails unless it Succeeded."""
    source = k.get("-n", namespace, "vmi", vmi)["status"]["nodeName"]
    with PhaseWatch(k, namespace, vmim_name) as watch:
        k.create(vmim_manifest(vmim_name, namespace, vmi))
        final = watch.wait_final(MIGRATION_S)
    vmi_obj = k.get("-n", namespace, "vmi", vmi)
    assert final == "Succeeded", f"{vmim_name} ended {final}: {vmi_obj['status'].get('migrationState')}"
    return Migration(source, watch.phases, k.get("-n", namespace, "vmim", vmim_name), vmi_obj)


def assert_kubevirt_migrated(k: Kubectl, namespace: str, vmi: str, migration: Migration) -> dict[str, Any]:
    """The checks every successful migration must pass; returns the VMI as finally read."""
    assert not phase_history_problems(migration.vmim), phase_history_problems(migration.vmim)
    assert not observed_phase_problems(migration.observed_phases), observed_phase_problems(migration.observed_phases)
    uid = migration.vmim["metadata"]["uid"]
    state: dict[str, dict[str, Any]] = {}

    def vmi_problems() -> list[str]:
        state["vmi"] = k.get("-n", namespace, "vmi", vmi)
        return migrated_vmi_problems(state["vmi"], vmim_uid=uid, source_node=migration.source_node)

    wait_until(vmi_problems, timeout_s=SETTLE_S, what=f"VMI {vmi} after migration {uid}")

    def vmim_problems() -> list[str]:
        return final_vmim_problems(k.get("-n", namespace, "vmim", migration.vmim["metadata"]["name"]), state["vmi"])

    wait_until(vmim_problems, timeout_s=SETTLE_S, what=f"final VMIM {uid}")
    return state["vmi"]


@pytest.fixture
def kv_migration_policy(kubevirt: Kubectl) -> Iterator[list[str]]:
    """Names of KubeVirt MigrationPolicies a test creates; deleted afterwards (they are cluster-scoped)."""
    names: list[str] = []
    yield names
    for name in names:
        kubevirt.run("delete", "migrationpolicies.migrations.kubevirt.io", name, "--ignore-not-found")


def test_livemig_crd_and_example_policies_are_accepted(kind_cluster: Kubectl) -> None:
    crds = sorted((REPO_ROOT / "crds").glob("*.yaml"))
    for crd in crds:
        kind_cluster.run("apply", "--server-side", "-f", str(crd))
    kind_cluster.wait("crd/migrationpolicies.livemig.io", condition="condition=Established", timeout_s=120)

    examples = sorted((REPO_ROOT / "examples" / "policies").glob("*.yaml"))
    expected = sorted(
        f"migrationpolicy.livemig.io/{doc['metadata']['name']}"
        for path in examples
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    )
    created = kind_cluster.run(
        "create", "--validate=strict", "-f", str(REPO_ROOT / "examples" / "policies"), "-o", "name"
    )
    assert sorted(created.stdout.split()) == expected
    assert "Warning" not in created.stderr, created.stderr


def test_second_migration_is_refused_while_one_is_in_flight(
    kubevirt: Kubectl, e2e_namespace: str, cirros_vmi: str
) -> None:
    ns = e2e_namespace
    # A target no node satisfies keeps the first migration in Scheduling (target pod unschedulable, KubeVirt fails it
    # only after 300 s), so "in flight" holds for the whole test instead of racing a fast migration.
    stuck = vmim_manifest("e2e-in-flight", ns, cirros_vmi, added_node_selector={"livemig.io/e2e-no-such-node": "true"})
    kubevirt.create(stuck)
    try:
        kubevirt.wait(
            "vmim/e2e-in-flight", condition="jsonpath={.status.phase}=Scheduling", timeout_s=300, namespace=ns
        )
        first = kubevirt.get("-n", ns, "vmim", "e2e-in-flight")
        assert not admitted_vmim_problems(first), admitted_vmim_problems(first)

        second = kubevirt.create(vmim_manifest("e2e-second", ns, cirros_vmi), check=False)

        assert second.returncode != 0, "a second VMIM for the same VMI was admitted"
        assert kv.in_flight_denial(first["metadata"]["uid"], cirros_vmi) in second.stderr, second.stderr
        still = kubevirt.get("-n", ns, "vmim", "e2e-in-flight")["status"]["phase"]
        assert still not in kv.FINAL_PHASES, f"the first VMIM finished ({still}); the refusal proves nothing"
        assert kubevirt.run("get", "-n", ns, "vmim", "e2e-second", check=False).returncode != 0
    finally:
        kubevirt.run("delete", "-n", ns, "vmim", "e2e-in-flight", "--ignore-not-found", "--timeout=300s", timeout_s=330)


def test_migration_phases_and_vmi_state(
    kubevirt: Kubectl, e2e_namespace: str, cirros_vmi: str, kv_migration_policy: list[str]
) -> None:
    # A policy that matches the VMI but sets no field: v1.8 records nothing for it.
    inert: dict[str, Any] = {}
    kubevirt.create(kv_migration_policy_manifest("e2e-inert", VMI_SELECTOR, **inert))
    kv_migration_policy.append("e2e-inert")

    migration = migrate(kubevirt, e2e_namespace, cirros_vmi, "e2e-migrate-1")

    vmi = assert_kubevirt_migrated(kubevirt, e2e_namespace, cirros_vmi, migration)
    problems = policy_record_problems(vmi, policy_name="e2e-inert", policy_spec=inert)
    assert not problems, problems


def test_kv_migration_policy_matched_by_vmi_labels_is_recorded(
    kubevirt: Kubectl, e2e_namespace: str, cirros_vmi: str, kv_migration_policy: list[str]
) -> None:
    fields = {"allowAutoConverge": True}  # sets a field, so v1.8 records the policy
    kubevirt.create(kv_migration_policy_manifest("e2e-auto-converge", VMI_SELECTOR, **fields))
    kv_migration_policy.append("e2e-auto-converge")

    migration = migrate(kubevirt, e2e_namespace, cirros_vmi, "e2e-migrate-2")

    vmi = assert_kubevirt_migrated(kubevirt, e2e_namespace, cirros_vmi, migration)
    problems = policy_record_problems(vmi, policy_name="e2e-auto-converge", policy_spec=fields)
    assert not problems, problems
