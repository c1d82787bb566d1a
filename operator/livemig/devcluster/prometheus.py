"""Debian's Prometheus (`/usr/bin/prometheus`, `apt-get install -y --no-install-recommends prometheus`) on a free
loopback port with a generated configuration, for tests, the demo and the benchmarks.

    with Prometheus(state_dir, targets=["127.0.0.1:9100"]) as prom:
        prom.wait_for('up{job="livemig-sim"} == 1')
        print(prom.query("rate(node_pressure_cpu_waiting_seconds_total[1m])"))

The scrape job keeps the targets' own `node`/`instance` labels (`honor_labels: true`), which the simulator's node
series need (docs/simulator.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from livemig.core.errors import LivemigError

DEFAULT_BINARY = "/usr/bin/prometheus"
JOB = "livemig-sim"


class PrometheusError(LivemigError):
    """Prometheus is missing, did not start, or a query failed."""


def prometheus_binary() -> Path:
    """The Prometheus binary: $LIVEMIG_PROMETHEUS, /usr/bin/prometheus, or `prometheus` on PATH."""
    for candidate in (os.environ.get("LIVEMIG_PROMETHEUS"), DEFAULT_BINARY, shutil.which("prometheus")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise PrometheusError(
        "no prometheus binary (install Debian's: apt-get install -y --no-install-recommends prometheus)"
    )


def scrape_config(targets: Sequence[str], *, interval: str = "1s", job: str = JOB) -> dict[str, Any]:
    """The generated prometheus.yml: one job scraping `targets` with honor_labels."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "honor_labels": True,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """One Prometheus server process on 127.0.0.1 with its data in `state_dir`."""

    def __init__(
        self,
        state_dir: Path,
        targets: Sequence[str] = (),
        *,
        interval: str = "1s",
        lookback_delta: str = "15s",
        binary: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.targets = list(targets)
        self.interval = interval
        self.lookback_delta = lookback_delta
        self.binary = binary
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "prometheus.yml"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "prometheus.log"

    def _write_config(self) -> None:
        self.config_file.write_text(yaml.safe_dump(scrape_config(self.targets, interval=self.interval)))

    def start(self, *, timeout_s: float = 60.0) -> Prometheus:
        binary = self.binary or prometheus_binary()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        command = [
            str(binary),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=2h",
            f"--query.lookback-delta={self.lookback_delta}",
        ]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while not self._ready():
            if self.process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise PrometheusError(f"prometheus exited with {self.process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise PrometheusError(f"prometheus not ready within {timeout_s:.0f}s (log: {self.log_file})")
            time.sleep(delay)  # waiting for /-/ready with a deadline
            delay = min(delay * 1.5, 0.5)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def set_targets(self, targets: Sequence[str]) -> None:
        """Replace the scrape targets and reload the configuration (POST /-/reload)."""
        self.targets = list(targets)
        self._write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if int(response.status) != 200:
                raise PrometheusError(f"reload answered {response.status}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- queries ----

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; the `data.result` list (`[{"metric": {...}, "value": [ts, "v"]}]`)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"query {promql!r} failed: {exc.read().decode(errors='replace')}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {body}")
        return list(body["data"]["result"])

    def wait_for(self, promql: str, *, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Wait until `promql` returns at least one series (e.g. `up{job="livemig-sim"} == 1`); return them."""
        deadline = time.monotonic() + timeout_s
        delay = 0.2
        while True:
            with contextlib.suppress(PrometheusError):
                result = self.query(promql)
                if result:
                    return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"no result for {promql!r} within {timeout_s:.0f}s")
            time.sleep(delay)  # Prometheus has no watch API: a deadline-bounded poll of the query
            delay = min(delay * 1.5, 1.0)
