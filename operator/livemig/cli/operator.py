"""`livemig operator run`: the Kopf operator in the foreground.

Watches livemig MigrationPolicies, the VMIs, VMIMs, Nodes, Namespaces and the KubeVirt CR, queries Prometheus, plans
with the model and creates KubeVirt migrations (docs/operator.md).  In-cluster credentials unless `--kubeconfig` or
$KUBECONFIG says otherwise.  SIGTERM stops it.  A bad flag or an unreachable API server: one line, exit 2.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from typing import Any

from livemig.cli.args import integer, port, rate
from livemig.core.errors import SpecError

_PEERING_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise argparse.ArgumentTypeError(f"must be an http(s):// URL, not {value!r}")
    return value


def _peering(value: str) -> str:
    if not _PEERING_NAME.match(value) or len(value) > 253:
        raise argparse.ArgumentTypeError(f"must be a Kubernetes object name, not {value!r}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("operator", help="run the livemig operator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="operator_command", metavar="COMMAND")
    commands.required = True
    run_parser = commands.add_parser("run", help="run the operator in the foreground", description=__doc__)
    run_parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig (default: $KUBECONFIG, else in-cluster)")
    run_parser.add_argument(
        "--prometheus-url",
        type=_url,
        metavar="URL",
        default=os.environ.get("LIVEMIG_PROMETHEUS_URL"),
        help="Prometheus base URL (default: $LIVEMIG_PROMETHEUS_URL); policies may override it",
    )
    run_parser.add_argument("--metrics-port", type=port, default=8080, metavar="N", help="/metrics port (0 = any free)")
    run_parser.add_argument(
        "--health-port", type=port, default=8081, metavar="N", help="Kopf's liveness endpoint /healthz (0 = any free)"
    )
    run_parser.add_argument("--bind", default="0.0.0.0", metavar="ADDRESS", help="address of both endpoints")
    run_parser.add_argument(
        "--default-migration-bandwidth",
        type=rate(),
        default=10e9 / 8,
        metavar="RATE",
        help="per-node migration bandwidth without annotation or measurement (default: 10Gbit)",
    )
    peering = run_parser.add_mutually_exclusive_group()
    peering.add_argument("--standalone", action="store_true", help="no peering (one replica only; the default)")
    peering.add_argument(
        "--peering",
        type=_peering,
        metavar="NAME",
        help="Kopf cluster-wide peering object NAME (for several replicas: only one acts)",
    )
    run_parser.add_argument(
        "--priority",
        type=integer(minimum=-(2**31), maximum=2**31 - 1),
        default=None,
        metavar="N",
        help="peering priority: the highest acts (default: random per process; equal priorities pause all)",
    )
    run_parser.add_argument("--log-format", choices=("json", "text"), default="text")
    run_parser.add_argument("--ready-file", metavar="PATH", help=argparse.SUPPRESS)
    run_parser.add_argument("--crash-at", choices=("after-kv-policy", "after-vmim"), help=argparse.SUPPRESS)
    run_parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from livemig.controller.app import StartupError
    from livemig.controller.app import run as run_operator
    from livemig.controller.settings import (
        ConnectionSettings,
        EndpointSettings,
        ModelSettings,
        OperatorSettings,
        PeeringSettings,
    )

    if args.kubeconfig and not os.path.isfile(args.kubeconfig):
        raise SpecError("--kubeconfig", f"no such file: {args.kubeconfig}")
    settings = OperatorSettings(
        connection=ConnectionSettings(kubeconfig=args.kubeconfig, prometheus_url=args.prometheus_url),
        endpoints=EndpointSettings(args.metrics_port, args.health_port, args.bind, args.ready_file),
        peering=PeeringSettings(
            standalone=args.peering is None,
            name=args.peering,
            priority=args.priority if args.priority is not None else secrets.randbelow(2**31 - 1) + 1,
        ),
        model=ModelSettings(default_bandwidth_bps=args.default_migration_bandwidth),
        log_format=args.log_format,
        crash_at=args.crash_at,
    )
    try:
        run_operator(settings)
    except StartupError as exc:
        print(f"livemig operator run: error: {exc}", file=sys.stderr)
        return 2
    return 0
