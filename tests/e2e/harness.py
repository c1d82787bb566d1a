"""Small typed helpers for the kind end-to-end suite: prerequisites, kind, kubectl, downloads, watches, manifests.

Every wait has a deadline and waits for a condition (kubectl wait, a watch stream, or polling the API); nothing sleeps
for a fixed time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import queue
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from . import kubevirt_expectations as kv

Runner = Callable[..., "subprocess.CompletedProcess[str]"]

REPO_ROOT = Path(__file__).resolve().parents[2]
KIND_CONFIG = REPO_ROOT / "kind-config.yaml"

#: kind-config.yaml's node image (kindest/node:v1.34.0) was published with kind v0.30.0.
MIN_KIND_VERSION = (0, 30, 0)


class CommandError(RuntimeError):
    """A command failed; the message carries the command line, exit code and stderr."""

    def __init__(self, argv: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.argv = list(argv)
        self.returncode = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        super().__init__(
            f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip() or result.stdout.strip()}"
        )


# --- prerequisites ------------------------------------------------------------------------------------------------


def missing_prerequisites(which: Callable[[str], str | None] = shutil.which, run: Runner = subprocess.run) -> list[str]:
    """Why the suite cannot run on this machine (empty: it can): a Docker engine, kind >= v0.30.0, kubectl."""
    problems = [_docker_problem(which, run), _kind_problem(which, run)]
    if which("kubectl") is None:
        problems.append("kubectl not found on PATH")
    return [p for p in problems if p is not None]


def _docker_problem(which: Callable[[str], str | None], run: Runner) -> str | None:
    if which("docker") is None:
        return "docker CLI not found on PATH"
    try:
        info = run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "no Docker engine: `docker info` did not answer within 30 s"
    if info.returncode != 0 or not info.stdout.strip():
        detail = (info.stderr.strip().splitlines() or ["no server version"])[-1]
        return f"no Docker engine: `docker info` failed ({detail})"
    return None


def _kind_problem(which: Callable[[str], str | None], run: Runner) -> str | None:
    want = "v" + ".".join(map(str, MIN_KIND_VERSION))
    if which("kind") is None:
        return f"kind not found on PATH (need >= {want})"
    version = run(["kind", "version"], capture_output=True, text=True, timeout=30)
    found = parse_kind_version(version.stdout)
    if found is None or found < MIN_KIND_VERSION:
        return f"kind >= {want} needed for kind-config.yaml's node image; `kind version`: {version.stdout.strip()!r}"
    return None


def parse_kind_version(text: str) -> tuple[int, int, int] | None:
    """`kind v0.30.0 go1.24.6 linux/amd64` -> (0, 30, 0)."""
    match = re.search(r"\bv(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


# --- kubectl ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig."""

    kubeconfig: Path
    binary: str = "kubectl"

    def argv(self, *args: str) -> list[str]:
        return [self.binary, f"--kubeconfig={self.kubeconfig}", *args]

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout_s: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*args)
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout_s)
        if check and result.returncode != 0:
            raise CommandError(argv, result)
        return result

    def get(self, *args: str) -> dict[str, Any]:
        """`kubectl get ARGS -o json` as a dict."""
        return dict(json.loads(self.run("get", *args, "-o", "json").stdout))

    def create(self, manifest: Mapping[str, Any], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("create", "--validate=strict", "-f", "-", input=yaml.safe_dump(dict(manifest)), check=check)

    def wait(self, *targets: str, condition: str, timeout_s: int, namespace: str | None = None) -> None:
        """`kubectl wait --for=CONDITION` with a deadline (condition=X, jsonpath=..., delete)."""
        ns = ["-n", namespace] if namespace else []
        self.run("wait", *ns, *targets, f"--for={condition}", f"--timeout={timeout_s}s", timeout_s=timeout_s + 30)


def wait_until(probe: Callable[[], list[str]], *, timeout_s: float, what: str, interval_s: float = 2.0) -> None:
    """Poll the API through `probe` (returns the problems left) until it returns none, or fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        problems = probe()
        if not problems:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: still not true after {timeout_s:.0f} s: " + "; ".join(problems))
        time.sleep(interval_s)  # the poll period, not a stand-in for a condition: the loop ends on the condition


# --- kind ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindCluster:
    name: str
    kubeconfig: Path

    def create(self, config: Path, *, wait_s: int) -> None:
        argv = ["kind", "create", "cluster", "--name", self.name, "--config", str(config)]
        argv += ["--kubeconfig", str(self.kubeconfig), "--wait", f"{wait_s}s"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=wait_s + 600)
        if result.returncode != 0:
            raise CommandError(argv, result)

    def delete(self) -> None:
        """Delete the cluster's node containers (kind does nothing, successfully, when none exist)."""
        argv = ["kind", "delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise CommandError(argv, result)


def kind_node_roles(config: Mapping[str, Any]) -> list[str]:
    return [str(node.get("role", "control-plane")) for node in config.get("nodes") or []]


# --- downloads ----------------------------------------------------------------------------------------------------


def download(url: str, dest: Path, *, sha256: str | None = None, timeout_s: float = 120) -> bytes:
    """Fetch `url` into `dest`; with `sha256`, refuse bytes with another digest."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        data: bytes = response.read()
    check_digest(data, sha256, what=url)
    dest.write_bytes(data)
    return data


def check_digest(data: bytes, sha256: str | None, *, what: str) -> None:
    if sha256 is None:
        return
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(f"{what}: sha256 {digest} != pinned {sha256}")


# --- watching a VMIM's phase --------------------------------------------------------------------------------------


class PhaseWatch:
    """`kubectl get -w` on one VMIM (started before it exists), collecting the phases the stream reports."""

    def __init__(self, kubectl: Kubectl, namespace: str, name: str) -> None:
        self._argv = kubectl.argv(
            "get", "vmim", "-n", namespace, "--field-selector", f"metadata.name={name}", "--watch",
            "-o", 'jsonpath={.metadata.name}{" "}{.status.phase}{"\\n"}',  # kubectl -w pipes this through a tabwriter
        )  # fmt: skip
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.phases: list[str] = []
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> PhaseWatch:
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_final(self, timeout_s: float) -> str:
        """Block until the stream reports a final phase (returned); fail at the deadline or if the watch ends."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no final phase within {timeout_s:.0f} s; phases seen: {self.phases}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the watch ended ({self._stderr()}); phases seen: {self.phases}")
            fields = line.split()  # "<name> <phase>", or just "<name>" before the first status write
            phase = fields[1] if len(fields) > 1 else ""
            self.phases.append(phase)
            if phase in kv.FINAL_PHASES:
                return phase

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        return self._proc.stderr.read().strip()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


# --- manifests ----------------------------------------------------------------------------------------------------


def kubevirt_cr_for_emulation(cr: Mapping[str, Any]) -> dict[str, Any]:
    """The release's KubeVirt CR with software emulation on (no /dev/kvm in kind's node containers)."""
    if cr.get("kind") != "KubeVirt" or (cr.get("metadata") or {}).get("name") != kv.KUBEVIRT_CR_NAME:
        raise ValueError(f"not the KubeVirt CR {kv.KUBEVIRT_CR_NAME!r}: kind={cr.get('kind')!r}")
    result = copy.deepcopy(dict(cr))
    spec = result.setdefault("spec", {})
    configuration = spec.setdefault("configuration", {}) or {}
    spec["configuration"] = configuration
    developer = configuration.setdefault("developerConfiguration", {}) or {}
    configuration["developerConfiguration"] = developer
    developer["useEmulation"] = True
    return result


def vmi_manifest(name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A small live-migratable VMI: containerDisk (copied with the VM), masquerade on the pod network."""
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "domain": {
                "devices": {
                    "disks": [{"name": "containerdisk", "disk": {"bus": "virtio"}}],
                    "interfaces": [{"name": "default", "masquerade": {}}],
                },
                "resources": {"requests": {"memory": "128Mi"}},
            },
            "networks": [{"name": "default", "pod": {}}],
            "volumes": [{"name": "containerdisk", "containerDisk": {"image": kv.CONTAINER_DISK_IMAGE}}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def vmim_manifest(
    name: str, namespace: str, vmi_name: str, *, added_node_selector: Mapping[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"vmiName": vmi_name}
    if added_node_selector:
        spec["addedNodeSelector"] = dict(added_node_selector)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def kv_migration_policy_manifest(name: str, vmi_selector: Mapping[str, str], **fields: Any) -> dict[str, Any]:
    """KubeVirt's MigrationPolicy (cluster-scoped; selectors are plain maps), with the given spec fields."""
    return {
        "apiVersion": "migrations.kubevirt.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": name},
        "spec": {"selectors": {"virtualMachineInstanceSelector": dict(vmi_selector)}, **fields},
    }
