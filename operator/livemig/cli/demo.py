"""`livemig demo`: a maintenance drain on the embedded local stack, end to end.

It starts a real etcd + kube-apiserver, installs KubeVirt's CRDs (test copies) and livemig's, runs the KubeVirt
simulator on the small scenario with a real Prometheus scraping it, applies a livemig MigrationPolicy, plans the
drain of one node with the planner and the performance model, and carries the plan out the way livemig does: one
KubeVirt MigrationPolicy per technique, the VMI labelled for the technique the model chose, and one
VirtualMachineInstanceMigration per move, wave by wave.  Then it prints predicted against simulated figures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livemig.core.cluster import ClusterSnapshot, load_snapshot
from livemig.core.errors import SpecError
from livemig.core.planning import Move, Plan, plan_for_policy
from livemig.core.policy import load_policy
from livemig.core.vocabulary import Technique
from livemig.devcluster import DevCluster
from livemig.devcluster.binaries import repository_root
from livemig.devcluster.prometheus import Prometheus
from livemig.sim.process import SimulatorProcess

MAINTENANCE_LABEL = "livemig.io/maintenance"
TECHNIQUE_LABEL = "livemig.io/technique"
# livemig's post-copy policy switches after 1 s per decimal GB of memory (the model's `post-copy` rule).
POST_COPY_TIMEOUT_PER_GIB = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="drain a node of the small scenario on the embedded local stack (API server, Prometheus, simulator)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    root = repository_root() or Path.cwd()
    parser.add_argument("--scenario", type=Path, default=root / "examples" / "scenarios" / "small.yaml")
    parser.add_argument("--policy", type=Path, default=root / "examples" / "policies" / "maintenance-drain.yaml")
    parser.add_argument("--node", default="node-03", help="the node to drain (default: %(default)s)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="simulated seconds per wall second")
    parser.add_argument("--timeout", type=float, default=300.0, help="wall-clock seconds to wait for the drain")
    parser.add_argument("--keep", action="store_true", help="leave the stack running until Ctrl-C")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root = repository_root()
    if root is None:
        raise SpecError("demo", "run it from a livemig checkout (it needs hack/ and examples/)")
    snapshot = load_snapshot(args.scenario)
    if args.node not in {node.name for node in snapshot.nodes}:
        raise SpecError("--node", f"no node {args.node!r} in {args.scenario}")
    policy = load_policy(args.policy)
    if args.time_scale <= 0:
        raise SpecError("--time-scale", "must be positive")

    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="livemig-demo-")))
        step("starting etcd + kube-apiserver")
        cluster = stack.enter_context(DevCluster(work / "cluster", attached=True))
        for directory in (root / "hack" / "kubevirt-crds", root / "crds"):
            for path in sorted(directory.glob("*.yaml")):
                cluster.kubectl("apply", "--server-side", "-f", str(path))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

        step(f"starting the KubeVirt simulator on {args.scenario.name} at {args.time_scale:g}x, and Prometheus")
        sim = stack.enter_context(
            SimulatorProcess(args.scenario, cluster.kubeconfig, work_dir=work, time_scale=args.time_scale)
        )
        prometheus = stack.enter_context(Prometheus(work / "prometheus", targets=[sim.target]))
        _wait_for_vmis(cluster, len(snapshot.vmis), deadline=time.monotonic() + 120)

        step(f"applying policy {policy.name} and marking {args.node} for maintenance")
        cluster.kubectl("apply", "-f", str(args.policy))
        cluster.kubectl("label", "node", args.node, f"{MAINTENANCE_LABEL}=true", "--overwrite")
        # Plan on the workload as it is now in simulated time (dirty rates vary: bursts, diurnal waves).
        now_s = float(sim.state()["now"])
        plan = plan_for_policy(_with_maintenance_label(snapshot.at(now_s), args.node), policy)
        print_plan(plan)
        if not plan.moves:
            print("nothing to move", file=sys.stderr)
            return 1

        step("creating KubeVirt MigrationPolicies and VirtualMachineInstanceMigrations, wave by wave")
        deadline = time.monotonic() + args.timeout
        for index, wave in enumerate(plan.waves):
            print(f"  wave {index + 1}/{len(plan.waves)}: {', '.join(m.vmi for m in wave)}", file=sys.stderr)
            names = [_start_move(cluster, plan, move) for move in wave]
            _wait_final(cluster, wave, names, deadline)

        print_results(plan, sim.wait_outcomes(len(plan.moves), timeout_s=max(1.0, deadline - time.monotonic())))
        print_prometheus(prometheus)
        remaining = _vmis_on(cluster, args.node)
        unexpected = sorted(set(remaining) - {skipped.vmi for skipped in plan.skipped})
        print(f"\nVMIs left on {args.node}: {len(remaining)} ({len(plan.skipped)} the plan could not move)",
              file=sys.stderr)  # fmt: skip
        if args.keep:
            print(f"stack kept running; KUBECONFIG={cluster.kubeconfig}  Prometheus: {prometheus.url}", file=sys.stderr)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0 if not unexpected else 1


def step(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def _with_maintenance_label(snapshot: ClusterSnapshot, node_name: str) -> ClusterSnapshot:
    nodes = tuple(
        dataclasses.replace(node, labels={**node.labels, MAINTENANCE_LABEL: "true"}) if node.name == node_name else node
        for node in snapshot.nodes
    )
    return dataclasses.replace(snapshot, nodes=nodes)


def _kubectl_json(cluster: DevCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def _wait_for_vmis(cluster: DevCluster, count: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        items = _kubectl_json(cluster, "get", "vmis", "-A")["items"]
        if sum(1 for vmi in items if vmi.get("status", {}).get("phase") == "Running") >= count:
            return
        time.sleep(0.5)  # polling the API for a condition, with a deadline
    raise SystemExit(f"the simulator did not bring {count} VMIs to Running in time")


TECHNIQUE_SETTINGS: dict[Technique, dict[str, Any]] = {
    Technique.PRE_COPY: {"allowPostCopy": False, "allowAutoConverge": False},
    Technique.AUTO_CONVERGE: {"allowPostCopy": False, "allowAutoConverge": True},
    Technique.POST_COPY: {
        "allowPostCopy": True, "allowWorkloadDisruption": True, "allowAutoConverge": False,
        "completionTimeoutPerGiB": POST_COPY_TIMEOUT_PER_GIB,
    },
}  # fmt: skip


def _start_move(cluster: DevCluster, plan: Plan, move: Move) -> str:
    """Pins the technique with a KubeVirt MigrationPolicy, then creates the VirtualMachineInstanceMigration.

    KubeVirt picks the matching policy with the most matching labels, once, at hand-off.  So the policy selects
    every label the VMI and its namespace carry, plus livemig's technique label: no other policy can match more.
    """
    cluster.kubectl("label", "vmi", move.name, "-n", move.namespace, f"{TECHNIQUE_LABEL}={move.technique}",
                    "--overwrite")  # fmt: skip
    vmi_labels = _kubectl_json(cluster, "get", "vmi", move.name, "-n", move.namespace)["metadata"].get("labels", {})
    namespace_labels = _kubectl_json(cluster, "get", "namespace", move.namespace)["metadata"].get("labels", {})
    name = f"livemig-{plan.id[-8:]}-{move.name}"[:63]
    kv_migration_policy = {
        "apiVersion": "migrations.kubevirt.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": f"{move.namespace}-{name}"[:253], "labels": {"app.kubernetes.io/managed-by": "livemig"}},
        "spec": {
            "selectors": {"virtualMachineInstanceSelector": vmi_labels, "namespaceSelector": namespace_labels},
            **TECHNIQUE_SETTINGS[move.technique],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(kv_migration_policy))
    vmim = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": name, "namespace": move.namespace, "labels": {"livemig.io/plan": plan.id[:63]}},
        "spec": {"vmiName": move.name, "addedNodeSelector": {"kubernetes.io/hostname": move.target}},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(vmim))
    return name


def _wait_final(cluster: DevCluster, wave: Sequence[Move], names: Sequence[str], deadline: float) -> None:
    pending = {(move.namespace, name) for move, name in zip(wave, names, strict=True)}
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"migrations not finished in time: {sorted(pending)}")
        for namespace, name in sorted(pending):
            phase = cluster.kubectl("get", "vmim", name, "-n", namespace, "-o", "jsonpath={.status.phase}",
                                    check=False).stdout  # fmt: skip
            if phase in ("Succeeded", "Failed"):
                print(f"    {namespace}/{name}: {phase}", file=sys.stderr)
                pending.discard((namespace, name))
        time.sleep(0.5)  # polling the API for a condition, with a deadline


def _vmis_on(cluster: DevCluster, node: str) -> list[str]:
    items = _kubectl_json(cluster, "get", "vmis", "-A")["items"]
    return [f"{v['metadata']['namespace']}/{v['metadata']['name']}" for v in items
            if v.get("status", {}).get("nodeName") == node]  # fmt: skip


def print_plan(plan: Plan) -> None:
    print(f"\nplan {plan.id[:12]} ({plan.purpose}, {plan.status}): {plan.reason}")
    print(f"{'VMI':28} {'from':8} {'to':8} {'technique':13} {'pred. time':>10} {'downtime':>9}  wave")
    for move in plan.moves:
        print(f"{move.vmi:28} {move.source:8} {move.target:8} {move.technique:13} {move.predicted_time_s:9.1f}s "
              f"{move.predicted_downtime_s * 1000:7.0f}ms  {move.wave + 1}")  # fmt: skip
    for skipped in plan.skipped:
        print(f"  skipped {skipped.vmi}: {skipped.reason}")


def print_results(plan: Plan, results: Sequence[dict[str, Any]]) -> None:
    """The planner's prediction beside what the simulator measured, per move."""
    print(f"\n{'VMI':28} {'planned':13} {'applied':13} {'outcome':22} {'time pred/sim':>15}  {'downtime pred/sim':>18}")
    print("(predictions are for the workload when the plan was made; the simulator follows it as it changes)")
    by_vmi = {str(r.get("vmi")): r for r in results}
    for move in plan.moves:
        record = by_vmi.get(move.vmi)
        if record is None:
            print(f"{move.vmi:28} {move.technique!s:13} (no outcome logged)")
            continue
        simulated = record.get("simulated") or {}
        print(
            f"{move.vmi:28} {move.technique!s:13} {record.get('technique') or '?'!s:13} "
            f"{record.get('outcome') or record.get('result')!s:22} "
            f"{_num(move.predicted_time_s):>6}/{_num(simulated.get('total_time_s')):<6} s "
            f"{_num(move.predicted_downtime_s, 1000):>7}/{_num(simulated.get('downtime_s'), 1000):<7} ms"
        )


def _num(value: Any, scale: float = 1.0) -> str:
    return "-" if value is None else f"{float(value) * scale:.1f}"


def print_prometheus(prometheus: Prometheus) -> None:
    query = "sum by (result) (livemig_sim_migrations_finished_total)"
    print(f"\nPrometheus: {query}")
    for sample in prometheus.wait_for(query, timeout_s=30):
        print(f"  {sample['metric'].get('result', '?')}: {sample['value'][1]}")
