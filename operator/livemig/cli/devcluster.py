"""`livemig devcluster up | down | env`: the local control plane in the background."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

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


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    cluster = DevCluster(args.state_dir, attached=False)
    state = cluster.start()
    print(
        f"devcluster up in {time.monotonic() - started:.1f}s: {state.server}  (logs: {state.state_dir})",
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={shlex.quote(str(state.kubeconfig))}")
    print(f"export PATH={shlex.quote(str(state.bin_dir))}:$PATH")
    return 0


def _down(args: argparse.Namespace) -> int:
    DevCluster(args.state_dir, attached=False).stop()
    print(f"devcluster in {args.state_dir} stopped", file=sys.stderr)
    return 0


def _env(args: argparse.Namespace) -> int:
    state = DevClusterState.load(args.state_dir)
    print(f"export KUBECONFIG={shlex.quote(str(state.kubeconfig))}")
    print(f"export PATH={shlex.quote(str(state.bin_dir))}:$PATH")
    return 0
