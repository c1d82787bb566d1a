"""What real KubeVirt does, as the end-to-end suite expects it: pinned release, messages, phases and rules.

The one place for these facts in tests/e2e; nothing outside this directory imports it (the simulator keeps its own
copy of the rules in livemig.sim, which these tests check against the real thing).  Sources: the project's reference
notes (../shared/reference/kubevirt.md §1-2, §4.3, §8) and KubeVirt's code, cited per item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# --- the pinned release -------------------------------------------------------------------------------------------

#: The newest v1.8 patch release seen in public material (the simulator mimics v1.8, docs/simulator.md).
KUBEVIRT_VERSION: Final = "v1.8.4"
#: Kubernetes minors (1.x) the suite runs KubeVirt v1.8 on: v1.8 was released aligned with Kubernetes 1.35 (release
#: announcement, March 2026); the two minors before it are assumed supported as for earlier releases (not verified
#: against KubeVirt's support matrix here).  kind-config.yaml's nodes are 1.34.
KUBERNETES_MINORS: Final = (33, 34, 35)
RELEASE_URL: Final = f"https://github.com/kubevirt/kubevirt/releases/download/{KUBEVIRT_VERSION}"
#: The URLs KubeVirt's installation guide tells users to apply.
OPERATOR_MANIFEST_URL: Final = f"{RELEASE_URL}/kubevirt-operator.yaml"
CR_MANIFEST_URL: Final = f"{RELEASE_URL}/kubevirt-cr.yaml"
#: sha256 of kubevirt-operator.yaml v1.8.4 as recorded by two unrelated public projects (a Nix fetchurl pin and a
#: vendored-manifest digest check); not downloaded here (no internet).  A release asset re-uploaded in place fails
#: the suite loudly instead of testing something else.  The CR manifest has no recorded digest; it is a few lines
#: and the suite checks its kind and name before using it.
OPERATOR_MANIFEST_SHA256: Final = "d1d8264eec5b802c122bec6c54d8c3b11e119ee2a5c75602aaa8b53ea3857eda"
#: A small guest whose image KubeVirt publishes with every release, at the same tag.
CONTAINER_DISK_IMAGE: Final = f"quay.io/kubevirt/cirros-container-disk-demo:{KUBEVIRT_VERSION}"
KUBEVIRT_NAMESPACE: Final = "kubevirt"
KUBEVIRT_CR_NAME: Final = "kubevirt"

# --- VirtualMachineInstanceMigration ------------------------------------------------------------------------------

#: Phases of a successful migration, in order; phaseTransitionTimestamps gets one entry at the first entry into each
#: phase (controller.SetVMIMigrationPhaseTransitionTimestamp), and the controller moves one phase per reconcile.
PHASES_TO_SUCCESS: Final = (
    "Pending",
    "Scheduling",
    "Scheduled",
    "PreparingTarget",
    "TargetReady",
    "Running",
    "Succeeded",
)
FINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})

#: Added by virt-api's mutating webhook to every VMIM (migration-create-mutator.go); virt-controller removes the
#: finalizer once the VMIM is final, in the update that copies the VMI's migrationState in (migration.go, updateStatus).
VMI_NAME_LABEL: Final = "kubevirt.io/vmi-name"
MIGRATION_FINALIZER: Final = "kubevirt.io/migrationJobFinalize"

#: virt-api's validating webhook for VMIM creation and its refusal of a second unfinished VMIM for the same VMI
#: (migration-create-admitter.go, ensureNoConflict; KubeVirt's own functional tests match the same prefix).
CREATE_WEBHOOK: Final = "migration-create-validator.kubevirt.io"


def in_flight_denial(active_uid: str, vmi_name: str, *, webhook: str = CREATE_WEBHOOK) -> str:
    """The error kubectl prints when a VMIM is created while `active_uid` is unfinished for the same VMI.

    The API server words the prefix from the webhook's name; the rest is the admitter's message.
    """
    return (
        f'admission webhook "{webhook}" denied the request: in-flight migration detected. '
        f"Active migration job ({active_uid}) is currently already in progress for VMI {vmi_name}."
    )


# --- VirtualMachineInstance ---------------------------------------------------------------------------------------

#: Set by the target virt-handler on success, with status.nodeName (migration-target.go, finalizeMigration).
NODE_NAME_LABEL: Final = "kubevirt.io/nodeName"
#: migrationState.mode while pre-copy runs; without allowPostCopy nothing switches it (kubevirt.md §3.2).
MODE_PRE_COPY: Final = "PreCopy"

# --- KubeVirt MigrationPolicy (migrations.kubevirt.io/v1alpha1) ---------------------------------------------------

#: The policy fields that KubeVirt v1.8's MigrationPolicy.GetMigrationConfByPolicy copies onto the cluster's
#: configuration; "changed" is true only when one of them is set (maxDowntimeMs and experimental are v1.9).
V18_POLICY_CONFIG_FIELDS: Final = (
    "allowAutoConverge",
    "bandwidthPerMigration",
    "completionTimeoutPerGiB",
    "allowPostCopy",
    "allowWorkloadDisruption",
)


def v18_records_policy(policy_spec: Mapping[str, Any]) -> bool:
    """Whether v1.8's hand-off writes migrationPolicyName for a *matching* policy with this spec.

    v1.8 (virt-controller migration.go, handoffTargetPod): migrationPolicyName is set only when the matched policy
    changed the configuration, i.e. set at least one field; migrationConfiguration is always set, the cluster's when
    no policy applied (kubevirt.md §4.3).
    """
    return any(policy_spec.get(field) is not None for field in V18_POLICY_CONFIG_FIELDS)
