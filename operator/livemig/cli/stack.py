"""The embedded local stack, composed: etcd + kube-apiserver, the CRDs, the KubeVirt simulator on a scenario,
Prometheus scraping it, and (optionally) the livemig operator pointed at both.

Used by `livemig devcluster up --scenario`, the demo, the operator's integration tests and its benchmark, so all
four start the same thing the same way.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livemig.controller.process import OperatorProcess
from livemig.core.errors import LivemigError
from livemig.devcluster import DevCluster
from livemig.devcluster.binaries import repository_root
from livemig.devcluster.prometheus import Prometheus
from livemig.sim.process import SimulatorProcess


class StackError(LivemigError):
    """A part of the local stack did not come up."""


def crd_files() -> list[Path]:
    """KubeVirt's test CRDs and livemig's, from the checkout (or the installed package's copies)."""
    root = repository_root()
    if root is None:
        raise StackError("the local stack needs a livemig checkout (hack/kubevirt-crds and crds/)")
    return sorted((root / "hack" / "kubevirt-crds").glob("*.yaml")) + sorted((root / "crds").glob("*.yaml"))


def install_crds(cluster: DevCluster) -> None:
    for path in crd_files():
        cluster.kubectl("apply", "--server-side", "-f", str(path))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


@dataclass
class LocalStack:
    """Start with `start()` (or as a context manager); every part is stopped by `stop()`."""

    work_dir: Path
    scenario: Path
    time_scale: float | None = 60.0
    seed: int | None = None
    operator: bool = True
    attached: bool = True  # False: the control plane outlives this process (devcluster up)
    operator_args: tuple[str, ...] = ()
    scrape_interval: str = "1s"
    cluster_dir: Path | None = None  # default: work_dir / "cluster"
    cluster: DevCluster | None = None
    sim: SimulatorProcess | None = None
    prometheus: Prometheus | None = None
    operator_process: OperatorProcess | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> LocalStack:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.cluster = DevCluster(self.cluster_dir or self.work_dir / "cluster", attached=self.attached)
            self.cluster.start()
            if self.attached:
                self._stack.callback(self.cluster.stop)
            install_crds(self.cluster)
            self.sim = SimulatorProcess(
                self.scenario,
                self.cluster.kubeconfig,
                work_dir=self.work_dir,
                time_scale=self.time_scale,
                seed=self.seed,
            )
            self.sim.start(timeout_s=180)
            self._stack.callback(self.sim.stop)
            self.prometheus = Prometheus(
                self.work_dir / "prometheus", targets=[self.sim.target], interval=self.scrape_interval
            )
            self.prometheus.start()
            self._stack.callback(self.prometheus.stop)
            self.prometheus.wait_for('up{job="livemig-sim"} == 1', timeout_s=60)
            if self.operator:
                self.start_operator()
        except BaseException:
            self.stop()
            raise
        return self

    def start_operator(self, *extra: str) -> OperatorProcess:
        assert self.cluster is not None
        assert self.prometheus is not None
        if self.operator_process is None:
            self.operator_process = OperatorProcess(
                self.cluster.kubeconfig,
                work_dir=self.work_dir,
                prometheus_url=self.prometheus.url,
                extra_args=(*self.operator_args, *extra),
            )
            self._stack.callback(self.operator_process.stop)
        self.operator_process.start()
        return self.operator_process

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pids(self) -> dict[str, int]:
        """The background processes of the stack (besides the control plane), for `devcluster down`."""
        out: dict[str, int] = {}
        for name, part in (("simulator", self.sim), ("operator", self.operator_process)):
            if part is not None and part.process is not None:
                out[name] = part.process.pid
        if self.prometheus is not None and self.prometheus.process is not None:
            out["prometheus"] = self.prometheus.process.pid
        return out

    def env(self) -> dict[str, str]:
        assert self.cluster is not None
        assert self.sim is not None
        assert self.prometheus is not None
        out = {
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "LIVEMIG_PROMETHEUS_URL": self.prometheus.url,
            "LIVEMIG_SIM_URL": self.sim.control_url,
        }
        if self.operator_process is not None and self.operator_process.ready:
            out["LIVEMIG_OPERATOR_METRICS_URL"] = self.operator_process.metrics_url
        return out

    # --- reading the cluster (tests, demo, benchmark)

    def kubectl_json(self, *args: str) -> Any:
        assert self.cluster is not None
        return json.loads(self.cluster.kubectl(*args, "-o", "json").stdout)

    def wait_vmis_running(self, count: int, *, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            items = self.kubectl_json("get", "vmis", "-A")["items"]
            if sum(1 for v in items if (v.get("status") or {}).get("phase") == "Running") >= count:
                return
            time.sleep(0.5)  # polling the API for a condition, with a deadline
        raise StackError(f"the simulator did not bring {count} VMIs to Running in {timeout_s:.0f}s")
