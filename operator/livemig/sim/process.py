"""`livemig sim run` as a child process, for tests, the demo and benchmarks.

    with SimulatorProcess(scenario_file, kubeconfig, work_dir=tmp, time_scale=60) as sim:
        print(sim.metrics_url, sim.state()["now"])
        sim.post_fault({"type": "nodeFailure", "node": "node-03"})
        records = sim.wait_outcomes(5)

Readiness comes from the `--ready-file` the simulator writes once its objects and webhooks are in place.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from livemig.core.errors import LivemigError


class SimulatorError(LivemigError):
    """The simulator process did not start, or exited."""


class SimulatorProcess:
    def __init__(
        self,
        scenario: Path,
        kubeconfig: Path,
        *,
        work_dir: Path,
        time_scale: float | None = None,
        seed: int | None = None,
        metrics_port: int = 0,
        name: str = "sim",
    ) -> None:
        self.scenario = Path(scenario)
        self.kubeconfig = Path(kubeconfig)
        self.work_dir = Path(work_dir)
        self.time_scale = time_scale
        self.seed = seed
        self.metrics_port = metrics_port
        self.ready_file = self.work_dir / f"{name}.ready.json"
        self.outcome_log = self.work_dir / f"{name}.outcomes.jsonl"
        self.log = self.work_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    # ---- lifecycle ----

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "livemig", "sim", "run", "--scenario", str(self.scenario),
               "--kubeconfig", str(self.kubeconfig), "--metrics-port", str(self.metrics_port),
               "--outcome-log", str(self.outcome_log), "--ready-file", str(self.ready_file)]  # fmt: skip
        if self.time_scale is not None:
            cmd += ["--time-scale", str(self.time_scale)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        return cmd

    def start(self, *, timeout_s: float = 120.0) -> SimulatorProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise SimulatorError(f"simulator exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise SimulatorError(f"simulator not ready within {timeout_s:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)  # the ready file appears once set-up is done (bounded by the deadline)
        self.ready = json.loads(self.ready_file.read_text())
        return self

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """SIGTERM: the simulator removes its webhook registrations and exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, no clean-up (its webhook registrations stay until the next start replaces them)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    # ---- endpoints ----

    @property
    def control_url(self) -> str:
        return str(self.ready["control"])

    @property
    def metrics_url(self) -> str:
        return str(self.ready["metrics"])

    @property
    def target(self) -> str:
        """host:port for a Prometheus scrape job."""
        return f"127.0.0.1:{self.ready['metricsPort']}"

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.control_url}/state", timeout=10) as response:
            return dict(json.load(response))

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
            return str(response.read().decode())

    def post_fault(self, fault: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /faults; (HTTP status, JSON body): 201 with the parsed fault, or 400 naming the bad field."""
        request = urllib.request.Request(
            f"{self.control_url}/faults",
            data=json.dumps(fault).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), dict(json.load(response))
        except urllib.error.HTTPError as exc:
            return int(exc.code), dict(json.loads(exc.read()))

    def faults(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.control_url}/faults", timeout=10) as response:
            return list(json.load(response))

    # ---- outcome log ----

    def outcomes(self) -> list[dict[str, Any]]:
        if not self.outcome_log.exists():
            return []
        lines = self.outcome_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_outcomes(self, count: int, *, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Wait until the outcome log holds `count` records (or fail naming how many there are)."""
        deadline = time.monotonic() + timeout_s
        while len(records := self.outcomes()) < count:
            if self.process is not None and self.process.poll() is not None:
                raise SimulatorError(f"simulator exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise SimulatorError(f"{len(records)} of {count} outcomes after {timeout_s:.0f}s")
            time.sleep(0.1)  # the outcome log is a file: a poll bounded by the deadline
        return records
