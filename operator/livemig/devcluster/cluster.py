"""A real etcd + kube-apiserver on loopback, with TLS, RBAC and a service-account issuer.

Used by the pytest session fixture, `livemig devcluster up|down|env` and the demo.  No controller-manager,
scheduler or kubelet runs: namespaces never finish deleting and no Pods start (see docs/devcluster.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from livemig.core.errors import LivemigError
from livemig.devcluster import pki
from livemig.devcluster.binaries import control_plane_bin_dir

STATE_FILE = "devcluster.json"
ADMIN_USER = "livemig-admin"


class DevClusterError(LivemigError):
    """The local control plane did not start, or is not running where it was expected."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: kill it when the process that started it dies (no orphans).

    SIGKILL, not SIGTERM: both processes get the signal at once, and a kube-apiserver asked to shut down gracefully
    while its etcd is going away can take minutes.  Its data is throw-away; the orderly path is `stop()`.
    """
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _default_route_exists() -> bool:
    with contextlib.suppress(OSError), open("/proc/net/route") as routes:
        return any(line.split()[1] == "00000000" for line in routes.readlines()[1:] if len(line.split()) > 1)
    return False


@dataclass(frozen=True, slots=True)
class DevClusterState:
    state_dir: Path
    bin_dir: Path
    etcd_port: int
    api_port: int
    etcd_pid: int
    apiserver_pid: int

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    def to_json(self) -> str:
        return json.dumps(
            {
                "state_dir": str(self.state_dir),
                "bin_dir": str(self.bin_dir),
                "etcd_port": self.etcd_port,
                "api_port": self.api_port,
                "etcd_pid": self.etcd_pid,
                "apiserver_pid": self.apiserver_pid,
            },
            indent=2,
        )

    @classmethod
    def load(cls, state_dir: Path) -> DevClusterState:
        path = state_dir / STATE_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise DevClusterError(f"no devcluster state in {state_dir} (is it up?)") from None
        return cls(
            state_dir=Path(raw["state_dir"]),
            bin_dir=Path(raw["bin_dir"]),
            etcd_port=int(raw["etcd_port"]),
            api_port=int(raw["api_port"]),
            etcd_pid=int(raw["etcd_pid"]),
            apiserver_pid=int(raw["apiserver_pid"]),
        )


class DevCluster:
    """Starts and stops the control plane.  `attached=True` ties the processes' lives to this process."""

    def __init__(self, state_dir: Path | None = None, *, bin_dir: Path | None = None, attached: bool = True) -> None:
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="livemig-devcluster-")).resolve()
        self._bin_dir = bin_dir
        self._attached = attached
        self._processes: list[subprocess.Popen[bytes]] = []
        self._names: dict[int, str] = {}
        self.state: DevClusterState | None = None

    # ---- public -----------------------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self._require_state().kubeconfig

    @property
    def server(self) -> str:
        return self._require_state().server

    @property
    def bin_dir(self) -> Path:
        return self._require_state().bin_dir

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the built kubectl against this cluster, as the admin user unless another kubeconfig is given."""
        state = self._require_state()
        command = [str(state.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig or state.kubeconfig), *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise DevClusterError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def write_token_kubeconfig(self, token: str, path: Path, *, user: str = "token-user") -> Path:
        """A kubeconfig that authenticates with a bearer token only (e.g. a ServiceAccount's TokenRequest token)."""
        state = self._require_state()
        _write_kubeconfig(path, state.server, state.pki_dir / "ca.crt", {"token": token}, user)
        return path

    def start(self, *, timeout_s: float = 90.0) -> DevClusterState:
        bin_dir = self._bin_dir or control_plane_bin_dir()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if (self.state_dir / STATE_FILE).exists():
            raise DevClusterError(f"{self.state_dir} already holds a devcluster; run `livemig devcluster down` first")
        try:
            return self._start(bin_dir, timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops both processes (SIGTERM, then SIGKILL) and removes etcd's data and, if ours, the state dir."""
        pids = [p.pid for p in reversed(self._processes)]  # started etcd first: stop the API server first
        if not pids and self.state is None:
            with contextlib.suppress(DevClusterError):
                self.state = DevClusterState.load(self.state_dir)
        if self.state is not None:
            pids = pids or [self.state.apiserver_pid, self.state.etcd_pid]
        for pid in pids:  # API server first, so it does not log etcd errors on the way down
            _terminate(pid, self._processes)
        self._processes.clear()
        # Certificates, keys, kubeconfig, logs and etcd data: all of it is throw-away.
        if self._own_state_dir or (self.state_dir / STATE_FILE).exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state = None

    def __enter__(self) -> DevCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- internals --------------------------------------------------------------------------------------------
    def _require_state(self) -> DevClusterState:
        if self.state is None:
            self.state = DevClusterState.load(self.state_dir)
        return self.state

    def _spawn(self, name: str, command: Sequence[str]) -> subprocess.Popen[bytes]:
        log = open(self.state_dir / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it from here
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if self._attached else None,
        )
        log.close()
        self._processes.append(process)
        self._names[process.pid] = name
        return process

    def _start(self, bin_dir: Path, timeout_s: float) -> DevClusterState:
        pki_dir = self.state_dir / "pki"
        pki_dir.mkdir(exist_ok=True)
        ca, ca_files = pki.create_ca(pki_dir, "ca")
        pki.issue_cert(
            ca,
            pki_dir,
            "apiserver",
            "kube-apiserver",
            server=True,
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=("127.0.0.1", "10.0.0.1"),
        )
        admin = pki.issue_cert(ca, pki_dir, "admin", ADMIN_USER, organizations=("system:masters",))
        service_account = pki.create_service_account_keys(pki_dir)

        deadline = time.monotonic() + timeout_s
        etcd_port, peer_port, api_port = free_loopback_port(), free_loopback_port(), free_loopback_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--data-dir",
                str(self.state_dir / "etcd-data"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                "--quota-backend-bytes=4294967296",
            ],
        )
        self._wait(lambda: _http_ok(f"{etcd_url}/health"), deadline, "etcd", etcd)

        server = f"https://127.0.0.1:{api_port}"
        apiserver_args = [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={pki_dir}",
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={ca_files.cert_path}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={service_account.cert_path}",
            f"--service-account-signing-key-file={service_account.key_path}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            "--profiling=false",
        ]
        if not _default_route_exists():
            # The advertise address defaults to the default-route interface; loopback is only valid without the
            # endpoint reconciler (it would publish it in the `kubernetes` Service's endpoints).
            apiserver_args += ["--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"]
        apiserver = self._spawn("kube-apiserver", apiserver_args)
        state = DevClusterState(
            state_dir=self.state_dir,
            bin_dir=bin_dir,
            etcd_port=etcd_port,
            api_port=api_port,
            etcd_pid=etcd.pid,
            apiserver_pid=apiserver.pid,
        )
        _write_kubeconfig(
            state.kubeconfig,
            server,
            ca_files.cert_path,
            {"client-certificate": str(admin.cert_path), "client-key": str(admin.key_path)},
            ADMIN_USER,
        )
        tls = ssl.create_default_context(cafile=str(ca_files.cert_path))
        tls.load_cert_chain(str(admin.cert_path), str(admin.key_path))
        self._wait(lambda: _http_ok(f"{server}/readyz", tls), deadline, "kube-apiserver /readyz", apiserver)
        self._wait(
            lambda: _http_ok(f"{server}/api/v1/namespaces/default", tls), deadline, "namespace default", apiserver
        )
        (self.state_dir / STATE_FILE).write_text(state.to_json())
        self.state = state
        return state

    def restart_apiserver(self, *, timeout_s: float = 90.0) -> None:
        """Kill kube-apiserver (SIGKILL) and start it again on the same port and storage: an API-server restart for
        the reliability tests. Only for a cluster this process started."""
        state = self._require_state()
        old = next((p for p in self._processes if p.pid == state.apiserver_pid), None)
        if old is None:
            raise DevClusterError("restart_apiserver: this process did not start the control plane")
        old.kill()
        old.wait(timeout=30)
        self._processes.remove(old)
        apiserver = self._spawn("kube-apiserver", [str(a) for a in old.args])  # type: ignore[union-attr]
        pki_dir = state.pki_dir
        tls = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        tls.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        deadline = time.monotonic() + timeout_s
        self._wait(lambda: _http_ok(f"{state.server}/readyz", tls), deadline, "kube-apiserver /readyz", apiserver)
        self.state = replace(state, apiserver_pid=apiserver.pid)
        (self.state_dir / STATE_FILE).write_text(self.state.to_json())

    def pause_etcd(self, seconds: float) -> None:
        """Stop etcd (SIGSTOP) for `seconds`, then let it go on: an etcd outage the API server sees as timeouts."""
        state = self._require_state()
        os.kill(state.etcd_pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)  # the outage's length is the point here, not a wait for a condition
        finally:
            os.kill(state.etcd_pid, signal.SIGCONT)

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str, process: subprocess.Popen[bytes]) -> None:
        delay = 0.05
        while True:
            if process.poll() is not None:
                log = self.state_dir / f"{self._names[process.pid]}.log"
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise DevClusterError(f"{what}: process exited with {process.returncode}\n{tail}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise DevClusterError(f"{what} not ready in time")
            time.sleep(delay)  # waiting for a readiness condition with a deadline, not standing in for one
            delay = min(delay * 1.5, 0.5)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _terminate(pid: int, processes: Sequence[subprocess.Popen[bytes]]) -> None:
    process = next((p for p in processes if p.pid == pid), None)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                return
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait(timeout=10)


def _write_kubeconfig(path: Path, server: str, ca_cert: Path, credentials: dict[str, str], user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "livemig-dev", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "livemig-dev", "context": {"cluster": "livemig-dev", "user": user}}],
        "current-context": "livemig-dev",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
