"""End to end on kind with real KubeVirt: livemig's CRD and example policies, and the KubeVirt behaviour the simulator
claims to reproduce (docs/simulator.md; kubevirt.md §1-2, §8): phases and their timestamps, the VMI's migrationState
and node, the in-flight refusal, and KubeVirt MigrationPolicy recording under v1.8's rule.

Needs Docker, kind and kubectl; skipped otherwise (tests/e2e/conftest.py).  Run: `pytest -m e2e tests/e2e`.
The same scenarios run against the simulator in test_simulator_fidelity.py.
"""

from __future__ import annotations

import pytest
import yaml

from .fidelity import Deadlines, check_in_flight_refusal, check_migration_with_policy
from .harness import REPO_ROOT, Kubectl

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

# A TCG guest; the target pod pulls the launcher and disk images on the other worker first.
KIND = Deadlines(scheduling_s=300, migration_s=900, settle_s=120)
VMI_SELECTOR = {"livemig.io/e2e": "fidelity"}  # on the cirros VMI (conftest.cirros_vmi)


def test_livemig_crd_and_example_policies_are_accepted(kind_cluster: Kubectl) -> None:
    for crd in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        kind_cluster.run("apply", "--server-side", "-f", str(crd))
    kind_cluster.wait("crd/migrationpolicies.livemig.io", condition="condition=Established", timeout_s=120)

    examples = sorted((REPO_ROOT / "examples" / "policies").glob("*.yaml"))
    expected = sorted(
        f"migrationpolicy.livemig.io/{doc['metadata']['name']}"
        for path in examples
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    )
    policies = str(REPO_ROOT / "examples" / "policies")
    created = kind_cluster.run("create", "--validate=strict", "-f", policies, "-o", "name")
    assert sorted(created.stdout.split()) == expected
    assert "Warning" not in created.stderr, created.stderr


def test_second_migration_is_refused_while_one_is_in_flight(
    kubevirt: Kubectl, e2e_namespace: str, cirros_vmi: str
) -> None:
    check_in_flight_refusal(kubevirt, e2e_namespace, cirros_vmi, KIND)


def test_migration_with_a_policy_that_sets_nothing(kubevirt: Kubectl, e2e_namespace: str, cirros_vmi: str) -> None:
    """Phases, timestamps, migrationState and node; a matching policy that sets no field is not recorded (v1.8)."""
    check_migration_with_policy(
        kubevirt,
        e2e_namespace,
        cirros_vmi,
        vmim_name="e2e-migrate-1",
        policy_name="e2e-inert",
        vmi_selector=VMI_SELECTOR,
        policy_fields={},
        deadlines=KIND,
    )


def test_kv_migration_policy_matched_by_vmi_labels_is_recorded(
    kubevirt: Kubectl, e2e_namespace: str, cirros_vmi: str
) -> None:
    """The same checks on the way back, with a policy that sets a field: its name and configuration are recorded."""
    check_migration_with_policy(
        kubevirt,
        e2e_namespace,
        cirros_vmi,
        vmim_name="e2e-migrate-2",
        policy_name="e2e-auto-converge",
        vmi_selector=VMI_SELECTOR,
        policy_fields={"allowAutoConverge": True},
        deadlines=KIND,
    )
