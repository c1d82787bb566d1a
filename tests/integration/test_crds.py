"""The CRDs on a real kube-apiserver: livemig's MigrationPolicy and the test-only KubeVirt CRDs.

- every CRD installs and becomes Established, with the names, scope and subresources we claim;
- `kubectl explain` documents our spec;
- the bad policies of tests/data/invalid_policies.yaml are rejected (fieldValidation=Strict) naming the field, the same
  cases livemig.core.policy.parse_policy rejects offline (tests/unit/core/policy/test_invalid_policies.py);
- every example in examples/ applies cleanly, and what the server defaults parses to the same LivemigPolicy;
- KubeVirt objects keep every modelled field (nothing pruned) and misspelt fields are rejected under Strict.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.core.policy import parse_policy
from livemig.devcluster import DevCluster
from support.manifests import apply_defaults, merge_patch

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
POLICY_EXAMPLES = sorted((REPO / "examples" / "policies").glob("*.yaml"))
KUBEVIRT_EXAMPLES = REPO / "hack" / "kubevirt-crds" / "examples"
CASES_DOC = yaml.safe_load((REPO / "tests" / "data" / "invalid_policies.yaml").read_text())

EXPECTED_CRDS = {
    # name: (scope, kind, shortNames, has status subresource)
    "migrationpolicies.livemig.io": ("Cluster", "MigrationPolicy", ["lmp", "lmps"], True),
    "virtualmachineinstances.kubevirt.io": ("Namespaced", "VirtualMachineInstance", ["vmi", "vmis"], False),
    "virtualmachineinstancemigrations.kubevirt.io": (
        "Namespaced",
        "VirtualMachineInstanceMigration",
        ["vmim", "vmims"],
        True,
    ),
    "kubevirts.kubevirt.io": ("Namespaced", "KubeVirt", ["kv", "kvs"], True),
    "migrationpolicies.migrations.kubevirt.io": ("Cluster", "MigrationPolicy", None, True),
    # Kopf's peering resource, for `livemig operator run --peering` (status written as a plain field by Kopf).
    "clusterkopfpeerings.kopf.dev": ("Cluster", "ClusterKopfPeering", None, False),
}


def create_dry_run(devcluster: DevCluster, obj: dict[str, Any], namespace: str | None = None) -> Any:
    """`kubectl create --dry-run=server --validate=strict` (fieldValidation=Strict), returning the process."""
    args = ["create", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-"]
    if namespace:
        args += ["-n", namespace]
    return devcluster.kubectl(*args, input=json.dumps(obj), check=False)


def load_example(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((KUBEVIRT_EXAMPLES / name).read_text())
    assert isinstance(doc, dict)
    return doc


# --- installation ---------------------------------------------------------------------------------------------------


def test_all_crds_are_established_with_the_expected_names(
    devcluster: DevCluster, livemig_crds: list[str], kubevirt_crds: list[str]
) -> None:
    installed = {name.split("/", 1)[1] for name in livemig_crds + kubevirt_crds}
    assert installed == set(EXPECTED_CRDS)
    for name, (scope, kind, short_names, status) in EXPECTED_CRDS.items():
        crd = json.loads(devcluster.kubectl("get", "crd", name, "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", name
        assert conditions.get("NamesAccepted") == "True", name
        assert crd["spec"]["scope"] == scope
        assert crd["spec"]["names"]["kind"] == kind
        assert crd["spec"]["names"].get("shortNames") == short_names
        (version,) = crd["spec"]["versions"]
        assert ("status" in version.get("subresources", {})) is status, name


def test_crds_apply_without_warnings(devcluster: DevCluster, livemig_crds: list[str], kubevirt_crds: list[str]) -> None:
    """No deprecation or CEL warnings; CEL rules over the cost budget would have failed the install outright."""
    for path in [*sorted((REPO / "crds").glob("*.yaml")), *sorted((REPO / "hack" / "kubevirt-crds").glob("*.yaml"))]:
        result = devcluster.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(path))
        assert "Warning" not in result.stderr, f"{path.name}: {result.stderr}"


def _explain(devcluster: DevCluster, field: str, timeout_s: float = 60) -> str:
    """`kubectl explain`, once the API server has published the CRD's OpenAPI schema (it lags Established)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = devcluster.kubectl("explain", field, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return result.stdout
        time.sleep(0.5)  # polling for the published schema, with a deadline


def test_kubectl_explain_documents_the_technique(devcluster: DevCluster, livemig_crds: list[str]) -> None:
    raw = _explain(devcluster, "migrationpolicies.livemig.io.spec.technique")
    out = " ".join(raw.split())  # explain wraps descriptions
    for field in (
        "mode",
        "objective",
        "allowPostCopy",
        "allowAutoConverge",
        "maxDowntime",
        "bandwidthPerMigration",
        "completionTimeoutPerGiB",
    ):
        assert field in out
    assert "KubeVirt MigrationPolicy" in out
    mode = " ".join(_explain(devcluster, "migrationpolicies.livemig.io.spec.technique.mode").split())
    assert "Auto lets the model choose" in mode
    assert "AutoConverge" in mode


# --- livemig MigrationPolicy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", POLICY_EXAMPLES, ids=lambda p: p.name)
def test_example_policy_applies_and_server_defaults_agree_with_the_parser(
    devcluster: DevCluster, livemig_crds: list[str], path: Path
) -> None:
    manifest = yaml.safe_load(path.read_text())
    result = create_dry_run(devcluster, manifest)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    defaulted = json.loads(result.stdout)
    # The offline model of the server's defaulting (used by the unit tests) is faithful.
    crd = yaml.safe_load((REPO / "crds" / "livemig.io_migrationpolicies.yaml").read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert defaulted["spec"] == apply_defaults(spec_schema, copy.deepcopy(manifest["spec"]))
    # What the API server stored (with its defaults) is what the offline parser makes of the example.
    assert dataclasses.replace(parse_policy(defaulted), generation=None) == parse_policy(manifest)


# Documents under examples/ that are livemig file formats read by the CLI, not objects for the API server.
FILE_FORMAT_KINDS = {("livemig.io/v1alpha1", "Scenario"), ("livemig.io/v1alpha1", "ClusterSnapshot")}


def api_objects_in_examples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((REPO / "examples").rglob("*.y*ml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            is_object = isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc
            if is_object and (doc["apiVersion"], doc["kind"]) not in FILE_FORMAT_KINDS:
                found.append((f"{path.relative_to(REPO)}#{index}", doc))
    return found


def test_every_api_object_under_examples_applies_cleanly(
    devcluster: DevCluster, livemig_crds: list[str], kubevirt_crds: list[str], namespace: str
) -> None:
    objects = api_objects_in_examples()
    assert len(objects) >= len(POLICY_EXAMPLES)
    for where, doc in objects:
        result = create_dry_run(devcluster, doc, namespace)
        assert result.returncode == 0, f"{where}: {result.stderr}"


def test_base_of_the_invalid_cases_is_accepted(devcluster: DevCluster, livemig_crds: list[str]) -> None:
    result = create_dry_run(devcluster, CASES_DOC["base"])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", CASES_DOC["cases"], ids=lambda case: case["name"])
def test_invalid_policy_is_rejected_naming_the_field(
    devcluster: DevCluster, livemig_crds: list[str], case: dict[str, Any]
) -> None:
    manifest = merge_patch(CASES_DOC["base"], case["patch"])
    manifest["metadata"]["name"] = case["name"]
    result = create_dry_run(devcluster, manifest)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert case["field"] in result.stderr, result.stderr


@pytest.mark.parametrize("case", CASES_DOC["valid"], ids=lambda case: case["name"])
def test_valid_edge_case_is_accepted(devcluster: DevCluster, livemig_crds: list[str], case: dict[str, Any]) -> None:
    manifest = merge_patch(CASES_DOC["base"], case["patch"])
    manifest["metadata"]["name"] = case["name"]
    result = create_dry_run(devcluster, manifest)
    assert result.returncode == 0, result.stderr
    assert dataclasses.replace(parse_policy(json.loads(result.stdout)), generation=None) == parse_policy(manifest)


def test_policy_status_subresource_and_printer_columns(devcluster: DevCluster, livemig_crds: list[str]) -> None:
    manifest = merge_patch(CASES_DOC["base"], {"metadata": {"name": "status-check"}})
    devcluster.kubectl("create", "--validate=strict", "-f", "-", input=json.dumps(manifest))
    try:
        status = {
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Evaluating",
                        "message": "spec valid",
                        "lastTransitionTime": "2026-11-27T12:00:00Z",
                        "observedGeneration": 1,
                    }
                ],
                "lastEvaluation": {"time": "2026-11-27T12:00:00Z", "result": "Planned", "candidates": 4, "moves": 1},
                "counters": {"evaluations": 1, "migrationsStarted": 1, "migrationsSucceeded": 7},
                "currentPlan": {
                    "id": "p-1",
                    "state": "Executing",
                    "moves": [
                        {
                            "vmi": {"namespace": "prod", "name": "vm-001"},
                            "sourceNode": "node-01",
                            "targetNode": "node-02",
                            "technique": "post-copy",
                            "predictedDowntime": "40ms",
                            "state": "Running",
                        }
                    ],
                },
                "recentOutcomes": [
                    {"vmi": {"namespace": "prod", "name": "vm-000"}, "outcome": "switched-to-post-copy"}
                ],
            }
        }
        devcluster.kubectl(
            "patch",
            "migrationpolicies.livemig.io",
            "status-check",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )
        stored = json.loads(
            devcluster.kubectl("get", "migrationpolicies.livemig.io", "status-check", "-o", "json").stdout
        )
        assert stored["status"] == status["status"]  # nothing pruned
        # A status written through the main resource is ignored (status subresource).
        devcluster.kubectl(
            "patch",
            "migrationpolicies.livemig.io",
            "status-check",
            "--type=merge",
            "-p",
            json.dumps({"status": {"observedGeneration": 99}}),
        )
        again = json.loads(devcluster.kubectl("get", "lmp", "status-check", "-o", "json").stdout)
        assert again["status"]["observedGeneration"] == 1
        table = devcluster.kubectl("get", "lmp", "status-check").stdout.splitlines()
        assert table[0].split()[:6] == ["NAME", "PURPOSE", "MODE", "DRYRUN", "READY", "MIGRATED"]
        assert table[1].split()[:6] == ["status-check", "LoadBalancing", "Auto", "false", "True", "7"]
        # Status with a bad enum is rejected too.
        bad = devcluster.kubectl(
            "patch",
            "lmp",
            "status-check",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"lastEvaluation": {"result": "Great"}}}),
            check=False,
        )
        assert bad.returncode != 0
        assert "status.lastEvaluation.result" in bad.stderr
    finally:
        devcluster.kubectl("delete", "lmp", "status-check", "--wait=false", check=False)


# --- KubeVirt test CRDs ---------------------------------------------------------------------------------------------


def test_vmi_keeps_every_written_field(devcluster: DevCluster, kubevirt_crds: list[str], namespace: str) -> None:
    vmi = load_example("vmi.yaml")
    devcluster.kubectl("create", "--validate=strict", "-n", namespace, "-f", "-", input=json.dumps(vmi))
    stored = json.loads(devcluster.kubectl("get", "vmi", "vm-001", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"] == vmi["spec"]
    assert stored["status"] == vmi["status"]  # no status subresource: status is written with the object
    # Status updates go through the main resource, as virt-handler does.
    devcluster.kubectl(
        "patch",
        "vmi",
        "vm-001",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"status": {"evacuationNodeName": "node-02", "migrationState": {"mode": "PostCopy"}}}),
    )
    patched = json.loads(devcluster.kubectl("get", "vmi", "vm-001", "-n", namespace, "-o", "json").stdout)
    assert patched["status"]["evacuationNodeName"] == "node-02"
    assert patched["status"]["migrationState"]["mode"] == "PostCopy"
    table = devcluster.kubectl("get", "vmis", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE", "PHASE", "IP", "NODENAME", "READY"]
    assert table[1].split()[2:] == ["Running", "10.244.1.7", "node-02", "True"]


def test_vmim_status_subresource_keeps_every_written_field(
    devcluster: DevCluster, kubevirt_crds: list[str], namespace: str
) -> None:
    vmim = load_example("vmim.yaml")
    status = vmim.pop("status")
    vmim["metadata"]["finalizers"] = []  # nothing would remove it here
    devcluster.kubectl("create", "--validate=strict", "-n", namespace, "-f", "-", input=json.dumps(vmim))
    devcluster.kubectl(
        "patch",
        "vmim",
        vmim["metadata"]["name"],
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    stored = json.loads(
        devcluster.kubectl("get", "vmim", vmim["metadata"]["name"], "-n", namespace, "-o", "json").stdout
    )
    assert stored["status"] == status
    assert stored["spec"] == vmim["spec"]
    table = devcluster.kubectl("get", "vmims", "-n", namespace).stdout.splitlines()
    assert table[1].split() == [vmim["metadata"]["name"], "Succeeded", "vm-001"]


@pytest.mark.parametrize("name", ["kubevirt.yaml", "kv-migrationpolicy.yaml"])
def test_kubevirt_examples_apply_strictly(
    devcluster: DevCluster, kubevirt_crds: list[str], namespace: str, name: str
) -> None:
    obj = load_example(name)
    result = create_dry_run(devcluster, obj, namespace if obj["kind"] == "KubeVirt" else None)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    assert stored["spec"] == obj["spec"]


MISSPELT = [
    # (example file, JSON merge patch introducing the mistake, field the server must name)
    ("vmi.yaml", {"spec": {"domain": {"resource": {"requests": {"memory": "1Gi"}}}}}, "spec.domain.resource"),
    ("vmi.yaml", {"spec": {"domain": {"memory": {"guests": "1Gi"}}}}, "spec.domain.memory.guests"),
    ("vmi.yaml", {"spec": {"domain": {"cpu": {"core": 2}}}}, "spec.domain.cpu.core"),
    ("vmi.yaml", {"spec": {"evictionStrategy": "Migrate"}}, "spec.evictionStrategy"),
    ("vmi.yaml", {"spec": {"nodeSelectors": {"a": "b"}}}, "spec.nodeSelectors"),
    ("vmi.yaml", {"spec": {"affinity": {"nodeAffinity": {"required": {}}}}}, "spec.affinity.nodeAffinity.required"),
    ("vmi.yaml", {"spec": {"tolerations": [{"key": "k", "efect": "NoSchedule"}]}}, "spec.tolerations[0].efect"),
    ("vmi.yaml", {"status": {"evacuationNode": "node-01"}}, "status.evacuationNode"),
    (
        "vmi.yaml",
        {"status": {"migrationState": {"targetNodeAdress": "10.0.0.1"}}},
        "status.migrationState.targetNodeAdress",
    ),
    ("vmi.yaml", {"status": {"migrationState": {"mode": "Postcopy"}}}, "status.migrationState.mode"),
    ("vmi.yaml", {"status": {"migrationMethod": "Live"}}, "status.migrationMethod"),
    (
        "vmi.yaml",
        {"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransition": None}]}},
        "status.conditions[0].lastTransition",
    ),
    ("vmim.yaml", {"spec": {"vminame": "vm-001"}}, "spec.vminame"),
    ("vmim.yaml", {"spec": {"priority": "high"}}, "spec.priority"),
    ("vmim.yaml", {"status": {"phaseTransitionTimestamp": []}}, "status.phaseTransitionTimestamp"),
    ("vmim.yaml", {"status": {"phase": "Completed"}}, "status.phase"),
    (
        "kubevirt.yaml",
        {"spec": {"configuration": {"migrations": {"parallelMigrationPerCluster": 3}}}},
        "spec.configuration.migrations.parallelMigrationPerCluster",
    ),
    ("kubevirt.yaml", {"spec": {"configuration": {"migration": {}}}}, "spec.configuration.migration"),
    ("kv-migrationpolicy.yaml", {"spec": {"selectors": {"vmiSelector": {"a": "b"}}}}, "spec.selectors.vmiSelector"),
    (
        "kv-migrationpolicy.yaml",
        {"spec": {"selectors": {"namespaceSelector": {"matchLabels": {"a": "b"}}}}},
        "spec.selectors.namespaceSelector.matchLabels",
    ),
    # A wrong type; a negative number passes KubeVirt's CRD (no minimum) and is refused by its policy admitter,
    # which the simulator serves (tests/integration/sim/test_sim_fidelity.py).
    ("kv-migrationpolicy.yaml", {"spec": {"completionTimeoutPerGiB": "5m"}}, "spec.completionTimeoutPerGiB"),
]


@pytest.mark.parametrize(("name", "patch", "field"), MISSPELT, ids=[m[2] for m in MISSPELT])
def test_misspelt_kubevirt_fields_are_rejected_under_strict(
    devcluster: DevCluster, kubevirt_crds: list[str], namespace: str, name: str, patch: dict[str, Any], field: str
) -> None:
    example = load_example(name)
    example["metadata"].pop("finalizers", None)
    namespaced = example["kind"] != "MigrationPolicy"
    ns = namespace if namespaced else None
    if example["kind"] == "VirtualMachineInstanceMigration" and "status" in patch:
        # The VMIM has a status subresource (as in KubeVirt): a create drops status, so write it through /status.
        example.pop("status")
        devcluster.kubectl("create", "--validate=strict", "-n", namespace, "-f", "-", input=json.dumps(example))
        current = json.loads(
            devcluster.kubectl("get", "vmim", example["metadata"]["name"], "-n", namespace, "-o", "json").stdout
        )
        uri = (
            f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstancemigrations/"
            f"{example['metadata']['name']}/status?fieldValidation=Strict"
        )
        result = devcluster.kubectl(
            "replace", "--raw", uri, "-f", "-", input=json.dumps(merge_patch(current, patch)), check=False
        )
    else:
        accepted_without = create_dry_run(devcluster, example, ns)
        assert accepted_without.returncode == 0, accepted_without.stderr  # the mistake, not the example, is rejected
        result = create_dry_run(devcluster, merge_patch(example, patch), ns)
    assert result.returncode != 0, f"accepted: {result.stdout[:400]}"
    assert field in result.stderr, result.stderr


def test_unmodelled_kubevirt_parts_stay_open(devcluster: DevCluster, kubevirt_crds: list[str], namespace: str) -> None:
    vmi = merge_patch(
        load_example("vmi.yaml"),
        {
            "spec": {
                "domain": {
                    "devices": {"rng": {}, "someFutureDevice": {"x": 1}},
                    "firmware": {"bootloader": {"efi": {}}},
                }
            }
        },
    )
    result = create_dry_run(devcluster, vmi, namespace)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["spec"]["domain"]["devices"]["someFutureDevice"] == {"x": 1}
