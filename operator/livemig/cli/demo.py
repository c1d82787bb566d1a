"""`livemig demo`: the livemig operator at work on the embedded local stack, end to end.

It starts the stack `livemig devcluster up --scenario --operator` starts (etcd + kube-apiserver, the CRDs, the
KubeVirt simulator on the small scenario, Prometheus scraping it, the operator), applies a maintenance policy and
marks a node for maintenance, shows the operator's progress live from the policy's status, then applies a
load-balancing policy and shows what it decides.  It ends with predicted against simulated time and downtime per
migration, what Prometheus counted, and a timeline PNG.  The demo creates no migration itself: the operator does.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from livemig.cli.args import duration, time_scale
from livemig.cli.stack import LocalStack
from livemig.core.errors import SpecError
from livemig.core.policy import load_policy
from livemig.core.snapshot_parser import load_snapshot
from livemig.devcluster.binaries import repository_root

MAINTENANCE_LABEL = "livemig.io/maintenance"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the operator draining a node and balancing load on the embedded local stack",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    root = repository_root() or Path.cwd()
    policies = root / "examples" / "policies"
    parser.add_argument("--scenario", type=Path, default=root / "examples" / "scenarios" / "small.yaml")
    parser.add_argument(
        "--policy",
        type=Path,
        default=policies / "maintenance-drain.yaml",
        help="the maintenance policy (default: %(default)s)",
    )
    parser.add_argument(
        "--balance-policy",
        type=Path,
        default=policies / "load-balancing-demo.yaml",
        help="the load-balancing policy applied after the drain ('' to skip)",
    )
    parser.add_argument("--node", default="node-03", help="the node to drain (default: %(default)s)")
    parser.add_argument(
        "--time-scale", type=time_scale, default=60.0, help="simulated seconds per wall second (0.001 to 1e6)"
    )
    parser.add_argument(
        "--timeout",
        type=duration(allow_zero=False),
        default=300.0,
        help="wall-clock time to wait for the drain (300s; a bare number is seconds)",
    )
    parser.add_argument(
        "--timeline",
        type=Path,
        default=Path("livemig-demo-timeline.png"),
        help="where to write the timeline PNG (default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running until Ctrl-C")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if repository_root() is None:
        raise SpecError("demo", "run it from a livemig checkout (it needs hack/ and examples/)")
    snapshot = load_snapshot(args.scenario)
    if args.node not in {node.name for node in snapshot.nodes}:
        raise SpecError("--node", f"no node {args.node!r} in {args.scenario}")
    maintenance = load_policy(args.policy)
    balance = load_policy(args.balance_policy) if str(args.balance_policy) else None

    with tempfile.TemporaryDirectory(prefix="livemig-demo-") as tmp:
        step(
            "starting etcd + kube-apiserver, the CRDs, the KubeVirt simulator "
            f"({args.scenario.name} at {args.time_scale:g}x), Prometheus and the livemig operator"
        )
        with LocalStack(Path(tmp), args.scenario, time_scale=args.time_scale) as stack:
            stack.wait_vmis_running(len(snapshot.vmis))
            assert stack.cluster is not None
            assert stack.sim is not None
            step(
                f"applying {maintenance.name} ({args.policy.name}) and labelling {args.node} "
                f"{MAINTENANCE_LABEL}=true: the operator cordons and drains it"
            )
            stack.cluster.kubectl("apply", "-f", str(args.policy))
            stack.cluster.kubectl("label", "node", args.node, f"{MAINTENANCE_LABEL}=true", "--overwrite")
            drained = watch_drain(stack, maintenance.name, args.node, deadline=time.monotonic() + args.timeout)
            if balance is not None:
                step(f"applying {balance.name} ({args.balance_policy.name}): the operator balances CPU load")
                stack.cluster.kubectl("apply", "-f", str(args.balance_policy))
                watch_balance(stack, balance.name, deadline=time.monotonic() + 90)
            outcomes = stack.sim.outcomes()
            print_results(stack, outcomes)
            print_prometheus(stack)
            failed = [r for r in outcomes if r.get("result") != "Succeeded"]
            if write_timeline(outcomes, args.timeline):
                print(f"\ntimeline: {args.timeline}", file=sys.stderr)
            left = stack.kubectl_json("get", "vmis", "-A")["items"]
            on_node = [
                f"{v['metadata']['namespace']}/{v['metadata']['name']}"
                for v in left
                if (v.get("status") or {}).get("nodeName") == args.node
            ]
            print(
                f"\nVMIs left on {args.node}: {len(on_node)} {on_node} (out of scope or not live-migratable)",
                file=sys.stderr,
            )
            print(f"failed migrations: {len(failed)}", file=sys.stderr)
            if args.keep:
                env = " ".join(f"{k}={v}" for k, v in stack.env().items())
                print(f"stack kept running: {env}  (Ctrl-C stops it)", file=sys.stderr)
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
            return 0 if drained and not failed else 1


def step(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def _status(stack: LocalStack, name: str) -> dict[str, Any]:
    try:
        return dict(stack.kubectl_json("get", "migrationpolicies.livemig.io", name).get("status") or {})
    except Exception:
        return {}


def progress_line(status: Mapping[str, Any], vmims: Sequence[Mapping[str, Any]], policy: str) -> str:
    """`done/planned, in flight (VMI technique), node states` from the policy's status and its VMIMs."""
    counters = status.get("counters") or {}
    plan = status.get("currentPlan") or {}
    moves = plan.get("moves") or []
    mine = [v for v in vmims if (v["metadata"].get("labels") or {}).get("livemig.io/policy") == policy]
    running = [v for v in mine if (v.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    flight = (
        ", ".join(f"{v['spec']['vmiName']} ({v['metadata']['labels'].get('livemig.io/technique')})" for v in running)
        or "-"
    )
    done = int(counters.get("migrationsSucceeded", 0))
    planned = done + sum(1 for m in moves if m.get("state") in ("Pending", "Running"))
    nodes = (
        ", ".join(
            f"{n['name']} {n['state']}" + (f" ({n.get('remaining')} left)" if n.get("remaining") else "")
            for n in status.get("nodes") or []
        )
        or "-"
    )
    failed = int(counters.get("migrationsFailed", 0)) + int(counters.get("migrationsAborted", 0))
    return f"  {done}/{max(planned, done)} done, {failed} failed, in flight: {flight}; nodes: {nodes}"


def watch_drain(stack: LocalStack, policy: str, node: str, *, deadline: float) -> bool:
    last = ""
    while time.monotonic() < deadline:
        status = _status(stack, policy)
        line = progress_line(status, stack.kubectl_json("get", "vmim", "-A")["items"], policy)
        if line != last:
            print(line, file=sys.stderr, flush=True)
            last = line
        state = next((n.get("state") for n in status.get("nodes") or [] if n.get("name") == node), None)
        if state == "Drained":
            step(f"{node} drained")
            return True
        time.sleep(0.5)  # polling the policy's status, with a deadline
    step(f"{node} not drained within the timeout")
    return False


def watch_balance(stack: LocalStack, policy: str, *, deadline: float) -> None:
    """Show the balancing policy's first decisions, and its migrations until they are done."""
    last, seen_evaluation = "", False
    while time.monotonic() < deadline:
        status = _status(stack, policy)
        evaluation = status.get("lastEvaluation") or {}
        if evaluation and not seen_evaluation:
            print(f"  evaluation: {evaluation.get('result')}: {evaluation.get('message')}", file=sys.stderr)
            seen_evaluation = evaluation.get("result") != "StaleMetrics"
        line = progress_line(status, stack.kubectl_json("get", "vmim", "-A")["items"], policy)
        if line != last:
            print(line, file=sys.stderr, flush=True)
            last = line
        plan_state = (status.get("currentPlan") or {}).get("state")
        if seen_evaluation and (plan_state in ("Completed", "Failed") or evaluation.get("result") == "NothingToDo"):
            return
        time.sleep(0.5)  # polling the policy's status, with a deadline


def print_results(stack: LocalStack, outcomes: Sequence[Mapping[str, Any]]) -> None:
    """Per migration the operator started: what livemig planned and predicted beside what the simulator did
    (`to` is where the VMI went, `planned` the target in the operator's plan)."""
    vmims = {
        f"{v['metadata']['namespace']}/{v['metadata']['name']}": v
        for v in stack.kubectl_json("get", "vmim", "-A")["items"]
    }
    print(
        f"\n{'VMI':26} {'policy':18} {'from':8} {'to':8} {'planned':8} {'technique':13} {'outcome':22} "
        f"{'time pred/sim':>15}  {'downtime pred/sim':>18}"
    )
    print("(predictions are the operator's, for the workload when it planned; the simulator follows it as it changes)")
    for record in outcomes:
        annotations = (vmims.get(str(record.get("vmim"))) or {}).get("metadata", {}).get("annotations") or {}
        labels = (vmims.get(str(record.get("vmim"))) or {}).get("metadata", {}).get("labels") or {}
        simulated = record.get("simulated") or {}
        print(
            f"{record.get('vmi')!s:26} {labels.get('livemig.io/policy', '?'):18} {record.get('source')!s:8} "
            f"{record.get('target')!s:8} {annotations.get('livemig.io/target', '?'):8} "
            f"{record.get('technique') or '?'!s:13} "
            f"{record.get('outcome') or record.get('result')!s:22} "
            f"{_num(annotations.get('livemig.io/predicted-duration')):>6}/{_num(simulated.get('total_time_s')):<6} s "
            f"{_num(annotations.get('livemig.io/predicted-downtime'), 1000):>7}/"
            f"{_num(simulated.get('downtime_s'), 1000):<7} ms"
        )


def _num(value: Any, scale: float = 1.0) -> str:
    try:
        return f"{float(value) * scale:.1f}"
    except (TypeError, ValueError):
        return "-"


def print_prometheus(stack: LocalStack) -> None:
    assert stack.prometheus is not None
    query = "sum by (result) (livemig_sim_migrations_finished_total)"
    print(f"\nPrometheus: {query}")
    with contextlib.suppress(Exception):
        for sample in stack.prometheus.wait_for(query, timeout_s=30):
            print(f"  {sample['metric'].get('result', '?')}: {sample['value'][1]}")
    if stack.operator_process is not None:
        print("livemig operator /metrics: livemig_migrations_total")
        for line in stack.operator_process.metrics().splitlines():
            if line.startswith("livemig_migrations_total{"):
                print(f"  {line}")


def write_timeline(outcomes: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """One bar per migration over simulated time, coloured by technique, labelled with source → target."""
    if not outcomes:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    start = min(float(r["createdAt"]) for r in outcomes)
    colours = {"pre-copy": "tab:blue", "post-copy": "tab:orange", "auto-converge": "tab:green"}
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(outcomes) + 1.5))
    for i, record in enumerate(outcomes):
        created, began = float(record["createdAt"]) - start, float(record.get("startedAt") or record["createdAt"])
        end = float(record["finishedAt"]) - start
        ax.barh(i, began - start - created, left=created, color="lightgrey")
        ax.barh(
            i,
            end - (began - start),
            left=began - start,
            color=colours.get(str(record.get("technique")), "grey"),
            hatch="" if record.get("result") == "Succeeded" else "xx",
        )
        ax.text(end + 0.5, i, f"{record['source']} → {record['target']}", va="center", fontsize=7)
    ax.set_yticks(range(len(outcomes)), [str(r["vmi"]) for r in outcomes], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("simulated seconds (grey: queued in KubeVirt before the migration started)")
    ax.set_title("livemig operator: migrations by technique")
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


__all__ = ["register", "run"]
