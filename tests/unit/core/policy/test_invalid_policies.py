"""The bad policies in tests/data/invalid_policies.yaml are rejected offline, naming the same field as the API server.

tests/integration/test_crds.py runs the same cases against the real API server with the CRD installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.core.errors import SpecErrors
from livemig.core.policy import parse_policy
from support.manifests import merge_patch

DATA = Path(__file__).resolve().parents[3] / "data" / "invalid_policies.yaml"
CASES_DOC = yaml.safe_load(DATA.read_text())


def test_the_base_policy_is_valid() -> None:
    policy = parse_policy(CASES_DOC["base"])
    assert policy.name == "base"


def test_there_are_at_least_fifteen_cases_with_unique_names() -> None:
    names = [case["name"] for case in CASES_DOC["cases"]]
    assert len(names) >= 15
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES_DOC["cases"], ids=lambda case: case["name"])
def test_invalid_policy_is_rejected_naming_the_field(case: dict[str, Any]) -> None:
    manifest = merge_patch(CASES_DOC["base"], case["patch"])
    with pytest.raises(SpecErrors) as excinfo:
        parse_policy(manifest)
    paths = [error.path for error in excinfo.value.errors]
    assert case["field"] in paths, f"expected an error at {case['field']}, got {excinfo.value}"
    assert str(excinfo.value).count(case["field"]) >= 1


@pytest.mark.parametrize("case", CASES_DOC["valid"], ids=lambda case: case["name"])
def test_valid_edge_case_is_accepted(case: dict[str, Any]) -> None:
    parse_policy(merge_patch(CASES_DOC["base"], case["patch"]))


def test_lower_case_rfc3339_is_rejected_like_the_crds_cel_rule_does() -> None:
    manifest = merge_patch(
        CASES_DOC["base"],
        {
            "spec": {
                "purpose": "Maintenance",
                "loadBalancing": None,
                "maintenance": {
                    "cordoned": True,
                    "window": {"start": "2026-11-28t22:00:00z", "end": "2026-11-29T04:00:00Z"},
                },
            }
        },
    )
    with pytest.raises(SpecErrors, match=r"spec\.maintenance\.window\.start: must be an RFC 3339 time"):
        parse_policy(manifest)
