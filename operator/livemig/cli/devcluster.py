"""`livemig devcluster up | down | env`: the local control plane in the background.

With `--scenario FILE`, `up` starts the whole embedded stack (docs/devcluster.md): etcd + kube-apiserver, livemig's
CRD and the test KubeVirt CRDs, the KubeVirt simulator on the scenario, Prometheus scraping it and, with
`--operator`, the livemig operator pointed at both; it returns once everything is ready.  `env` then also exports
LIVEMIG_PROMETHEUS_URL, LIVEMIG_SIM_URL and LIVEMIG_OPERATOR_METRICS_URL; `down` stops all of it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from livemig.cli.args import seed, time_scale
from livemig.core.errors import SpecError
from livemig.core.snapshot_parser import load_snapshot
from livemig.devcluster import DevCluster, DevClusterState


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "livemig" / "devcluster"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "devcluster",
        help="start, stop or print the environment of the local etcd + kube-apiserver",
        description="A real etcd and kube-apiserver on loopback ports with TLS and RBAC, built from Go modules.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for name, handler, text in (
        ("up", _up, "start etcd and kube-apiserver in the background; return once /readyz answers ok"),
        ("down", _down, "stop them and remove their data"),
        ("env", _env, "print `export KUBECONFIG=...` for a shell to eval"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--state-dir",
            type=Path,
            default=default_state_dir(),
            help="where the certificates, kubeconfig, logs and etcd data live (default: %(default)s)",
        )
        action.set_defaults(handler=handler)
        if name == "up":
            action.add_argument(
                "--scenario",
                type=Path,
                metavar="FILE",
                help="also start the simulator on FILE, Prometheus, and the CRDs",
            )
            action.add_argument(
                "--time-scale",
                type=time_scale,
                default=None,
                metavar="X",
                help="simulated seconds per wall second, 0.001 to 1e6 (with --scenario; default: the scenario's)",
            )
            action.add_argument("--seed", type=seed, default=None, metavar="N", help="the simulator's random seed")
            action.add_argument("--operator", action="store_true", help="also run the livemig operator")


STACK_FILE = "stack.json"


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.scenario is not None:
        return _up_stack(args, started)
    if args.operator or args.time_scale is not None or args.seed is not None:
        raise SpecError("--operator", "--operator, --time-scale and --seed need --scenario FILE")
    cluster = DevCluster(args.state_dir, attached=False)
    state = cluster.start()
    print(
        f"devcluster up in {time.monotonic() - started:.1f}s: {state.server}  (logs: {state.state_dir})",
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={shlex.quote(str(state.kubeconfig))}")
    print(f"export PATH={shlex.quote(str(state.bin_dir))}:$PATH")
    return 0


def _up_stack(args: argparse.Namespace, started: float) -> int:
    from livemig.cli.stack import LocalStack

    if not args.scenario.is_file():
        raise SpecError("--scenario", f"no such file: {args.scenario}")
    load_snapshot(args.scenario)  # a bad scenario is reported here, naming the field, before anything starts
    stack = LocalStack(
        args.state_dir / "stack",
        args.scenario,
        time_scale=args.time_scale,
        seed=args.seed,
        operator=args.operator,
        attached=False,
        cluster_dir=args.state_dir,
    )
    stack.start()
    assert stack.cluster is not None
    env = {**stack.env(), "PATH": f"{stack.cluster.bin_dir}:$PATH"}
    (args.state_dir / STACK_FILE).write_text(json.dumps({"pids": stack.pids(), "env": env}, indent=2))
    parts = "API server, CRDs, simulator, Prometheus" + (", operator" if args.operator else "")
    print(
        f"devcluster up in {time.monotonic() - started:.1f}s: {parts}  (logs: {args.state_dir / 'stack'})",
        file=sys.stderr,
    )
    _print_env(env)
    return 0


def _print_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        print(f"export {key}={value}" if key == "PATH" else f"export {key}={shlex.quote(value)}")


def _stop_stack(state_dir: Path) -> None:
    path = state_dir / STACK_FILE
    if not path.exists():
        return
    pids = json.loads(path.read_text()).get("pids", {})
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 20
    for pid in pids.values():
        while time.monotonic() < deadline and _alive(int(pid)):
            time.sleep(0.1)  # waiting for a process to exit, with a deadline
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return True


def _down(args: argparse.Namespace) -> int:
    _stop_stack(args.state_dir)
    DevCluster(args.state_dir, attached=False).stop()
    print(f"devcluster in {args.state_dir} stopped", file=sys.stderr)
    return 0


def _env(args: argparse.Namespace) -> int:
    state = DevClusterState.load(args.state_dir)
    stack = args.state_dir / STACK_FILE
    if stack.exists():
        _print_env(json.loads(stack.read_text())["env"])
        return 0
    print(f"export KUBECONFIG={shlex.quote(str(state.kubeconfig))}")
    print(f"export PATH={shlex.quote(str(state.bin_dir))}:$PATH")
    return 0
