"""Fixtures for the simulator's integration tests: the simulator as a subprocess (`livemig sim run`) against the
session's API server, and Debian's Prometheus scraping it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.devcluster import DevCluster
from livemig.devcluster.prometheus import Prometheus, PrometheusError, prometheus_binary


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


class SimProcess:
    """A running `livemig sim run` and its endpoints."""

    def __init__(self, process: subprocess.Popen[bytes], ready: dict[str, Any], outcome_log: Path, log: Path) -> None:
        self.process = process
        self.ready = ready
        self.outcome_log = outcome_log
        self.log = log

    @property
    def control(self) -> str:
        return str(self.ready["control"])

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.ready['metricsPort']}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.control}{path}", timeout=10) as response:
            if path == "/metrics":
                return response.read().decode()
            return json.load(response)

    def post_fault(self, fault: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.control}/faults",
            data=json.dumps(fault).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), json.load(response)
        except urllib.error.HTTPError as exc:
            return int(exc.code), json.loads(exc.read())

    def outcomes(self) -> list[dict[str, Any]]:
        if not self.outcome_log.exists():
            return []
        return [json.loads(line) for line in self.outcome_log.read_text().splitlines() if line.strip()]

    def wait_outcomes(self, n: int, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Wait (deadline-bounded) until the outcome log holds `n` records."""
        deadline = time.monotonic() + timeout_s
        while len(records := self.outcomes()) < n:
            assert self.process.poll() is None, f"simulator exited:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"only {len(records)} of {n} outcomes after {timeout_s}s"
            time.sleep(0.1)  # the outcome log is a file: a bounded poll of it
        return records

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def run_sim(devcluster: DevCluster, kubevirt_crds: list[str], tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    """Start `livemig sim run` on a scenario dict; stopped (SIGTERM, webhooks unregistered) after the test."""
    started: list[SimProcess] = []

    def start(scenario: dict[str, Any], *, time_scale: float = 60.0, name: str = "sim") -> SimProcess:
        scenario_file = tmp_path / f"{name}.yaml"
        scenario_file.write_text(yaml.safe_dump(scenario))
        ready_file = tmp_path / f"{name}.ready.json"
        outcome_log = tmp_path / f"{name}.outcomes.jsonl"
        log = tmp_path / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "livemig",
            "sim",
            "run",
            "--scenario",
            str(scenario_file),
            "--kubeconfig",
            str(devcluster.kubeconfig),
            "--time-scale",
            str(time_scale),
            "--outcome-log",
            str(outcome_log),
            "--ready-file",
            str(ready_file),
        ]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while not ready_file.exists():
            if process.poll() is not None:
                pytest.fail(f"simulator exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"simulator not ready in 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)  # the ready file appears when set-up is done
        sim = SimProcess(process, json.loads(ready_file.read_text()), outcome_log, log)
        started.append(sim)
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
