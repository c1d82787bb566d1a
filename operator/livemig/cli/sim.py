"""`livemig sim run`: the KubeVirt simulator against a real API server."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path

from livemig.cli.args import port, seed, time_scale
from livemig.core.errors import LivemigError, SpecError, SpecErrors


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulate KubeVirt's virt-controller and virt-handler against a real API server",
        description="Simulate KubeVirt (v1.8) live migrations on a real API server: objects, admission webhooks, "
        "phases, caps, timeouts, MigrationPolicies, Prometheus metrics and faults (docs/simulator.md).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="create the scenario's objects and simulate until interrupted")
    run.add_argument("--scenario", type=Path, required=True, help="scenario file (YAML or JSON)")
    run.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the API server (admin)")
    run.add_argument(
        "--metrics-port",
        type=port,
        default=0,
        help="loopback port for /metrics and the control "
        "endpoint (default: any free port, printed and written to --ready-file)",
    )
    run.add_argument(
        "--time-scale",
        type=time_scale,
        default=None,
        help="simulated seconds per wall second, 0.001 to 1e6 (overrides simulation.timeScale)",
    )
    run.add_argument("--seed", type=seed, default=None, help="random seed (overrides simulation.seed)")
    run.add_argument(
        "--outcome-log",
        type=Path,
        default=None,
        help="append one JSON line per finished migration here (default: stdout)",
    )
    run.add_argument("--ready-file", type=Path, default=None, help="write the endpoints as JSON here when ready")
    run.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    run.set_defaults(handler=_run)
    check = actions.add_parser("check", help="validate a scenario file (no cluster needed) and summarize it")
    check.add_argument("--scenario", type=Path, required=True, help="scenario file (YAML or JSON)")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from livemig.sim.scenario import load_scenario
    from livemig.sim.state import Simulation

    scenario = load_scenario(args.scenario)
    Simulation(scenario, epoch_s=0.0)  # also refuses backends that are not available here
    snap = scenario.snapshot
    print(
        f"{args.scenario}: {len(snap.nodes)} nodes, {len(snap.vmis)} VMIs in {len(scenario.namespaces)} namespaces, "
        f"{len(scenario.policies)} KubeVirt MigrationPolicies, {len(scenario.faults)} faults, "
        f"time scale {scenario.simulation.time_scale:g}x"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from livemig.sim.engine import Engine, EngineOptions
    from livemig.sim.scenario import load_scenario, real_time_problems

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    scenario = load_scenario(args.scenario)
    settings = scenario.simulation
    if args.time_scale is not None:
        settings = dataclasses.replace(settings, time_scale=args.time_scale)
        problems = real_time_problems(scenario.snapshot, args.time_scale, "--time-scale")
        if problems:
            raise SpecErrors(problems)
    if args.seed is not None:
        settings = dataclasses.replace(settings, seed=args.seed)
    scenario = dataclasses.replace(scenario, simulation=settings)
    if not args.kubeconfig.is_file():
        raise SpecError("--kubeconfig", f"no such file: {args.kubeconfig}")
    options = EngineOptions(
        kubeconfig=args.kubeconfig,
        metrics_port=args.metrics_port,
        outcome_log=args.outcome_log,
        ready_file=args.ready_file,
    )

    async def main() -> None:
        engine = Engine(scenario, options)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        await engine.run()

    try:
        asyncio.run(main())
    except LivemigError as exc:
        if isinstance(exc, SpecError | SpecErrors):
            raise
        print(f"livemig sim: error: {exc}", file=sys.stderr)
        return 1
    return 0
