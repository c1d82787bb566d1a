"""The simulator's metrics, scraped by Debian's Prometheus and read back with PromQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from livemig.devcluster import DevCluster
from livemig.devcluster.prometheus import Prometheus

from .test_sim_engine import create_vmim, scenario, vm, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def test_metrics_visible_through_promql(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any], prometheus_server: Prometheus
) -> None:
    ns = namespace
    doc = scenario(ns, [vm("busy", 0), vm("idle", 1)], nodes=3)
    doc["vmis"][0]["usage"]["cpu"] = "8"
    doc["nodes"][0]["pressure"] = {"cpu": 0.25}
    sim = run_sim(doc, time_scale=10)
    prometheus_server.set_targets([sim.target])
    prometheus_server.wait_for(f'up{{job="livemig-sim", instance="{sim.target}"}} == 1', timeout_s=30)

    # node-exporter names with the node's name in `node` and `instance` (kept by honor_labels)
    node = f"{ns}-n0"
    prometheus_server.wait_for(f'node_memory_MemAvailable_bytes{{node="{node}", instance="{node}"}} > 0')
    # CPU seconds and PSI counters advance in wall-equivalent seconds: rate() reads cores and stall fractions
    cores = prometheus_server.wait_for(
        f'sum by (node) (rate(node_cpu_seconds_total{{node="{node}", mode!="idle"}}[5s])) > 7.5', timeout_s=30
    )
    assert float(cores[0]["value"][1]) == pytest.approx(8.0, rel=0.1)
    psi = prometheus_server.wait_for(f'rate(node_pressure_cpu_waiting_seconds_total{{node="{node}"}}[5s]) > 0.2')
    assert float(psi[0]["value"][1]) == pytest.approx(0.25, rel=0.1)
    prometheus_server.wait_for(f'kubevirt_vmi_memory_available_bytes{{namespace="{ns}", name="busy", node="{node}"}}')
    prometheus_server.wait_for(f'kubevirt_vmi_dirty_rate_bytes_per_second{{namespace="{ns}", name="idle"}} > 0')

    # a migration: per-VMIM result gauge and the finished counter
    assert create_vmim(devcluster, ns, "m-1", "idle").returncode == 0
    wait_phase(devcluster, ns, "m-1", "Succeeded")
    result = prometheus_server.wait_for(
        f'kubevirt_vmi_migration_succeeded{{namespace="{ns}", vmim="m-1", vmi="idle"}} == 1', timeout_s=30
    )
    assert result[0]["metric"]["job"] == "livemig-sim"
    prometheus_server.wait_for(f'kubevirt_vmi_migration_start_time_seconds{{namespace="{ns}", migration_name="m-1"}}')
    prometheus_server.wait_for('kubevirt_vmi_migrations_in_running_phase{job="livemig-sim"} == 0')
