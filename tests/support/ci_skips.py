"""In CI (`CI=true`, exported by .ci/run) a skipped test is a failure, except in the kind suite (tests/e2e/).

CI installs every tool the suite needs; a test that skips there because a binary, the lab's QEMU or promtool is
missing would otherwise turn green without running.  Outside CI, skips stay skips (a laptop may lack Docker or
QEMU).  xfail is not a skip and is left alone.  tests/conftest.py installs these hooks.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

ALLOWED_DIR = "e2e"  # tests/e2e/: kind + real KubeVirt, skipped where Docker is absent


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _skip_allowed(path: Path) -> bool:
    parts = path.resolve().parts
    return any(a == "tests" and b == ALLOWED_DIR for a, b in itertools.pairwise(parts))


def _as_failure(report: Any, where: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI (CI=true), which counts as a failure outside tests/{ALLOWED_DIR}/: {where}: {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail") and not _skip_allowed(item.path):
        _as_failure(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not _skip_allowed(collector.path):
        _as_failure(report, collector.nodeid)
