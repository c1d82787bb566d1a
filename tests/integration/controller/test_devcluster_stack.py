"""`livemig devcluster up --scenario FILE --operator` starts the whole embedded stack and returns once it is ready;
`env` prints its environment and `down` stops all of it (issue 10, item 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from livemig.devcluster.binaries import repository_root

pytestmark = pytest.mark.integration


def _livemig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livemig", *args], capture_output=True, text=True, timeout=300, check=False
    )


def _env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            out[key] = value.strip("'")
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_up_with_a_scenario_and_the_operator_then_env_then_down(tmp_path: Path) -> None:
    root = repository_root()
    assert root is not None
    state = tmp_path / "state"
    up = _livemig(
        "devcluster",
        "up",
        "--state-dir",
        str(state),
        "--scenario",
        str(root / "examples" / "scenarios" / "small.yaml"),
        "--time-scale",
        "30",
        "--operator",
    )
    try:
        assert up.returncode == 0, up.stderr
        env = _env(up.stdout)
        assert set(env) >= {"KUBECONFIG", "LIVEMIG_PROMETHEUS_URL", "LIVEMIG_SIM_URL", "LIVEMIG_OPERATOR_METRICS_URL"}
        assert _env(_livemig("devcluster", "env", "--state-dir", str(state)).stdout) == env
        with urllib.request.urlopen(f"{env['LIVEMIG_PROMETHEUS_URL']}/-/ready", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{env['LIVEMIG_SIM_URL']}/state", timeout=10) as response:
            assert json.load(response)["now"] >= 0
        with urllib.request.urlopen(env["LIVEMIG_OPERATOR_METRICS_URL"], timeout=10) as response:
            assert b"# TYPE livemig_migrations_in_flight gauge" in response.read()
        # The CRDs are installed: a policy can be applied right away.
        kubectl = Path(env["PATH"].split(":")[0]) / "kubectl"
        crds = subprocess.run(
            [str(kubectl), "--kubeconfig", env["KUBECONFIG"], "get", "crd", "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "migrationpolicies.livemig.io" in crds
        assert "virtualmachineinstancemigrations.kubevirt.io" in crds
        pids = json.loads((state / "stack.json").read_text())["pids"]
        assert set(pids) == {"simulator", "prometheus", "operator"}
    finally:
        down = _livemig("devcluster", "down", "--state-dir", str(state))
    assert down.returncode == 0, down.stderr
    assert not any(_alive(int(pid)) for pid in pids.values())
    assert not (state / "stack.json").exists()
