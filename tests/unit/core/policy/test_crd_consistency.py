"""The CRD, the offline parser and the docs agree, without an API server.

- the parser's defaults are the CRD's: a policy with the CRD's defaults written out parses to the same value as
  without them (the integration test checks the same against the real API server's defaulting);
- every enum of the CRD matches the vocabulary the code uses;
- crds/verify.py passes, and catches a drifted copy, a stale KubeVirt CRD and an undocumented field.
"""

from __future__ import annotations

import copy
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from livemig.core.policy import SelectorOperator, parse_policy
from livemig.core.policy.spec import Comparison
from livemig.core.vocabulary import AbortReason, Objective, Outcome, Purpose, Technique, TechniqueMode
from support.manifests import apply_defaults

REPO = Path(__file__).resolve().parents[4]
CRD = yaml.safe_load((REPO / "crds" / "livemig.io_migrationpolicies.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC = SCHEMA["properties"]["spec"]
STATUS = SCHEMA["properties"]["status"]
EXAMPLES = sorted((REPO / "examples" / "policies").glob("*.yaml"))
BASE = yaml.safe_load((REPO / "tests" / "data" / "invalid_policies.yaml").read_text())["base"]

MINIMAL_SPECS = [
    {"purpose": "Maintenance", "maintenance": {"cordoned": True}},
    {
        "purpose": "Maintenance",
        "maintenance": {
            "nodeNames": ["n1"],
            "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"},
        },
    },
    {"purpose": "Evacuation", "evacuation": {"healthQuery": "up", "threshold": 0}},
    {"purpose": "LoadBalancing", "loadBalancing": {"pressure": {"io": {"high": 0.5, "target": 0.2}}}},
    {"purpose": "Consolidation", "consolidation": {"lowUtilization": {"memory": 0.3}}},
    {
        "purpose": "Consolidation",
        "consolidation": {"lowUtilization": {"cpu": 0.1}, "headroom": {"cpu": 0.5}},
        "prometheus": {"queries": {"vmiDirtyRate": "x"}},
    },
]


def manifests() -> list[dict[str, Any]]:
    docs = [yaml.safe_load(path.read_text()) for path in EXAMPLES] + [BASE]
    for index, spec in enumerate(MINIMAL_SPECS):
        docs.append(
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": f"minimal-{index}"},
                "spec": spec,
            }
        )
    return docs


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: d["metadata"]["name"])
def test_parser_defaults_are_the_crd_defaults(doc: dict[str, Any]) -> None:
    defaulted = copy.deepcopy(doc)
    apply_defaults(SPEC, defaulted["spec"])
    assert defaulted != doc  # the CRD filled something in (technique and limits always get defaults)
    assert parse_policy(defaulted) == parse_policy(doc)


def _enum(schema: dict[str, Any], *path: str) -> set[str]:
    for key in path:
        schema = schema["items"] if key == "[]" else schema["properties"][key]
    return set(schema["enum"])


def test_crd_enums_match_the_vocabulary() -> None:
    assert _enum(SPEC, "purpose") == {p.value for p in Purpose}
    assert _enum(SPEC, "technique", "mode") == {m.value for m in TechniqueMode}
    assert _enum(SPEC, "technique", "objective") == {o.value for o in Objective}
    assert _enum(SPEC, "evacuation", "comparison") == {c.value for c in Comparison}
    selector = SPEC["properties"]["nodeSelector"]
    assert _enum(selector, "matchExpressions", "[]", "operator") == {o.value for o in SelectorOperator}
    assert _enum(STATUS, "currentPlan", "moves", "[]", "technique") == {t.value for t in Technique}
    assert _enum(STATUS, "recentOutcomes", "[]", "outcome") == {o.value for o in Outcome}
    assert _enum(STATUS, "recentOutcomes", "[]", "abortReason") == {r.value for r in AbortReason}


def _verify_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crds_verify", REPO / "crds" / "verify.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verify_passes_on_the_repository() -> None:
    assert _verify_module().problems() == []


def test_verify_catches_drift(tmp_path: Path) -> None:
    for part in ("crds", "hack/kubevirt-crds", "docs/policy.md"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part)
        else:
            (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp_path / part)
    verify = _verify_module()
    assert verify.problems(tmp_path) == []

    chart_copy = tmp_path / "charts" / "livemig" / "crds" / "livemig.io_migrationpolicies.yaml"
    chart_copy.parent.mkdir(parents=True)
    chart_copy.write_text((tmp_path / "crds" / "livemig.io_migrationpolicies.yaml").read_text() + "# edited\n")
    vmi_crd = tmp_path / "hack" / "kubevirt-crds" / "kubevirt.io_virtualmachineinstances.yaml"
    vmi_crd.write_text(vmi_crd.read_text().replace("evacuationNodeName", "evacuationNode"))
    docs = tmp_path / "docs" / "policy.md"
    docs.write_text(docs.read_text().replace("`spec.limits.cooldown`", "cooldown"))

    found = verify.problems(tmp_path)
    assert len(found) == 3, found
    assert "charts/livemig/crds/livemig.io_migrationpolicies.yaml differs" in found[0]
    assert "stale: kubevirt.io_virtualmachineinstances.yaml" in found[1]
    assert found[2] == "docs/policy.md does not document `spec.limits.cooldown`"
