"""Fixtures for the simulator's integration tests: the simulator as a subprocess (`livemig sim run`) against the
session's API server, and Debian's Prometheus scraping it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.devcluster import DevCluster
from livemig.devcluster.prometheus import Prometheus, PrometheusError, prometheus_binary
from livemig.sim.process import SimulatorError, SimulatorProcess


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Debian's /usr/bin/prometheus on a free loopback port, scraping every 1 s; tests point it at their simulator
    with `set_targets`."""
    try:
        prometheus_binary()
    except PrometheusError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"), interval="1s")
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture
def run_sim(
    devcluster: DevCluster, kubevirt_crds: list[str], tmp_path: Path
) -> Iterator[Callable[..., SimulatorProcess]]:
    """Start `livemig sim run` on a scenario dict; stopped (SIGTERM, webhooks unregistered) after the test."""
    started: list[SimulatorProcess] = []

    def start(scenario: dict[str, Any], *, time_scale: float = 60.0, name: str = "sim") -> SimulatorProcess:
        scenario_file = tmp_path / f"{name}.yaml"
        scenario_file.write_text(yaml.safe_dump(scenario))
        sim = SimulatorProcess(scenario_file, devcluster.kubeconfig, work_dir=tmp_path, time_scale=time_scale,
                               name=name)  # fmt: skip
        started.append(sim)
        try:
            sim.start(timeout_s=90)
        except SimulatorError as exc:
            pytest.fail(str(exc))
        return sim

    yield start
    for sim in started:
        sim.stop()


class VmimWatch:
    """Records every VMIM state the API server reports in a namespace (a real watch, in a thread)."""

    def __init__(self, devcluster: DevCluster, namespace: str) -> None:
        kubectl = shutil.which("kubectl", path=str(devcluster.bin_dir)) or "kubectl"
        self.events: list[dict[str, Any]] = []
        self._process = subprocess.Popen(
            [
                kubectl,
                "--kubeconfig",
                str(devcluster.kubeconfig),
                "get",
                "vmim",
                "-n",
                namespace,
                "--watch",
                "--output-watch-events",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for chunk in iter(lambda: self._process.stdout.read1(65536), b""):  # type: ignore[union-attr]
            buffer += chunk.decode()
            while True:
                buffer = buffer.lstrip()
                try:
                    event, end = decoder.raw_decode(buffer)
                except json.JSONDecodeError:
                    break
                buffer = buffer[end:]
                self.events.append(event)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._thread.join(timeout=10)


@pytest.fixture
def vmim_watch(devcluster: DevCluster) -> Iterator[Callable[[str], VmimWatch]]:
    watches: list[VmimWatch] = []

    def start(namespace: str) -> VmimWatch:
        w = VmimWatch(devcluster, namespace)
        watches.append(w)
        return w

    yield start
    for w in watches:
        w.stop()
