"""What can be checked of the operator image without Docker (issue 11, item 1): the wheel the Dockerfile installs
builds from the files the Dockerfile copies, and `livemig operator run --help` works from it in a fresh virtual
environment (no source tree on the path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_images_wheel_builds_and_runs_the_operator_entry_point(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["livemig", "operator", "run"]' in dockerfile
    assert "USER 65532:65532" in dockerfile
    # The build context the Dockerfile sees: only what .dockerignore lets through and the build stage copies.
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(ROOT / "operator", context / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("livemig-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if install.returncode != 0 and "No matching distribution" in install.stderr:
        pytest.fail(f"the wheel's dependencies could not be installed: {install.stderr[-500:]}")
    assert install.returncode == 0, install.stderr[-2000:]
    result = subprocess.run(
        [str(env_dir / "bin" / "livemig"), "operator", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--kubeconfig", "--prometheus-url", "--metrics-port", "--health-port", "--peering", "--log-format"):
        assert flag in result.stdout
