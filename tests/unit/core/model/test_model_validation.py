"""papers.md V1-V12 against the model, one test per check; the docs table must match the model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the case table lives beside this file (importlib mode)
from model_cases import CASES, doc_block, generated_block

_PARAMS = []
for _case in CASES:
    _result = _case()
    for _index, _check in enumerate(_result.checks):
        marks = [pytest.mark.xfail(strict=True, reason=_check.known_gap)] if _check.known_gap else []
        _PARAMS.append(pytest.param(_case, _index, id=f"{_result.case}-{_check.quantity}", marks=marks))


@pytest.mark.parametrize(("case", "index"), _PARAMS)
def test_published_case(case, index) -> None:  # type: ignore[no-untyped-def]
    check = case().checks[index]
    assert check.ok, f"{check.quantity}: model {check.model}, paper {check.expected}"


def test_docs_validation_table_is_current() -> None:
    assert doc_block() == generated_block(), "run: .venv/bin/python tests/unit/core/model/model_cases.py"
