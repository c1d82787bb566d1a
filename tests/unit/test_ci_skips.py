"""support/ci_skips.py: under CI=true a skip outside tests/e2e/ fails the run; otherwise a skip stays a skip."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_needs_a_tool():
    pytest.skip("tool missing")

@pytest.mark.xfail(reason="known")
def test_known_bug():
    assert False
"""
SKIPPING_AT_IMPORT = """
import pytest

pytest.importorskip("no_such_module_for_livemig")

def test_never_runs():
    pass
"""


def _layout(pytester: pytest.Pytester) -> None:
    pytester.mkdir("tests")
    for where in ("tests/integration", "tests/e2e"):
        pytester.mkdir(where)
        (pytester.path / where / f"test_{where.split('/')[1]}_skips.py").write_text(SKIPPING)
    (pytester.path / "tests/integration/test_import_skip.py").write_text(SKIPPING_AT_IMPORT)


def test_under_ci_a_skip_outside_e2e_fails(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    _layout(pytester)
    result = pytester.runpytest("-p", "support.ci_skips", "-p", "no:asyncio", "-rA", "--continue-on-collection-errors")
    outcomes = result.parseoutcomes()
    # integration: the runtime skip and the import-time skip fail; e2e: its skip stays a skip; xfail stays xfail.
    assert outcomes.get("failed") == 1
    assert outcomes.get("errors", outcomes.get("error")) == 1
    assert outcomes.get("skipped") == 1
    assert outcomes.get("xfailed") == 2
    assert result.ret != 0
    result.stdout.fnmatch_lines(["FAILED *test_needs_a_tool - skipped in CI (CI=true)*outside tests/e2e/*tool missing"])


@pytest.mark.parametrize("ci", [None, "false", "1"])
def test_outside_ci_a_skip_stays_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    _layout(pytester)
    result = pytester.runpytest("-p", "support.ci_skips", "-p", "no:asyncio")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped") == 3
    assert outcomes.get("xfailed") == 2
    assert "failed" not in outcomes
    assert result.ret == 0
