"""`livemig operator run` as a child process, for the embedded stack, the demo, tests and benchmarks.

with OperatorProcess(kubeconfig, work_dir=tmp, prometheus_url=prom.url) as op:
    print(op.metrics_url)
    op.kill()      # SIGKILL, as a crash
    op.start()     # a new process picks up where the last one stopped
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livemig.core.errors import LivemigError


class OperatorProcessError(LivemigError):
    """The operator did not start, or exited."""


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        *,
        work_dir: Path,
        prometheus_url: str | None = None,
        name: str = "operator",
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.work_dir = Path(work_dir)
        self.prometheus_url = prometheus_url
        self.name = name
        self.extra_args = list(extra_args)
        self.env = env
        self.ready_file = self.work_dir / f"{name}.ready.json"
        self.log = self.work_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self.starts = 0

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "livemig",
            "operator",
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--metrics-port",
            "0",
            "--health-port",
            "0",
            "--bind",
            "127.0.0.1",
            "--log-format",
            "json",
            "--ready-file",
            str(self.ready_file),
        ]
        if self.prometheus_url:
            cmd += ["--prometheus-url", self.prometheus_url]
        if not any(a in ("--peering", "--standalone") for a in self.extra_args):
            cmd.append("--standalone")
        return cmd + self.extra_args

    def start(self, *, timeout_s: float = 60.0) -> OperatorProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout_s
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise OperatorProcessError(f"operator exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise OperatorProcessError(f"operator not ready within {timeout_s:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)  # the ready file appears once Kopf has started (bounded by the deadline)
        self.ready = json.loads(self.ready_file.read_text())
        return self

    def stop(self, *, timeout_s: float = 15.0) -> int | None:
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL: a crash, no clean-up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ready['metrics_port']}/metrics"

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            return str(response.read().decode())
