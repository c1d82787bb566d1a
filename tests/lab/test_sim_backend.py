"""`backend: qemu`: the simulator's migration carried out by real QEMU.

The first test drives the backend through the simulator's seam directly (advance / state, as the simulator's loop
does); the second runs `livemig sim run` against the real API server with a VMI marked `backend: qemu`, creates a
VirtualMachineInstanceMigration, and finds QEMU's figures next to the model's in the outcome log.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.core.model import LinkParams, MigrationSettings, VmParams
from livemig.core.model.results import Phase
from livemig.core.vocabulary import Outcome, Technique
from livemig.devcluster import DevCluster
from livemig.lab import LabInstall
from livemig.lab.install import default_manifest_path
from livemig.lab.simbackend import QemuMigrationBackend, case_for

MIB = 2**20
PAGE = 4096


@dataclass(frozen=True)
class Start:
    vmi_key: str
    technique: Technique
    vm: VmParams
    link: LinkParams
    settings: MigrationSettings


def test_case_follows_the_simulators_start_values() -> None:
    start = Start(
        "ns/vm-a",
        Technique.POST_COPY,
        VmParams(300e6, 3000 * PAGE, working_set_bytes=100e6),
        LinkParams(50e6),
        MigrationSettings(completion_timeout_per_gib=2, allow_post_copy=True),
    )
    case = case_for(start)
    assert case.technique is Technique.POST_COPY
    assert case.memory_bytes == 287 * MIB  # 300 MB rounded up to whole MiB
    assert case.working_set_bytes == 95 * MIB
    assert case.dirty_pages_per_s == 3000
    assert case.bandwidth_bps == 50e6
    assert case.post_copy_switch_s == 2.0  # KubeVirt: completionTimeoutPerGiB x ceil(GB)
    pre = case_for(Start("ns/vm-b", Technique.PRE_COPY, VmParams(4e9, 0), LinkParams(50e6), MigrationSettings()))
    assert pre.memory_bytes == 2048 * MIB  # the lab's largest guest
    assert pre.timeout_s == 150 * 4  # KubeVirt aborts pre-copy at its completion timeout


@pytest.mark.lab
def test_backend_reports_a_real_migration_through_the_simulators_seam(lab_install: LabInstall) -> None:
    start = Start(
        "lab/vm-seam",
        Technique.PRE_COPY,
        VmParams(256 * MIB, 2000 * PAGE, working_set_bytes=128 * MIB),
        LinkParams(125e6),
        MigrationSettings(),
    )
    backend = QemuMigrationBackend(start, install=lab_install)
    deadline = time.monotonic() + 120
    states = []
    # The simulator's loop: advance every tick until done (a bounded poll: QEMU runs in real time).
    while not (state := backend.advance(1.0, dirty_rate_bps=0.0, bandwidth_bps=0.0)).done:
        assert time.monotonic() < deadline, "the QEMU migration did not end in 120 s"
        states.append(state)
        time.sleep(0.2)
    assert backend.wait(30)  # QEMU stopped
    assert backend.error is None
    assert state.outcome is Outcome.COMPLETED
    assert state.phase is Phase.DONE
    assert 150e6 < state.transferred_bytes < 400e6  # QEMU's ram.transferred, not the model's
    assert 0 < state.downtime_s < 1.0
    assert any(s.phase is Phase.PRE_COPY and s.transferred_bytes > 0 for s in states)
    prediction = backend.predict()
    assert prediction.outcome.succeeded
    assert prediction.transferred_bytes != state.transferred_bytes


@pytest.fixture
def qemu_sim(
    devcluster: DevCluster, kubevirt_crds: list[str], namespace: str, tmp_path: Path, lab_install: LabInstall
) -> Iterator[tuple[str, Path]]:
    """`livemig sim run` at time scale 1 on a scenario with one `backend: qemu` VMI; stopped after the test."""
    ns = namespace
    scenario = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "Scenario",
        "kubevirt": {},
        "namespaces": [{"name": ns, "labels": {"tier": "test"}}],
        "nodes": [{"name": f"{ns}-n{i}", "cpu": "32", "memory": "128Gi", "linkBandwidth": "1Gbit"} for i in range(2)],
        "vmis": [
            {
                "namespace": ns,
                "name": "vm-qemu",
                "node": f"{ns}-n0",
                "vcpus": 1,
                "memory": "256Mi",
                "workingSet": "128Mi",
                "usage": {"cpu": "0.2", "memory": "256Mi", "dirtyRate": 2000 * PAGE},
                "backend": "qemu",
            }
        ],
        "simulation": {"kubevirtNamespace": ns, "delays": {"jitter": 0}},
    }
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    ready, outcomes, log = tmp_path / "ready.json", tmp_path / "outcomes.jsonl", tmp_path / "sim.log"
    command = [
        *(sys.executable, "-m", "livemig", "sim", "run", "--scenario", str(tmp_path / "scenario.yaml")),
        *("--kubeconfig", str(devcluster.kubeconfig), "--time-scale", "1"),
        *("--outcome-log", str(outcomes), "--ready-file", str(ready)),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():  # the simulator writes it when set up
            assert process.poll() is None, f"simulator exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"simulator not ready in 90 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        yield ns, outcomes
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _kubectl_json(devcluster: DevCluster, *args: str) -> Any:
    return json.loads(devcluster.kubectl(*args, "-o", "json").stdout)


@pytest.mark.lab
@pytest.mark.integration
@pytest.mark.slow
def test_a_vmim_for_a_qemu_vmi_is_carried_out_by_qemu(devcluster: DevCluster, qemu_sim: tuple[str, Path]) -> None:
    ns, outcomes = qemu_sim
    manifest = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": "mig-qemu", "namespace": ns},
        "spec": {"vmiName": "vm-qemu"},
    }
    devcluster.kubectl("create", "-f", "-", input=yaml.safe_dump(manifest))
    # TCG boot of the guest (~15 s) + a 1 Gbit/s migration (~2 s) + the destination check, in real time.
    devcluster.kubectl("wait", "-n", ns, "vmim/mig-qemu", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=150s")
    vmi = _kubectl_json(devcluster, "get", "-n", ns, "vmi", "vm-qemu")
    state = vmi["status"]["migrationState"]
    assert state["completed"] is True
    assert state["failed"] is False
    assert state["mode"] == "PreCopy"
    assert vmi["status"]["nodeName"] == state["targetNode"] == f"{ns}-n1"

    deadline = time.monotonic() + 30
    while not (outcomes.exists() and outcomes.read_text().strip()):  # the outcome log is a file
        assert time.monotonic() < deadline, "no outcome record"
        time.sleep(0.1)
    (record,) = [json.loads(line) for line in outcomes.read_text().splitlines() if line.strip()]
    assert record["vmim"] == f"{ns}/mig-qemu"
    assert record["result"] == "Succeeded"
    real, predicted = record["simulated"], record["predicted"]
    # The real run's own record (the lab keeps one per migration) carries the same figures QEMU reported.
    runs = sorted((default_manifest_path().parent / "runs").glob(f"*-sim-{ns}-vm-qemu"))
    assert runs, "no lab run directory for this VMI"
    measured = json.loads((runs[-1] / "result.json").read_text())
    assert measured["status"] == "completed"
    assert measured["guest_alive"] is True
    assert real["transferred_bytes"] == measured["transferred_bytes"]
    assert predicted["transferred_bytes"] > 0
    assert predicted["transferred_bytes"] != real["transferred_bytes"]  # side by side: model and QEMU
