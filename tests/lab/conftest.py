"""Fixtures for the lab tests: the lab installation (hack/lab/setup.sh), or a skip saying how to get it.

Lab tests run real QEMU migrations (TCG, loopback); each takes 15-75 s of wall time.  They run one at a time: the
machine is small and the figures are only meaningful when source and destination each get a core.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from livemig.lab import LabInstall, LabNotInstalledError
from livemig.lab.install import default_manifest_path


@pytest.fixture(scope="session")
def lab_install() -> LabInstall:
    try:
        return LabInstall.load()
    except LabNotInstalledError as exc:
        if os.environ.get("CI"):
            raise  # CI runs hack/lab/setup.sh first: a missing lab there is a failure, not a skip
        pytest.skip(f"lab QEMU/guest missing: {exc}")


@pytest.fixture(scope="session")
def lab_runs(lab_install: LabInstall) -> Path:
    """Run directories (serial logs, QEMU output, samples) kept for inspection after a failure, beside the lab's
    other runs (pytest's own temporary directories are pruned by later sessions)."""
    path = default_manifest_path().parent / "runs" / f"tests-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path
