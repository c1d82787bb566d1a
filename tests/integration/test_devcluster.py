"""The local control plane is real: TLS, RBAC, TokenRequest, and it leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livemig.devcluster import DevCluster

pytestmark = pytest.mark.integration

LIVEMIG = [sys.executable, "-m", "livemig"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has stopped all the same.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _wait_gone(pids: list[int], timeout_s: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


def test_readyz_answers_ok(devcluster: DevCluster) -> None:
    result = devcluster.kubectl("get", "--raw", "/readyz")
    assert result.stdout.strip() == "ok"


def test_server_reports_the_pinned_version(devcluster: DevCluster) -> None:
    version = json.loads(devcluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    versions = dict(
        line.split("=", 1)
        for line in Path("hack/controlplane/versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert version["gitVersion"] == versions["KUBERNETES_VERSION"]


def test_rbac_is_enforced_for_service_account_tokens(devcluster: DevCluster, namespace: str, tmp_path: Path) -> None:
    devcluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = devcluster.kubectl("create", "token", "reader", "-n", namespace, "--duration=10m").stdout.strip()
    reader_config = devcluster.write_token_kubeconfig(token, tmp_path / "reader.kubeconfig")
    whoami = devcluster.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=reader_config
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:reader"

    denied = devcluster.kubectl("get", "configmaps", "-n", namespace, kubeconfig=reader_config, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()

    devcluster.kubectl("create", "role", "read-cm", "--verb=get,list", "--resource=configmaps", "-n", namespace)
    devcluster.kubectl(
        "create", "rolebinding", "read-cm", "--role=read-cm", f"--serviceaccount={namespace}:reader", "-n", namespace
    )
    allowed = devcluster.kubectl("get", "configmaps", "-n", namespace, kubeconfig=reader_config)
    assert allowed.returncode == 0
    cannot_write = devcluster.kubectl(
        "auth", "can-i", "create", "configmaps", "-n", namespace, kubeconfig=reader_config, check=False
    )
    assert cannot_write.stdout.strip() == "no"


def test_cli_up_env_down_leaves_no_process_or_data(devcluster: DevCluster, tmp_path: Path) -> None:
    state_dir = tmp_path / "cli-cluster"
    up = subprocess.run(
        [*LIVEMIG, "devcluster", "up", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert f"export KUBECONFIG={state_dir / 'admin.kubeconfig'}" in up.stdout
    state = json.loads((state_dir / "devcluster.json").read_text())
    pids = [state["etcd_pid"], state["apiserver_pid"]]
    assert all(_alive(pid) for pid in pids)

    env = subprocess.run(
        [*LIVEMIG, "devcluster", "env", "--state-dir", str(state_dir)], capture_output=True, text=True, check=True
    )
    assert env.stdout == up.stdout
    readyz = subprocess.run(
        [
            str(devcluster.bin_dir / "kubectl"),
            "--kubeconfig",
            str(state_dir / "admin.kubeconfig"),
            "get",
            "--raw",
            "/readyz",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert readyz.stdout.strip() == "ok"

    subprocess.run([*LIVEMIG, "devcluster", "down", "--state-dir", str(state_dir)], check=True, timeout=60)
    assert _wait_gone(pids) == []
    assert not state_dir.exists()


def test_attached_cluster_dies_with_its_parent(devcluster: DevCluster, tmp_path: Path) -> None:
    """An interrupted test run (its process killed) must not leave etcd or kube-apiserver behind."""
    script = (
        "import json, sys, time\n"
        "from livemig.devcluster import DevCluster\n"
        "c = DevCluster(attached=True)\n"
        "s = c.start()\n"
        "print(json.dumps([s.etcd_pid, s.apiserver_pid]), flush=True)\n"
        "sys.stdin.read()\n"  # block until killed
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = json.loads(parent.stdout.readline())
    assert all(_alive(pid) for pid in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    assert _wait_gone(pids) == []
