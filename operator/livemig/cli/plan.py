"""`livemig plan --snapshot FILE --policy FILE [--json]`: the plan a policy gives for a cluster snapshot.

`livemig plan --kubeconfig PATH --policy NAME [--prometheus-url URL] [--json]`: the plan the operator would make now
from the live cluster and Prometheus, by the operator's own code path (livemig.cli.plan_live).

Reads a cluster snapshot (or a simulator scenario) and a MigrationPolicy manifest, runs the planner for the
policy's purpose with the performance model, and prints the ordered moves with their predicted cost, the schedule
and the plan's efficacy.  Bad files exit 2, naming the file and the field.

What-if flags change the snapshot before planning, as the cluster would be after an admin's act: `--cordon NODE`
(`kubectl cordon`: the node is unschedulable, so a Maintenance policy with `cordoned: true` drains it) and
`--unhealthy NODE` (the node's health query has been past its threshold for `for`, so an Evacuation policy
evacuates it; offline there is no Prometheus to ask).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import Any

from livemig.core.cluster import ClusterSnapshot
from livemig.core.errors import SpecError, SpecErrors
from livemig.core.planning import Plan, plan_for_policy
from livemig.core.policy import load_policy
from livemig.core.snapshot_parser import load_snapshot
from livemig.core.vocabulary import Purpose


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="print the plan a MigrationPolicy gives for a cluster snapshot",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--snapshot", metavar="FILE", help="cluster snapshot or scenario (YAML/JSON)")
    source.add_argument("--kubeconfig", metavar="PATH", help="plan from the live cluster instead (what-if)")
    parser.add_argument(
        "--policy",
        required=True,
        metavar="FILE|NAME",
        help="livemig.io/v1alpha1 MigrationPolicy (YAML file); with --kubeconfig also the name of one in the cluster",
    )
    parser.add_argument(
        "--prometheus-url",
        metavar="URL",
        default=os.environ.get("LIVEMIG_PROMETHEUS_URL"),
        help="with --kubeconfig: the Prometheus to query (default: $LIVEMIG_PROMETHEUS_URL)",
    )
    parser.add_argument(
        "--hot-nodes",
        metavar="NODE[,NODE]",
        help="load balancing: the nodes the previous cycle found hot (its plan's hot nodes); they stay hot while "
        "inside the hysteresis band (with --kubeconfig, default: the policy's status)",
    )
    parser.add_argument(
        "--cordon",
        metavar="NODE[,NODE]",
        help="what-if, with --snapshot: plan as if these nodes were cordoned (kubectl cordon)",
    )
    parser.add_argument(
        "--unhealthy",
        metavar="NODE[,NODE]",
        help="what-if, with --snapshot: plan as if these nodes' health query had been past its threshold for `for`",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.set_defaults(handler=run)


def _prefixed(flag: str, path: str, exc: SpecError | SpecErrors) -> SpecErrors:
    errors = exc.errors if isinstance(exc, SpecErrors) else (exc,)
    return SpecErrors(
        [SpecError(f"{flag} {path}: {e.path}" if e.path != path else f"{flag} {path}", e.problem) for e in errors]
    )


def hot_nodes_arg(value: str | None) -> frozenset[str] | None:
    """`--hot-nodes a,b` as a set of node names (None when the flag is absent)."""
    if value is None:
        return None
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def node_names_arg(value: str | None) -> tuple[str, ...]:
    """`--cordon a,b` as node names, in order, without duplicates (empty when the flag is absent)."""
    if value is None:
        return ()
    return tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))


def what_if(
    snapshot: ClusterSnapshot, *, cordon: tuple[str, ...] = (), unhealthy: tuple[str, ...] = ()
) -> ClusterSnapshot:
    """The snapshot with `cordon` unschedulable and `unhealthy` marked unhealthy; an unknown node is an error
    naming the flag."""
    problems = [
        SpecError(flag, f"no node {name!r} in the snapshot")
        for flag, names in (("--cordon", cordon), ("--unhealthy", unhealthy))
        for name in names
        if not snapshot.has_node(name)
    ]
    if problems:
        raise SpecErrors(problems)
    if not cordon and not unhealthy:
        return snapshot
    nodes = tuple(
        replace(
            n,
            schedulable=n.schedulable and n.name not in cordon,
            healthy=n.healthy and n.name not in unhealthy,
        )
        for n in snapshot.nodes
    )
    return replace(snapshot, nodes=nodes)


def run(args: argparse.Namespace) -> int:
    cordon, unhealthy = node_names_arg(args.cordon), node_names_arg(args.unhealthy)
    if args.kubeconfig is not None:
        if cordon or unhealthy:
            flag = "--cordon" if cordon else "--unhealthy"
            raise SpecError(flag, "a what-if for --snapshot only; on a live cluster, cordon the node itself")
        from livemig.cli.plan_live import run_live

        return run_live(args)
    problems: list[SpecError] = []
    snapshot = policy = None
    try:
        snapshot = load_snapshot(args.snapshot)
    except (SpecError, SpecErrors) as exc:
        problems.extend(_prefixed("--snapshot", args.snapshot, exc).errors)
    try:
        policy = load_policy(args.policy)
    except (SpecError, SpecErrors) as exc:
        problems.extend(_prefixed("--policy", args.policy, exc).errors)
    if problems or snapshot is None or policy is None:
        raise SpecErrors(problems)
    snapshot = what_if(snapshot, cordon=cordon, unhealthy=unhealthy)
    result = plan_for_policy(snapshot, policy, previously_hot=hot_nodes_arg(args.hot_nodes) or frozenset())
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(result))
    return 0


def _bytes(n: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _dur(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    if s >= 1:
        return f"{s:.1f} s"
    return f"{s * 1000:.0f} ms"


def render(plan: Plan) -> str:
    """A readable plan: header, moves table, efficacy, skipped VMIs."""
    e = plan.efficacy
    lines = [
        f"{plan.id}  purpose {plan.purpose}  policy {plan.policy or '-'}  status {plan.status}",
        f"  {plan.reason}",
        f"  limits: {plan.limits.get('maxConcurrentMigrations')} migrations at once, "
        f"{plan.limits.get('maxConcurrentMigrationsPerNode')} per node",
        "",
    ]
    if plan.purpose is Purpose.LOAD_BALANCING:
        lines[-1:-1] = [f"  hot nodes: {', '.join(plan.hot_nodes) or 'none'} (pass back next cycle: --hot-nodes)"]
    if plan.moves:
        header = ("wave", "start", "VMI", "from", "to", "technique", "time", "downtime", "bytes")
        rows = [
            (
                str(m.wave),
                _dur(m.start_s) if m.start_s else "0",
                m.vmi,
                m.source,
                m.target,
                str(m.technique),
                _dur(m.predicted_time_s),
                _dur(m.predicted_downtime_s),
                _bytes(m.predicted_bytes),
            )
            for m in plan.moves
        ]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for r in (header, *rows):
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        lines.append("")
        lines.append("  why (this VMI; this target; its place in the order; then the technique):")
        for m in plan.moves:
            lines.append(f"    {m.vmi}: {m.reason}")
            lines.append(f"      {m.technique_reason}")
        lines.append("")
    lines.append(
        f"  efficacy: {e.moves} moves, {_bytes(e.bytes_moved)} on the wire, downtime {_dur(e.total_downtime_s)} in "
        f"total, done after {_dur(e.makespan_s)}"
    )
    lines.append(
        f"  CPU max {e.cpu_max_before:.0%} -> {e.cpu_max_after:.0%} (stddev {e.cpu_stddev_before:.3f} -> "
        f"{e.cpu_stddev_after:.3f}); memory max {e.memory_max_before:.0%} -> {e.memory_max_after:.0%} "
        f"(stddev {e.memory_stddev_before:.3f} -> {e.memory_stddev_after:.3f})"
    )
    lines.append(f"  nodes in use {e.nodes_used_before} -> {e.nodes_used_after}")
    if e.nodes_released:
        lines.append(f"  nodes released: {', '.join(e.nodes_released)}")
    for a in plan.node_actions:
        what = ["cordon"] if a.cordon else []
        what += [f"label {k}={v}" for k, v in a.labels]
        lines.append(f"  then {', '.join(what)} {a.node}")
    if plan.skipped:
        lines.append("  not moved:")
        for s in plan.skipped:
            lines.append(f"    {s.vmi} on {s.node}: {s.reason}")
    return "\n".join(lines) + "\n"
