"""The fidelity scenarios, written once against any cluster where something plays KubeVirt: real KubeVirt on kind
(test_kubevirt_migration.py, e2e) and livemig's simulator on the local API server (test_simulator_fidelity.py).
Both must pass the same checks; that is what "the simulator reproduces KubeVirt" means here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import kubevirt_expectations as kv
from .checks import (
    admitted_vmim_problems,
    final_vmim_problems,
    migrated_vmi_problems,
    observed_phase_problems,
    phase_history_problems,
    policy_record_problems,
)
from .harness import Kubectl, PhaseWatch, kv_migration_policy_manifest, vmim_manifest, wait_until


@dataclass(frozen=True)
class Deadlines:
    """Seconds to wait for each condition (a TCG guest on kind needs far more than the simulator)."""

    scheduling_s: int
    migration_s: float
    settle_s: float  # for follow-up writes after the final phase (VMI node, VMIM finalizer and migrationState)
    delete_s: int = 300


@dataclass(frozen=True)
class Migration:
    source_node: str
    observed_phases: list[str]
    vmim: dict[str, Any]
    vmi: dict[str, Any]


def check_in_flight_refusal(
    k: Kubectl, namespace: str, vmi: str, deadlines: Deadlines, *, webhook: str = kv.CREATE_WEBHOOK
) -> None:
    """A second VMIM for a VMI whose first VMIM is unfinished is refused with KubeVirt's message (as worded by the
    API server for the validating webhook named `webhook`)."""
    # A target no node satisfies keeps the first migration in Scheduling (target pod unschedulable; KubeVirt fails it
    # only after 300 s), so "in flight" holds for the whole check instead of racing a fast migration.
    stuck = vmim_manifest("e2e-in-flight", namespace, vmi, added_node_selector={"livemig.io/e2e-no-such-node": "x"})
    k.create(stuck)
    try:
        scheduling = "jsonpath={.status.phase}=Scheduling"
        k.wait("vmim/e2e-in-flight", condition=scheduling, timeout_s=deadlines.scheduling_s, namespace=namespace)
        first = k.get("-n", namespace, "vmim", "e2e-in-flight")
        assert not admitted_vmim_problems(first), admitted_vmim_problems(first)

        second = k.create(vmim_manifest("e2e-second", namespace, vmi), check=False)

        assert second.returncode != 0, "a second VMIM for the same VMI was admitted"
        expected = kv.in_flight_denial(first["metadata"]["uid"], vmi, webhook=webhook)
        assert expected in second.stderr, second.stderr
        still = k.get("-n", namespace, "vmim", "e2e-in-flight")["status"]["phase"]
        assert still not in kv.FINAL_PHASES, f"the first VMIM finished ({still}); the refusal proves nothing"
        assert k.run("get", "-n", namespace, "vmim", "e2e-second", check=False).returncode != 0
    finally:
        timeout = f"--timeout={deadlines.delete_s}s"
        k.run("delete", "-n", namespace, "vmim", "e2e-in-flight", "--ignore-not-found", timeout, timeout_s=330)


def migrate(k: Kubectl, namespace: str, vmi: str, vmim_name: str, deadlines: Deadlines) -> Migration:
    """Create a VMIM for `vmi` and follow it to a final phase; fails unless it Succeeded."""
    source = k.get("-n", namespace, "vmi", vmi)["status"]["nodeName"]
    with PhaseWatch(k, namespace, vmim_name) as watch:
        k.create(vmim_manifest(vmim_name, namespace, vmi))
        final = watch.wait_final(deadlines.migration_s)
    vmi_obj = k.get("-n", namespace, "vmi", vmi)
    assert final == "Succeeded", f"{vmim_name} ended {final}: {vmi_obj['status'].get('migrationState')}"
    return Migration(source, watch.phases, k.get("-n", namespace, "vmim", vmim_name), vmi_obj)


def check_migrated(k: Kubectl, namespace: str, vmi: str, migration: Migration, deadlines: Deadlines) -> dict[str, Any]:
    """What every successful migration must show; returns the VMI as finally read."""
    assert not phase_history_problems(migration.vmim), phase_history_problems(migration.vmim)
    assert not observed_phase_problems(migration.observed_phases), observed_phase_problems(migration.observed_phases)
    uid = migration.vmim["metadata"]["uid"]
    seen: dict[str, dict[str, Any]] = {}

    def vmi_problems() -> list[str]:
        seen["vmi"] = k.get("-n", namespace, "vmi", vmi)
        return migrated_vmi_problems(seen["vmi"], vmim_uid=uid, source_node=migration.source_node)

    wait_until(vmi_problems, timeout_s=deadlines.settle_s, what=f"VMI {vmi} after migration {uid}")

    def vmim_problems() -> list[str]:
        return final_vmim_problems(k.get("-n", namespace, "vmim", migration.vmim["metadata"]["name"]), seen["vmi"])

    wait_until(vmim_problems, timeout_s=deadlines.settle_s, what=f"final VMIM {uid}")
    return seen["vmi"]


def check_migration_with_policy(
    k: Kubectl,
    namespace: str,
    vmi: str,
    *,
    vmim_name: str,
    policy_name: str,
    vmi_selector: Mapping[str, str],
    policy_fields: Mapping[str, Any],
    deadlines: Deadlines,
) -> None:
    """Migrate `vmi` while a KubeVirt MigrationPolicy selects it by label; check the migration and what was recorded
    of the policy (v1.8: only a policy that sets a field is recorded)."""
    k.create(kv_migration_policy_manifest(policy_name, vmi_selector, **policy_fields))
    try:
        migration = migrate(k, namespace, vmi, vmim_name, deadlines)
        migrated = check_migrated(k, namespace, vmi, migration, deadlines)
        problems = policy_record_problems(migrated, policy_name=policy_name, policy_spec=policy_fields)
        assert not problems, problems
    finally:
        k.run("delete", "migrationpolicies.migrations.kubevirt.io", policy_name, "--ignore-not-found")
