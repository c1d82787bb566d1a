"""What can be checked of the e2e suite without Docker: the kind config, the skip logic, the manifests it builds, and
that every check it applies to real KubeVirt objects passes on a right object and fails on a wrong one.

Not marked e2e: runs in the default suite.  Reference objects: hack/kubevirt-crds/examples (a migrated VMI and its
succeeded VMIM, as KubeVirt leaves them).
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Mapping, Sequence
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
from .harness import (
    KIND_CONFIG,
    REPO_ROOT,
    check_digest,
    kind_node_roles,
    kubevirt_cr_for_emulation,
    missing_prerequisites,
    parse_kind_version,
    vmi_manifest,
    vmim_manifest,
)

EXAMPLES = REPO_ROOT / "hack" / "kubevirt-crds" / "examples"
UID = "5f0b5d2e-0000-4000-8000-000000000001"  # the migration in the examples


def example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / name).read_text()))


# --- kind-config.yaml -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kind_config() -> dict[str, Any]:
    return dict(yaml.safe_load(KIND_CONFIG.read_text()))


def test_kind_config_is_a_kind_cluster_config(kind_config: Mapping[str, Any]) -> None:
    assert (kind_config["kind"], kind_config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")


def test_kind_config_has_one_control_plane_and_two_workers(kind_config: Mapping[str, Any]) -> None:
    assert sorted(kind_node_roles(kind_config)) == ["control-plane", "worker", "worker"]


def test_kind_nodes_share_an_image_in_kubevirts_supported_range(kind_config: Mapping[str, Any]) -> None:
    images = {node["image"] for node in kind_config["nodes"]}
    assert len(images) == 1, images
    (image,) = images
    assert image.startswith("kindest/node:v1.")
    minor = int(image.split(":v1.")[1].split(".")[0])
    assert minor in kv.KUBERNETES_MINORS, f"{image}: KubeVirt {kv.KUBEVIRT_VERSION} supports 1.{kv.KUBERNETES_MINORS}"


def test_kind_workers_carry_the_same_labels(kind_config: Mapping[str, Any]) -> None:
    """A migration needs a second node the VMI may go to: both workers must look alike to selectors."""
    workers = [node for node in kind_config["nodes"] if node["role"] == "worker"]
    assert workers[0].get("labels") == workers[1].get("labels")


# --- prerequisites ----------------------------------------------------------------------------------------------------


def fake_tools(
    present: Sequence[str], *, docker_info: tuple[int, str, str] = (0, "28.2.2\n", ""), kind: str = "kind v0.30.0"
) -> tuple[Any, Any]:
    def which(tool: str) -> str | None:
        return f"/usr/bin/{tool}" if tool in present else None

    def run(argv: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        if argv[0] == "docker":
            code, out, err = docker_info
            return subprocess.CompletedProcess(list(argv), code, out, err)
        return subprocess.CompletedProcess(list(argv), 0, f"{kind} go1.24.6 linux/amd64\n", "")

    return which, run


def test_all_prerequisites_present_means_nothing_missing() -> None:
    which, run = fake_tools(["docker", "kind", "kubectl"])
    assert missing_prerequisites(which, run) == []


def test_docker_cli_without_an_engine_is_reported_with_dockers_own_words() -> None:
    refused = (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")
    which, run = fake_tools(["docker", "kind", "kubectl"], docker_info=refused)
    (problem,) = missing_prerequisites(which, run)
    assert problem.startswith("no Docker engine")
    assert "Cannot connect to the Docker daemon" in problem


def test_every_missing_tool_is_reported() -> None:
    which, run = fake_tools([])
    assert missing_prerequisites(which, run) == [
        "docker CLI not found on PATH",
        "kind not found on PATH (need >= v0.30.0)",
        "kubectl not found on PATH",
    ]


def test_a_kind_older_than_the_node_image_is_reported() -> None:
    which, run = fake_tools(["docker", "kind", "kubectl"], kind="kind v0.29.0")
    (problem,) = missing_prerequisites(which, run)
    assert "kind >= v0.30.0" in problem


@pytest.mark.parametrize(
    ("text", "version"),
    [("kind v0.30.0 go1.24.6 linux/amd64", (0, 30, 0)), ("kind v1.2.3-alpha", (1, 2, 3)), ("garbage", None)],
)
def test_parse_kind_version(text: str, version: tuple[int, int, int] | None) -> None:
    assert parse_kind_version(text) == version


# --- downloads and manifests ------------------------------------------------------------------------------------------


def test_a_download_with_another_digest_is_refused() -> None:
    with pytest.raises(ValueError, match=r"sha256 .* != pinned"):
        check_digest(b"not the operator manifest", kv.OPERATOR_MANIFEST_SHA256, what="kubevirt-operator.yaml")


def test_a_download_with_the_pinned_digest_passes() -> None:
    empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    check_digest(b"", empty_sha256, what="empty")


def test_release_urls_and_image_use_the_pinned_version() -> None:
    for text in (kv.OPERATOR_MANIFEST_URL, kv.CR_MANIFEST_URL, kv.CONTAINER_DISK_IMAGE):
        assert kv.KUBEVIRT_VERSION in text


def test_kubevirt_cr_gets_software_emulation_and_keeps_the_rest() -> None:
    release_cr = {  # the shape of the release's kubevirt-cr.yaml
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": {"name": "kubevirt", "namespace": "kubevirt"},
        "spec": {"configuration": {"developerConfiguration": {"featureGates": []}}, "imagePullPolicy": "IfNotPresent"},
    }
    original = copy.deepcopy(release_cr)

    cr = kubevirt_cr_for_emulation(release_cr)

    assert cr["spec"]["configuration"]["developerConfiguration"] == {"featureGates": [], "useEmulation": True}
    assert cr["spec"]["imagePullPolicy"] == "IfNotPresent"
    assert release_cr == original


def test_kubevirt_cr_without_configuration_gets_emulation() -> None:
    cr = kubevirt_cr_for_emulation({"kind": "KubeVirt", "metadata": {"name": "kubevirt"}, "spec": {}})
    assert cr["spec"]["configuration"]["developerConfiguration"]["useEmulation"] is True


def test_something_other_than_the_kubevirt_cr_is_refused() -> None:
    with pytest.raises(ValueError, match="not the KubeVirt CR"):
        kubevirt_cr_for_emulation({"kind": "Namespace", "metadata": {"name": "kubevirt"}})


def test_vmi_is_live_migratable_by_construction() -> None:
    """masquerade on the pod network and a containerDisk: KubeVirt's LiveMigratable checks pass (kubevirt.md §2.2)."""
    spec = vmi_manifest("v", "ns", {"a": "b"})["spec"]
    (interface,) = spec["domain"]["devices"]["interfaces"]
    assert "masquerade" in interface
    assert all("containerDisk" in volume for volume in spec["volumes"])
    assert spec["volumes"][0]["containerDisk"]["image"] == kv.CONTAINER_DISK_IMAGE


# --- the checks against KubeVirt's objects ----------------------------------------------------------------------------


def test_kubevirt_messages_and_rules() -> None:
    assert kv.in_flight_denial("u-1", "vm-1") == (
        'admission webhook "migration-create-validator.kubevirt.io" denied the request: in-flight migration detected. '
        "Active migration job (u-1) is currently already in progress for VMI vm-1."
    )
    assert not kv.v18_records_policy({"selectors": {"virtualMachineInstanceSelector": {"a": "b"}}})
    assert kv.v18_records_policy({"allowAutoConverge": False})  # set to false is still set


def test_phase_history_of_a_succeeded_vmim_passes() -> None:
    assert phase_history_problems(example("vmim.yaml")) == []


def _with_history(phases: Sequence[tuple[str, str]]) -> dict[str, Any]:
    entries = [{"phase": p, "phaseTransitionTimestamp": t} for p, t in phases]
    return {"status": {"phaseTransitionTimestamps": entries}}


def test_phase_history_problems_found() -> None:
    ok = [(p, f"2026-11-27T11:48:5{i}Z") for i, p in enumerate(kv.PHASES_TO_SUCCESS)]
    repeated = [*ok[:2], ("Pending", "2026-11-27T11:48:59Z"), *ok[2:]]
    missing = [entry for entry in ok if entry[0] != "TargetReady"]
    backwards = [*ok[:-1], ("Succeeded", "2026-11-27T11:00:00Z")]
    assert phase_history_problems(_with_history(ok)) == []
    assert any("more than once" in p for p in phase_history_problems(_with_history(repeated)))
    assert phase_history_problems(_with_history(missing))
    assert any("back in time" in p for p in phase_history_problems(_with_history(backwards)))
    assert phase_history_problems({"status": {}})


@pytest.mark.parametrize(
    ("observed", "ok"),
    [
        (["", "Pending", "Pending", "Scheduling", "Running", "Succeeded"], True),
        (list(kv.PHASES_TO_SUCCESS), True),
        (["Running", "Pending", "Succeeded"], False),
        (["Pending", "Running", "Pending", "Succeeded"], False),
        (["Pending", "Running"], False),
        (["Pending", "Failed"], False),
        ([], False),
    ],
)
def test_observed_phases(observed: list[str], ok: bool) -> None:
    assert (observed_phase_problems(observed) == []) is ok


def test_migrated_vmi_passes() -> None:
    assert migrated_vmi_problems(example("vmi.yaml"), vmim_uid=UID, source_node="node-01") == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda vmi: vmi["status"].update(nodeName="node-01"), "status.nodeName"),
        (lambda vmi: vmi["metadata"]["labels"].update({kv.NODE_NAME_LABEL: "node-01"}), kv.NODE_NAME_LABEL),
        (lambda vmi: vmi["status"]["migrationState"].pop("endTimestamp"), "endTimestamp"),
        (lambda vmi: vmi["status"]["migrationState"].update(completed=False), "completed"),
        (lambda vmi: vmi["status"]["migrationState"].update(failed=True), "failed"),
        (lambda vmi: vmi["status"]["migrationState"].update(mode="PostCopy"), "mode"),
        (lambda vmi: vmi["status"]["migrationState"].update(migrationUid="other"), "migrationUid"),
        (lambda vmi: vmi["status"]["migrationState"].update(targetNode="node-01"), "targetNode"),
        (lambda vmi: vmi["status"]["migrationState"].update(endTimestamp="2026-11-27T11:00:00Z"), "before"),
    ],
)
def test_migrated_vmi_problems_found(change: Any, expected: str) -> None:
    vmi = example("vmi.yaml")
    change(vmi)
    problems = migrated_vmi_problems(vmi, vmim_uid=UID, source_node="node-01")
    assert any(expected in p for p in problems), problems


def _final_vmim() -> dict[str, Any]:
    vmim = example("vmim.yaml")
    vmim["metadata"]["uid"] = UID
    vmim["metadata"].pop("finalizers")  # virt-controller removes it once final
    return vmim


def test_final_vmim_passes() -> None:
    assert final_vmim_problems(_final_vmim(), example("vmi.yaml")) == []


def test_final_vmim_problems_found() -> None:
    vmi = example("vmi.yaml")
    with_finalizer = _final_vmim()
    with_finalizer["metadata"]["finalizers"] = [kv.MIGRATION_FINALIZER]
    not_copied = _final_vmim()
    not_copied["status"].pop("migrationState")
    unlabelled = _final_vmim()
    unlabelled["metadata"]["labels"] = {}
    assert any("still present" in p for p in final_vmim_problems(with_finalizer, vmi))
    assert any("migrationUid" in p for p in final_vmim_problems(not_copied, vmi))
    assert any(kv.VMI_NAME_LABEL in p for p in final_vmim_problems(unlabelled, vmi))


def test_admitted_vmim() -> None:
    admitted = vmim_manifest("m", "ns", "vm-1")
    assert len(admitted_vmim_problems(admitted)) == 2  # neither label nor finalizer before the webhook
    admitted["metadata"]["labels"] = {kv.VMI_NAME_LABEL: "vm-1"}
    admitted["metadata"]["finalizers"] = [kv.MIGRATION_FINALIZER]
    assert admitted_vmim_problems(admitted) == []


def test_policy_recorded_when_it_sets_a_field() -> None:
    spec = {"allowPostCopy": True, "completionTimeoutPerGiB": 1}
    vmi = example("vmi.yaml")  # recorded livemig-post-copy with allowPostCopy and completionTimeoutPerGiB 1
    assert policy_record_problems(vmi, policy_name="livemig-post-copy", policy_spec=spec) == []
    assert policy_record_problems(vmi, policy_name="another", policy_spec=spec)
    assert policy_record_problems(vmi, policy_name="livemig-post-copy", policy_spec={"completionTimeoutPerGiB": 2})


def test_policy_setting_no_field_is_not_recorded() -> None:
    recorded = example("vmi.yaml")
    assert policy_record_problems(recorded, policy_name="livemig-post-copy", policy_spec={})
    recorded["status"]["migrationState"].pop("migrationPolicyName")  # the configuration stays: v1.8 always writes it
    assert policy_record_problems(recorded, policy_name="livemig-post-copy", policy_spec={}) == []
