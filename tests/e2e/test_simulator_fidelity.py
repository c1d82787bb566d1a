"""The e2e fidelity scenarios (fidelity.py) against livemig's simulator on the local API server: the checks that real
KubeVirt must pass on kind (test_kubevirt_migration.py), applied to what `livemig sim run` does.  Runs here, without
Docker; a difference between the two runs is a fidelity bug in the simulator or a wrong expectation.

Simulated time runs at wall speed (time scale 1), so KubeVirt's 300 s unschedulable-target timeout keeps the
in-flight migration in flight as on a real cluster.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.devcluster import DevCluster

from . import kubevirt_expectations as kv
from .fidelity import Deadlines, check_in_flight_refusal, check_migration_with_policy
from .harness import Kubectl

pytestmark = pytest.mark.integration

SIM = Deadlines(scheduling_s=60, migration_s=120, settle_s=30, delete_s=60)
VMI_LABELS = {"app": "cirros", "livemig.io/e2e": "fidelity"}


@dataclass(frozen=True)
class SimCluster:
    kubectl: Kubectl
    namespace: str
    vmi: str


def scenario(namespace: str) -> dict[str, Any]:
    """Two workers like kind-config.yaml's and one small VMI, as in the kind run."""
    worker = {"cpu": "4", "memory": "8Gi", "linkBandwidth": "10Gbit", "labels": {"livemig.io/pool": "workers"}}
    return {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "Scenario",
        "namespaces": [{"name": namespace, "labels": {"livemig.io/e2e": "sim"}}],
        "nodes": [{"name": f"{namespace}-worker", **worker}, {"name": f"{namespace}-worker2", **worker}],
        "vmis": [
            {
                "namespace": namespace,
                "name": "cirros",
                "labels": VMI_LABELS,
                "node": f"{namespace}-worker",
                "vcpus": 1,
                "memory": "128Mi",
                "usage": {"cpu": "0.1", "memory": "100Mi", "dirtyRate": "1Mi"},
            }
        ],
        "simulation": {"timeScale": 1, "kubevirtNamespace": namespace, "delays": {"jitter": 0}},
    }


@pytest.fixture
def sim_cluster(
    devcluster: DevCluster, kubevirt_crds: list[str], namespace: str, tmp_path: Path
) -> Iterator[SimCluster]:
    """`livemig sim run` on the scenario above, until the test ends (SIGTERM unregisters its webhooks)."""
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario(namespace)))
    ready_file, log = tmp_path / "ready.json", tmp_path / "sim.log"
    command = [sys.executable, "-m", "livemig", "sim", "run", "--scenario", str(scenario_file),
               "--kubeconfig", str(devcluster.kubeconfig), "--outcome-log", str(tmp_path / "outcomes.jsonl"),
               "--ready-file", str(ready_file)]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not ready_file.exists():  # the simulator writes it once set-up is done
            assert process.poll() is None, f"simulator exited {process.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"simulator not ready in 90 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        kubectl = Kubectl(devcluster.kubeconfig, binary=str(devcluster.bin_dir / "kubectl"))
        yield SimCluster(kubectl, namespace, "cirros")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_simulator_refuses_a_second_migration_while_one_is_in_flight(sim_cluster: SimCluster) -> None:
    # The denial must read exactly as KubeVirt's, webhook name included.
    check_in_flight_refusal(sim_cluster.kubectl, sim_cluster.namespace, sim_cluster.vmi, SIM)


def test_simulator_migration_with_a_policy_that_sets_nothing(sim_cluster: SimCluster) -> None:
    check_migration_with_policy(
        sim_cluster.kubectl,
        sim_cluster.namespace,
        sim_cluster.vmi,
        vmim_name="e2e-migrate-1",
        policy_name=f"{sim_cluster.namespace}-inert",  # cluster-scoped: unique per test
        vmi_selector={"livemig.io/e2e": "fidelity", "app": "cirros"},
        policy_fields={},
        deadlines=SIM,
    )


def test_simulator_records_a_kv_migration_policy_matched_by_vmi_labels(sim_cluster: SimCluster) -> None:
    check_migration_with_policy(
        sim_cluster.kubectl,
        sim_cluster.namespace,
        sim_cluster.vmi,
        vmim_name="e2e-migrate-2",
        policy_name=f"{sim_cluster.namespace}-auto-converge",
        vmi_selector={"livemig.io/e2e": "fidelity", "app": "cirros"},
        policy_fields={"allowAutoConverge": True},
        deadlines=SIM,
    )


def test_simulator_webhook_has_kubevirts_name(sim_cluster: SimCluster) -> None:
    configs = sim_cluster.kubectl.get("validatingwebhookconfigurations")["items"]
    names = {hook["name"] for config in configs for hook in config.get("webhooks") or []}
    assert kv.CREATE_WEBHOOK in names, names
