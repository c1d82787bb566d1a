"""Planner benchmarks on seeded random clusters: consolidation, balancing and drain against bounds and baselines.

    .venv/bin/python bench/planners.py [--seeds-small 20] [--seeds-large 5] [--write]

Instances: 50 nodes / 500 VMIs and 500 nodes / 5,000 VMIs, seeded.  Node sizes uniform (32 cores, 128 GiB) or mixed
(16/64, 32/128, 64/256); VMIs from a flavour mix (1-16 cores, 2-64 GiB), CPU and memory use 35-95 % of the flavour,
dirty rates log-uniform 1-300 MiB/s; 10 Gbit/s links; KubeVirt's default migration settings (5 per cluster, 2 per
node, unlimited bandwidth).  Every figure comes from the real planners and the real performance model
(`ModelCosts`, technique Auto with post-copy and auto-converge allowed); the baselines are implemented here.

- consolidation: nodes used after the plan against the lower bound (per resource, the fewest nodes, largest first,
  whose capacity × (1 − headroom) covers the demand), and bytes moved against first-fit decreasing (VMIs biggest
  first into the nodes most loaded first, each node up to (1 − headroom); bytes = the model's prediction for every
  VMI that changes node); headroom 10 % and 20 %.
- balancing: ~10 % of the nodes at 85-97 % CPU, the rest at 30-78 %; high 80 %, target 70 %.  Highest CPU
  utilisation after the plan and bytes moved, against a greedy baseline (move the biggest VMI of the hottest node to
  the coldest node until no node is above 80 %), and for context the same greedy run until every node that was
  above 80 % is under the 70 % target the planner must reach.
- drain: 10 % of the nodes drained at once (10 Gbit/s links), and 20 % at once with each node's link drawn from
  10/25/40 Gbit/s.  Makespan against the physical lower bound (the largest of: each drained node's memory over its
  link; all the memory over the bandwidth the cluster limit allows; the largest VMI over its link; the sum over the
  VMIs of memory over the source's link, divided by the cluster's migration slots; "memory" is what must cross the
  link, the guest's non-zero memory: `must_send`), against KubeVirt's own
  evacuation of the same nodes run in the simulator in the same run (`bench/kubevirt_evacuation.py`: the drain
  taint, KubeVirt's evacuation controller, its caps and backoff, kube-scheduler's placement, KubeVirt's default
  migration configuration, no livemig), and against longest-predicted-first with the same placement.
- plan time: wall time of one planner call, model predictions included (cold cache), 500 nodes / 5,000 VMIs.
- scheduler: every plan's targets replayed, in start order, through the simulator's scheduler
  (`livemig.sim.scheduler.unschedulable_reason`: requests, taints, affinity), every VMI's pod on its source and every
  earlier target pod counted; refused targets are reported per benchmark (they would stay Pending in a cluster).

Results go to docs/benchmarks.md between the planners markers (with --write) and plots to docs/img/planners-*.png.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchdoc import write_section
from kubevirt_evacuation import simulate_evacuation
from livemig.core.capacity import DEFAULT_SIZING, Requests, launcher_requests, request_refusal
from livemig.core.cluster import ClusterSnapshot, KubevirtMigrationConfig, Vmi, VmiUsage
from livemig.core.planning import (
    BalancingSpec,
    ConsolidationSpec,
    MaintenanceSpec,
    ModelCosts,
    PlanningSpec,
    TechniqueSpec,
    Thresholds,
    plan_consolidation,
    plan_load_balancing,
    plan_maintenance,
)
from livemig.core.planning.limits import Job, Limits, SlotTracker, schedule
from livemig.core.profiles import Constant
from livemig.core.snapshot_parser import parse_snapshot
from livemig.core.vocabulary import Objective, Purpose
from livemig.sim.scheduler import Placement, unschedulable_reason

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
GI = 2**30
MI = 2**20
LINK = "10Gbit"
FLAVOURS = [(1, 2), (1, 4), (2, 4), (2, 8), (4, 8), (4, 16), (8, 16), (8, 32), (16, 64)]  # cores, GiB
FLAVOUR_WEIGHTS = [4, 4, 4, 3, 2, 2, 1, 1, 0.3]  # small VMs are the common case
NODE_KINDS = {"uniform": [(32, 128)], "mixed": [(16, 64), (32, 128), (64, 256)]}
SIZES = {"small": (50, 500), "large": (500, 5000)}
TECHNIQUE = TechniqueSpec(allow_post_copy=True, allow_auto_converge=True, objective=Objective.BALANCED)


# --------------------------------------------------------------------------------------------------- instances


def instance(seed: int, nodes: int, vmis: int, kind: str, *, hot_fraction: float = 0.0) -> ClusterSnapshot:
    """A seeded random cluster holding all `vmis` VMIs.  Each node gets a random fill level (hot nodes: 85-97 %
    CPU); VMIs go first-fit onto shuffled nodes under their fill level, and when none has room, onto the node
    with the most free room that stays under 90 % (78 % when there are hot nodes, so only the hot ones are hot).
    Every node also admits its VMIs by requests (virt-launcher's, `livemig.core.capacity`), as kube-scheduler
    would have: a cluster it could not have scheduled is no instance."""
    rng = random.Random(seed)
    shapes = [rng.choice(NODE_KINDS[kind]) for _ in range(nodes)]
    node_docs = [
        {"name": f"n{i:03d}", "cpu": c, "memory": f"{m}Gi", "linkBandwidth": LINK} for i, (c, m) in enumerate(shapes)
    ]
    hot = set(rng.sample(range(nodes), int(nodes * hot_fraction)))
    if hot_fraction:
        fill = [rng.uniform(0.85, 0.97) if i in hot else rng.uniform(0.35, 0.72) for i in range(nodes)]
        ceiling = 0.78
    else:
        fill = [rng.uniform(0.2, 0.8) for _ in range(nodes)]
        ceiling = 0.9
    cpu_used = [0.0] * nodes
    mem_used = [0.0] * nodes
    requested = [Requests()] * nodes
    vm_docs: list[dict[str, Any]] = []
    hot_nodes = [i for i in range(nodes) if i in hot]
    cool_nodes = [i for i in range(nodes) if i not in hot]
    rng.shuffle(hot_nodes)
    rng.shuffle(cool_nodes)
    for j in range(vmis):
        cores, gib = rng.choices(FLAVOURS, FLAVOUR_WEIGHTS)[0]
        cpu = round(cores * rng.uniform(0.35, 0.95), 2)
        mem = int(gib * GI * rng.uniform(0.35, 0.95))
        dirty = int(MI * math.exp(rng.uniform(math.log(1), math.log(300))))
        # Hot nodes fill up first; each group is visited from a random starting point.
        a = rng.randrange(len(hot_nodes)) if hot_nodes else 0
        b = rng.randrange(len(cool_nodes))
        order = hot_nodes[a:] + hot_nodes[:a] + cool_nodes[b:] + cool_nodes[:b]

        pod = flavour_requests(cores, gib)

        def room(i: int, level: float, cpu: float = cpu, mem: int = mem, pod: Requests = pod) -> bool:
            c, m = shapes[i]
            return (
                cpu_used[i] + cpu <= c * level
                and mem_used[i] + mem <= m * GI * min(0.95, level + 0.1)
                and requested[i].cpu_cores + pod.cpu_cores <= c
                and requested[i].memory_bytes + pod.memory_bytes <= m * GI
            )

        chosen = next((i for i in order if room(i, fill[i])), None)
        if chosen is None:
            fits = (
                [i for i in order if i not in hot and room(i, ceiling)]
                or [i for i in order if i not in hot and room(i, ceiling + 0.02)]
                or [i for i in order if room(i, 0.98)]  # a full cluster: this makes another node hot
            )
            if not fits:
                raise RuntimeError(f"instance {seed}: VMI {j} fits nowhere; lower the VMI count")
            chosen = min(fits, key=lambda i: cpu_used[i] / shapes[i][0])
        cpu_used[chosen] += cpu
        mem_used[chosen] += mem
        requested[chosen] += pod
        vm_docs.append(
            {
                "namespace": "bench",
                "name": f"vm{j:05d}",
                "node": f"n{chosen:03d}",
                "vcpus": cores,
                "memory": f"{gib}Gi",
                "usage": {"cpu": cpu, "memory": mem, "dirtyRate": dirty},
            }
        )
    return parse_snapshot(
        {"apiVersion": "livemig.io/v1alpha1", "kind": "ClusterSnapshot", "nodes": node_docs, "vmis": vm_docs}
    )


def flavour_requests(cores: int, gib: int) -> Requests:
    """What a VMI of this flavour's virt-launcher pod requests (KubeVirt's defaults)."""
    zero = Constant(0.0)
    probe = Vmi("bench", "probe", "", cores, gib * GI, VmiUsage(zero, zero, zero), 0.0, 0.0, 0.0)
    return launcher_requests(probe, DEFAULT_SIZING)


MIXED_LINKS_GBIT = (10, 25, 40)


def with_mixed_links(snap: ClusterSnapshot, seed: int) -> ClusterSnapshot:
    """The same cluster with each node's link drawn from 10/25/40 Gbit/s (seeded)."""
    rng = random.Random(seed)
    return replace(
        snap,
        nodes=tuple(replace(n, link_bandwidth_bps=rng.choice(MIXED_LINKS_GBIT) * 1e9 / 8) for n in snap.nodes),
    )


def costs() -> ModelCosts:
    return ModelCosts.for_spec(TECHNIQUE, KubevirtMigrationConfig())


def scheduler_refusals(snap: ClusterSnapshot, plan: Any) -> int:
    """How many of the plan's targets the simulator's scheduler refuses, replaying the moves in start order with
    every source pod and every earlier target pod in place."""
    vmis = {v.key: v for v in snap.vmis}
    placements = [Placement(v, v.node) for v in snap.vmis]
    refused = 0
    for m in sorted(plan.moves, key=lambda m: (m.start_s, m.vmi)):
        vmi = vmis[m.vmi]
        if unschedulable_reason(vmi, snap.node(m.target), placements, sizing=snap.launcher, nodes=snap.nodes):
            refused += 1
        placements.append(Placement(vmi, m.target))
    return refused


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


# ------------------------------------------------------------------------------------------------ consolidation


def lower_bound(snap: ClusterSnapshot, headroom: float) -> int:
    """Per resource, the fewest nodes (largest first) whose capacity covers the demand: usage under the headroom,
    requests within allocatable."""
    cap = 1 - headroom
    counts = []
    requested = sum((launcher_requests(v, snap.launcher) for v in snap.vmis), Requests())
    for demand, sizes in (
        (sum(v.cpu_cores for v in snap.vmis), [n.cpu_cores * cap for n in snap.nodes]),
        (sum(v.memory_used_bytes for v in snap.vmis), [n.memory_bytes * cap for n in snap.nodes]),
        (requested.cpu_cores, [n.cpu_cores for n in snap.nodes]),
        (requested.memory_bytes, [n.memory_bytes for n in snap.nodes]),
    ):
        room, k = 0.0, 0
        for s in sorted(sizes, reverse=True):
            if room >= demand:
                break
            room += s
            k += 1
        counts.append(k)
    return max(counts)


def ffd(snap: ClusterSnapshot, headroom: float, model: ModelCosts) -> tuple[int, int]:
    """First-fit decreasing from scratch: (nodes used, bytes moved)."""
    cap = 1 - headroom
    load = {n.name: (snap.node_cpu_used_cores(n.name), snap.node_memory_used_bytes(n.name)) for n in snap.nodes}
    nodes = sorted(
        snap.nodes, key=lambda n: (-(load[n.name][0] / n.cpu_cores + load[n.name][1] / n.memory_bytes), n.name)
    )
    cpu = {n.name: 0.0 for n in nodes}
    mem = {n.name: 0.0 for n in nodes}
    requested = {n.name: Requests() for n in nodes}
    pods = {v.key: launcher_requests(v, snap.launcher) for v in snap.vmis}
    moved = 0
    avg_c = statistics.mean(n.cpu_cores for n in nodes)
    avg_m = statistics.mean(n.memory_bytes for n in nodes)
    for v in sorted(snap.vmis, key=lambda v: (-max(v.cpu_cores / avg_c, v.memory_used_bytes / avg_m), v.key)):
        for n in nodes:
            if (
                cpu[n.name] + v.cpu_cores <= n.cpu_cores * cap
                and mem[n.name] + v.memory_used_bytes <= n.memory_bytes * cap
                and request_refusal(n, requested[n.name], pods[v.key]) is None
            ):
                cpu[n.name] += v.cpu_cores
                mem[n.name] += v.memory_used_bytes
                requested[n.name] += pods[v.key]
                if n.name != v.node:
                    moved += model.cost(
                        v, min(snap.node(v.node).link_bandwidth_bps, n.link_bandwidth_bps)
                    ).transferred_bytes
                break
        else:
            return -1, -1
    return sum(1 for n in nodes if cpu[n.name] > 0), moved


@dataclass
class ConsolidationRow:
    size: str
    kind: str
    headroom: float
    seed: int
    used_before: int
    used_after: int
    bound: int
    ffd_nodes: int
    bytes_moved: int
    ffd_bytes: int
    plan_s: float
    moves: int = 0
    refused: int = 0  # targets the simulator's scheduler refuses


def bench_consolidation(seeds: dict[str, int]) -> list[ConsolidationRow]:
    rows = []
    for size, (n_nodes, n_vmis) in SIZES.items():
        for kind in NODE_KINDS:
            for headroom in (0.1, 0.2):
                for seed in range(seeds[size]):
                    snap = instance(1000 + seed, n_nodes, n_vmis, kind)
                    spec = PlanningSpec(
                        purpose=Purpose.CONSOLIDATION,
                        technique=TECHNIQUE,
                        consolidation=ConsolidationSpec(headroom_cpu=headroom, headroom_memory=headroom),
                    )
                    plan, secs = timed(lambda snap=snap, spec=spec: plan_consolidation(snap, spec, costs()))
                    f_nodes, f_bytes = ffd(snap, headroom, costs())
                    rows.append(
                        ConsolidationRow(
                            size, kind, headroom, seed,
                            plan.efficacy.nodes_used_before, plan.efficacy.nodes_used_after,
                            lower_bound(snap, headroom), f_nodes, plan.efficacy.bytes_moved, f_bytes, secs,
                            len(plan.moves), scheduler_refusals(snap, plan),
                        )
                    )  # fmt: skip
                    print(f"consolidation {size} {kind} h={headroom} seed={seed}: {rows[-1]}", file=sys.stderr)
    return rows


# ---------------------------------------------------------------------------------------------------- balancing


def greedy_balance(
    snap: ClusterSnapshot, high: float, model: ModelCosts, *, until: float | None = None
) -> tuple[float, int, int, bool]:
    """Biggest VMI of the hottest node to the coldest node until no node is above `high`:
    (max CPU utilisation after, bytes moved, moves, under threshold).  With `until`, the nodes above `high` at the
    start are each brought under `until` instead (the same end the planner aims at: the target)."""
    cpu = {n.name: snap.node_cpu_used_cores(n.name) for n in snap.nodes}
    mem = {n.name: snap.node_memory_used_bytes(n.name) for n in snap.nodes}
    cap = {n.name: n for n in snap.nodes}
    on: dict[str, list[Vmi]] = {n.name: [] for n in snap.nodes}
    for v in snap.vmis:
        on[v.node].append(v)
    moved_bytes = moves = 0
    tried: set[str] = set()
    level = high if until is None else until
    pool = [n for n in cpu if until is None or cpu[n] / cap[n].cpu_cores > high]
    for _ in range(10 * len(snap.vmis)):
        if not pool:
            break
        hot = max(pool, key=lambda n: cpu[n] / cap[n].cpu_cores)
        if cpu[hot] / cap[hot].cpu_cores <= level:
            break
        cold = min(cpu, key=lambda n: cpu[n] / cap[n].cpu_cores)
        candidates = [v for v in on[hot] if v.key not in tried]
        if not candidates:
            break
        v = max(candidates, key=lambda v: (v.cpu_cores, v.key))
        tried.add(v.key)
        if cpu[cold] + v.cpu_cores > cap[cold].cpu_cores or mem[cold] + v.memory_used_bytes > cap[cold].memory_bytes:
            continue
        on[hot].remove(v)
        on[cold].append(v)
        cpu[hot] -= v.cpu_cores
        cpu[cold] += v.cpu_cores
        mem[hot] -= v.memory_used_bytes
        mem[cold] += v.memory_used_bytes
        moved_bytes += model.cost(v, cap[hot].link_bandwidth_bps).transferred_bytes
        moves += 1
    top = max(cpu[n] / cap[n].cpu_cores for n in cpu)
    return top, moved_bytes, moves, top <= high + 1e-9 and all(cpu[n] / cap[n].cpu_cores <= level for n in pool)


@dataclass
class BalanceRow:
    size: str
    seed: int
    hot_before: int
    max_before: float
    max_after: float
    hot_after: int
    bytes_moved: int
    moves: int
    greedy_max: float
    greedy_bytes: int
    greedy_moves: int
    greedy_under: bool
    plan_s: float
    status: str
    greedy_target_bytes: int  # greedy run until the hot nodes are under the 70 % target
    greedy_target_under: bool
    refused: int = 0  # targets the simulator's scheduler refuses


def bench_balancing(seeds: dict[str, int]) -> list[BalanceRow]:
    rows = []
    spec = PlanningSpec(
        purpose=Purpose.LOAD_BALANCING,
        technique=TECHNIQUE,
        balancing=BalancingSpec(high=Thresholds(cpu=0.8), target=Thresholds(cpu=0.7)),
    )
    for size, (n_nodes, n_vmis) in SIZES.items():
        for seed in range(seeds[size]):
            snap = instance(2000 + seed, n_nodes, n_vmis, "uniform", hot_fraction=0.1)
            plan, secs = timed(lambda snap=snap: plan_load_balancing(snap, spec, costs()))
            g = greedy_balance(snap, 0.8, costs())
            gt = greedy_balance(snap, 0.8, costs(), until=0.7)
            e = plan.efficacy
            rows.append(
                BalanceRow(
                    size, seed, e.nodes_over_threshold_before, e.cpu_max_before, e.cpu_max_after,
                    e.nodes_over_threshold_after, e.bytes_moved, e.moves, g[0], g[1], g[2], g[3], secs,
                    str(plan.status), gt[1], gt[3], scheduler_refusals(snap, plan),
                )
            )  # fmt: skip
            print(f"balancing {size} seed={seed}: {rows[-1]}", file=sys.stderr)
    return rows


# -------------------------------------------------------------------------------------------------------- drain


# (links, share of the nodes drained at once)
DRAIN_VARIANTS = (("10 Gbit, 10 % drained", 0.1), ("mixed 10/25/40 Gbit, 20 % drained", 0.2))


def must_send(v: Vmi) -> float:
    """The bytes a migration of `v` must put on the link at least once: its non-zero memory.  A page the guest
    never wrote goes as a 9-byte marker (QEMU `save_zero_page`, measured in the lab), and the simulator, like the
    planners, counts the memory the guest does not use as such pages (`livemig.core.guest`)."""
    return min(v.memory_bytes, v.memory_used_bytes)


def drain_lower_bound(snap: ClusterSnapshot, drained: list[str], limits: Limits) -> float:
    per_migration = {n: limits.move_bandwidth_bps(snap.node(n), snap.node(n)) for n in drained}
    node_bw = {n: min(snap.node(n).link_bandwidth_bps, limits.max_per_node * per_migration[n]) for n in drained}
    mem = {n: sum(must_send(v) for v in snap.vmis if v.node == n) for n in drained}
    cluster_bw = min(sum(node_bw.values()), limits.max_cluster * max(per_migration.values()))
    biggest = max((must_send(v) / per_migration[v.node] for v in snap.vmis if v.node in mem), default=0.0)
    # Each migration holds one of the cluster's slots for at least its bytes over its source's bandwidth.
    slots = sum(must_send(v) / per_migration[v.node] for v in snap.vmis if v.node in mem) / limits.max_cluster
    return max(max(mem[n] / node_bw[n] for n in drained), sum(mem.values()) / cluster_bw, biggest, slots)


@dataclass
class DrainRow:
    size: str
    variant: str
    seed: int
    drained: int
    vmis: int
    makespan: float
    bound: float
    lpt: float
    kubevirt: float
    kubevirt_failed: int
    downtime: float
    kubevirt_downtime: float
    kubevirt_left: int  # VMIs KubeVirt's evacuation left on the drained nodes at its cap
    kubevirt_setup: float  # mean VMIM creation -> migration start in the simulator
    skipped: int
    plan_s: float
    predicted_bound: float  # the same bound over the model's predicted migration times instead of memory / link
    refused: int = 0  # targets the simulator's scheduler refuses


def predicted_work_bound(snap: ClusterSnapshot, plan: Any, limits: Limits, model: ModelCosts) -> float:
    """A lower bound on the makespan given the model's predictions: each moved VMI's predicted time at its source's
    full per-migration bandwidth (the most any target can give it), with the policy's technique choice; the largest
    of each source's total over the migrations it may run at once, the cluster total over the cluster's slots, and
    the longest single migration.  Unlike the physical bound, it counts the dirty pages pre-copy sends again."""
    vmis = {v.key: v for v in snap.vmis}
    per_node: dict[str, float] = {}
    longest = 0.0
    for m in plan.moves:
        src = snap.node(m.source)
        bw = limits.move_bandwidth_bps(src, src)
        t = model.cost(vmis[m.vmi], bw).total_time_s
        per_node[m.source] = per_node.get(m.source, 0.0) + t
        longest = max(longest, t)
    if not per_node:
        return 0.0
    at_once = {
        n: max(1, min(limits.max_per_node, int(snap.node(n).link_bandwidth_bps // limits.move_bandwidth_bps(
            snap.node(n), snap.node(n))))) for n in per_node
    }  # fmt: skip
    return max(max(w / at_once[n] for n, w in per_node.items()), sum(per_node.values()) / limits.max_cluster, longest)


def bench_drain(seeds: dict[str, int]) -> list[DrainRow]:
    rows = []
    for size, (n_nodes, n_vmis), (variant, share) in (
        (size, dims, v) for v in DRAIN_VARIANTS for size, dims in SIZES.items()
    ):
        for seed in range(seeds[size]):
            snap = instance(3000 + seed, n_nodes, n_vmis, "uniform")
            if variant != DRAIN_VARIANTS[0][0]:
                snap = with_mixed_links(snap, 4000 + seed)
            rng = random.Random(seed)
            drained = sorted(rng.sample([n.name for n in snap.nodes], int(n_nodes * share)))
            spec = PlanningSpec(
                purpose=Purpose.MAINTENANCE, technique=TECHNIQUE, maintenance=MaintenanceSpec(node_names=tuple(drained))
            )
            plan, secs = timed(lambda snap=snap, spec=spec: plan_maintenance(snap, spec, costs()))
            limits = Limits.effective(spec.limits, spec.technique, snap.kubevirt)
            # Longest-predicted-first over the whole cluster, same placement and predictions.
            by_lpt = sorted(plan.moves, key=lambda m: (-m.predicted_time_s, m.vmi))
            lpt = schedule(
                [Job(m.source, m.target, m.bandwidth_bps, m.predicted_time_s) for m in by_lpt],
                SlotTracker(limits, snap),
            )
            kv = simulate_evacuation(snap, drained, seed=seed)
            rows.append(
                DrainRow(
                    size, variant, seed, len(drained), len(plan.moves), plan.efficacy.makespan_s,
                    drain_lower_bound(snap, drained, limits), max(f for _, f in lpt), kv.makespan_s, kv.failed,
                    plan.efficacy.total_downtime_s, kv.downtime_s, kv.left, kv.setup_s, len(plan.skipped), secs,
                    predicted_work_bound(snap, plan, limits, costs()), scheduler_refusals(snap, plan),
                )
            )  # fmt: skip
            print(f"drain {size} seed={seed}: {rows[-1]}", file=sys.stderr)
    return rows


# -------------------------------------------------------------------------------------------------------- report


mean = statistics.mean


def report(cons: list[ConsolidationRow], bal: list[BalanceRow], drain: list[DrainRow], command: str) -> str:
    out = [
        "## Planners",
        "",
        f"Command: `{command}` (seeded; machine: 2 shared cores).  Instances and baselines: see `bench/planners.py`.",
        "Targets (issue 5): consolidation ≤ lower bound + 1 node on ≥ 95 % of instances with fewer bytes than FFD;",
        "balancing under the threshold with fewer bytes than the greedy baseline; drain ≤ 1.15 × the lower bound;",
        "plan time under 1 s for 500 nodes / 5,000 VMIs.",
        "",
        "### Consolidation",
        "",
        "References: the lower bound (arithmetic on the instance: independent of livemig's model and planner) and "
        "first-fit decreasing (implemented in `bench/planners.py`, independent of the planner; its bytes moved are "
        "the model's predictions for the VMIs it moves, as livemig's are).",
        "",
        "| instances | nodes | headroom | n | used before | used after (mean) | lower bound (mean) | ≤ LB+1 | "
        "FFD nodes (mean) | bytes moved / FFD bytes (median) | fewer bytes than FFD | plan time (median, max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, float], list[ConsolidationRow]] = {}
    for r in cons:
        groups.setdefault((r.size, r.kind, r.headroom), []).append(r)
    for (size, kind, h), rs in groups.items():
        nodes, vmis = SIZES[size]
        within = sum(r.used_after <= r.bound + 1 for r in rs)
        fewer = sum(r.bytes_moved < r.ffd_bytes for r in rs)
        ratio = statistics.median(r.bytes_moved / r.ffd_bytes if r.ffd_bytes > 0 else math.nan for r in rs)
        out.append(
            f"| {nodes}/{vmis} | {kind} | {h:.0%} | {len(rs)} | {statistics.mean(r.used_before for r in rs):.1f} | "
            f"{statistics.mean(r.used_after for r in rs):.1f} | {statistics.mean(r.bound for r in rs):.1f} | "
            f"{within}/{len(rs)} ({within / len(rs):.0%}) | {statistics.mean(r.ffd_nodes for r in rs):.1f} | "
            f"{ratio:.2f} | {fewer}/{len(rs)} | {statistics.median(r.plan_s for r in rs):.2f} s, "
            f"{max(r.plan_s for r in rs):.2f} s |"
        )
    total = len(cons)
    within_all = sum(r.used_after <= r.bound + 1 for r in cons)
    out += [
        "",
        f"All instances: {within_all}/{total} ({within_all / max(1, total):.0%}) within lower bound + 1; "
        f"{sum(r.bytes_moved < r.ffd_bytes for r in cons)}/{total} with fewer bytes than FFD.",
        refusals("consolidation", cons, sum(r.moves for r in cons)),
        "",
        "![consolidation](img/planners-consolidation.png)",
        "",
        "### Balancing (high 80 %, target 70 %, ~10 % hot nodes)",
        "",
        "Reference: a greedy baseline (implemented in `bench/planners.py`, independent of the planner; its bytes moved "
        "are the model's predictions, as livemig's are).",
        "",
        "| instances | n | hot nodes before (mean) | max CPU before | max CPU after: livemig / greedy | "
        "under 80 %: livemig / greedy | bytes moved: livemig / greedy (mean GiB) | fewer bytes than greedy | "
        "moves: livemig / greedy | greedy to the 70 % target: mean GiB, livemig fewer bytes | "
        "plan time (median, max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        rs = [r for r in bal if r.size == size]
        if not rs:
            continue
        nodes, vmis = SIZES[size]
        under = sum(r.hot_after == 0 and r.status == "Ready" for r in rs)
        g_under = sum(r.greedy_under for r in rs)
        fewer = sum(r.bytes_moved < r.greedy_bytes for r in rs)
        out.append(
            f"| {nodes}/{vmis} | {len(rs)} | {statistics.mean(r.hot_before for r in rs):.1f} | "
            f"{statistics.mean(r.max_before for r in rs):.1%} | {statistics.mean(r.max_after for r in rs):.1%} / "
            f"{statistics.mean(r.greedy_max for r in rs):.1%} | {under}/{len(rs)} / {g_under}/{len(rs)} | "
            f"{mean(r.bytes_moved for r in rs) / GI:.0f} / {mean(r.greedy_bytes for r in rs) / GI:.0f} | "
            f"{fewer}/{len(rs)} | {mean(r.moves for r in rs):.1f} / {mean(r.greedy_moves for r in rs):.1f} | "
            f"{mean(r.greedy_target_bytes for r in rs) / GI:.0f} (reaches it on "
            f"{sum(r.greedy_target_under for r in rs)}/{len(rs)}), "
            f"{sum(r.bytes_moved < r.greedy_target_bytes for r in rs)}/{len(rs)} | "
            f"{statistics.median(r.plan_s for r in rs):.2f} s, {max(r.plan_s for r in rs):.2f} s |"
        )
    out += [
        "",
        refusals("balancing", bal, sum(r.moves for r in bal)),
        "",
        "![balancing](img/planners-balancing.png)",
        "",
        "### Drain (KubeVirt limits 5 per cluster / 2 per node)",
        "",
        "Links: every node 10 Gbit/s with 10 % of the nodes drained at once, or each node's link drawn from "
        "10/25/40 Gbit/s with 20 % drained at once (more sources than cluster slots: the cluster limit binds).",
        "",
        "References: the lower bound (physical: the guests' non-zero memory over links and slots, independent of "
        "livemig's model; a never-written page crosses as a 9-byte marker, as QEMU sends it); the "
        "predicted-work bound (the same bound over the model's predicted migration times: an internal consistency "
        "check, not independent); longest-predicted-first (livemig's own placement and predictions in another "
        "order: not independent); **KubeVirt's evacuation, measured in the simulator** on the same instance and "
        "drained nodes in the same run (`bench/kubevirt_evacuation.py`: the drain taint, KubeVirt's evacuation "
        "controller with its caps, 5 s re-queue and backoff, kube-scheduler's placement, KubeVirt's default "
        "migration configuration, simulated time from the taint to the last migration finished).  It is "
        "independent of livemig's decisions (no livemig planner, order, placement or technique choice) but not of "
        "its model, which is the simulator's migration physics.  livemig's makespan is the plan's prediction; "
        "KubeVirt's includes the simulator's per-migration set-up (target pod scheduling, readiness, hand-off: "
        "`set-up` column), which the plan does not model.",
        "",
        "| instances | links, drained | n | VMIs moved (mean) | makespan / lower bound (mean, max) | ≤ 1.15 × LB | "
        "makespan / predicted-work bound (mean, max) | "
        "longest-first / LB (mean) | KubeVirt evacuation (simulated) / LB (mean) | KubeVirt set-up per migration "
        "(mean s) | KubeVirt failed migrations (mean) | VMIs KubeVirt gave up on (total) | "
        "downtime total: livemig / KubeVirt (mean s) | plan time (median, max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (variant, _), size in ((v, size) for v in DRAIN_VARIANTS for size in SIZES):
        rs = [r for r in drain if r.size == size and r.variant == variant]
        if not rs:
            continue
        nodes, vmis = SIZES[size]
        ratios = [r.makespan / r.bound for r in rs]
        ok = sum(x <= 1.15 for x in ratios)
        out.append(
            f"| {nodes}/{vmis} | {variant} | {len(rs)} | {statistics.mean(r.vmis for r in rs):.0f} | "
            f"{statistics.mean(ratios):.3f}, {max(ratios):.3f} | {ok}/{len(rs)} | "
            f"{mean(r.makespan / r.predicted_bound for r in rs):.3f}, "
            f"{max(r.makespan / r.predicted_bound for r in rs):.3f} | "
            f"{mean(r.lpt / r.bound for r in rs):.3f} | {mean(r.kubevirt / r.bound for r in rs):.3f} | "
            f"{mean(r.kubevirt_setup for r in rs):.1f} | {statistics.mean(r.kubevirt_failed for r in rs):.1f} | "
            f"{sum(r.kubevirt_left for r in rs)} | {statistics.mean(r.downtime for r in rs):.1f} / "
            f"{statistics.mean(r.kubevirt_downtime for r in rs):.1f} | "
            f"{statistics.median(r.plan_s for r in rs):.2f} s, {max(r.plan_s for r in rs):.2f} s |"
        )
    out += ["", refusals("drain", drain, sum(r.vmis for r in drain)), "", "![drain](img/planners-drain.png)", ""]
    out += verdict(cons, bal, drain)
    return "\n".join(out)


def refusals(what: str, rows: Sequence[Any], moves: int) -> str:
    refused = sum(r.refused for r in rows)
    return (
        f"Targets the simulator's scheduler refuses ({what}, every plan replayed, requests included): "
        f"{refused} of {moves} moves."
    )


def verdict(cons: list[ConsolidationRow], bal: list[BalanceRow], drain: list[DrainRow]) -> list[str]:
    """The targets, met or missed, computed from the rows above."""
    out = ["### Against the targets", ""]
    if cons:
        within = sum(r.used_after <= r.bound + 1 for r in cons)
        fewer = sum(r.bytes_moved < r.ffd_bytes for r in cons)
        short = sorted(
            {
                f"{SIZES[r.size][0]} nodes {r.kind} {r.headroom:.0%}"
                for r in cons
                if sum(
                    x.used_after <= x.bound + 1
                    for x in cons
                    if (x.size, x.kind, x.headroom) == (r.size, r.kind, r.headroom)
                )
                < 0.95 * sum(1 for x in cons if (x.size, x.kind, x.headroom) == (r.size, r.kind, r.headroom))
            }
        )
        met = within >= 0.95 * len(cons) and fewer == len(cons)
        line = (
            f"- Consolidation: {'**met**' if met else '**missed**'} over all instances: {within}/{len(cons)} "
            f"({within / len(cons):.0%}) within lower bound + 1, {fewer}/{len(cons)} with fewer bytes than FFD."
        )
        if short:
            parts = []
            for name in short:
                rows = [r for r in cons if f"{SIZES[r.size][0]} nodes {r.kind} {r.headroom:.0%}" == name]
                parts.append(
                    f"{name}: livemig {mean(r.used_after for r in rows):.1f}, bound {mean(r.bound for r in rows):.1f}, "
                    f"FFD {mean(r.ffd_nodes for r in rows):.1f}"
                )
            line += (
                f" Below 95 % in one configuration (nodes kept, mean): {'; '.join(parts)}. The bound takes each "
                "resource alone (CPU and memory use under the headroom, requested memory within allocatable) where a "
                "kept node must hold all of them at once, and livemig packs the released nodes' VMIs into the nodes "
                "it keeps as they are, where FFD repacks every VMI from scratch under the same rules (moving "
                f"{mean(r.ffd_bytes / max(1, r.bytes_moved) for r in cons):.1f}× livemig's bytes on average)."
            )
        out.append(line)
    if bal:
        under = sum(r.hot_after == 0 and r.status == "Ready" for r in bal)
        fewer = sum(r.bytes_moved < r.greedy_bytes for r in bal)
        missed = len(bal) - min(under, fewer)
        status = "**met**" if not missed else f"**missed** on {missed} instance(s)"
        out.append(
            f"- Balancing: under the threshold on {under}/{len(bal)}; fewer bytes than the greedy baseline on "
            f"{fewer}/{len(bal)} ({status}). "
            "livemig takes every hot node down to the 70 % target, as the issue asks, where the greedy baseline "
            "stops just under 80 %: it removes more CPU from each hot node, with more moves "
            f"({mean(r.moves for r in bal):.1f} against {mean(r.greedy_moves for r in bal):.1f} on average), "
            f"and still moves {mean(r.bytes_moved for r in bal) / mean(r.greedy_bytes for r in bal):.2f}× the "
            "greedy baseline's bytes on average."
        )
        lost = [r for r in bal if r.bytes_moved >= r.greedy_bytes]
        if lost:
            out[-1] += (
                " Where it moves more ("
                + ", ".join(
                    f"{SIZES[r.size][0]} nodes seed {r.seed}: {r.bytes_moved / GI:.0f} against "
                    f"{r.greedy_bytes / GI:.0f} GiB"
                    for r in lost
                )
                + "), the greedy baseline relieves each hot node with one big VMI that takes it just under 80 %, "
                "and reaching 70 % costs livemig more than that; this is the price of the target, not of the choice "
                "of moves: run to the same 70 % target, the greedy baseline moves "
                f"{mean(r.greedy_target_bytes for r in bal) / mean(r.bytes_moved for r in bal):.2f}× livemig's bytes "
                f"on average, and livemig moves fewer bytes than it on "
                f"{sum(r.bytes_moved < r.greedy_target_bytes for r in bal)}/{len(bal)}."
            )
    if drain:
        ratios = [r.makespan / r.bound for r in drain]
        ok = sum(x <= 1.15 for x in ratios)
        out.append(
            f"- Drain: {'**met**' if ok == len(drain) else '**missed**'}: makespan ≤ 1.15 × the lower bound on "
            f"{ok}/{len(drain)} (worst {max(ratios):.3f}); KubeVirt's own evacuation, simulated, takes "
            f"{mean(r.kubevirt / r.makespan for r in drain):.2f}× livemig's planned makespan on average (range "
            f"{min(r.kubevirt / r.makespan for r in drain):.2f}–{max(r.kubevirt / r.makespan for r in drain):.2f}), "
            f"with {mean(r.kubevirt_setup for r in drain):.1f} s of simulated set-up per migration that the plan "
            "does not count."
        )
        left = [r for r in drain if r.kubevirt_left]
        if left:
            out[-1] += (
                f" On {len(left)}/{len(drain)} instances KubeVirt's evacuation left "
                f"{sum(r.kubevirt_left for r in left)} VMI(s) on the drained nodes (the benchmark gives up on a VMI "
                "after 3 failed evacuations in a row; KubeVirt would retry for ever): by the time their turn "
                "comes no node admits their target pod by requests (the simulator's scheduler: a big VMI that fitted "
                "before the drain finds no room once the drained nodes' smaller VMIs have been spread over the "
                "least-allocated nodes), so each VMIM fails at KubeVirt's unschedulable-pod timeout (5 min, holding "
                "one of the cluster's 5 migration slots meanwhile) and is retried after its backoff.  There "
                "KubeVirt's makespan is that of the VMIs it moved and is inflated by the slots those pods hold.  "
                f"livemig's plans, sized by the same requests rule, had {sum(r.refused for r in drain)} target(s) "
                "refused by that scheduler on these instances (it sends the longest, usually the biggest, VMIs first)."
            )
        over = [r for r in drain if r.makespan > 1.15 * r.bound]
        if over:
            out[-1] += (
                " Over 1.15 × the bound: "
                + "; ".join(
                    f"{SIZES[r.size][0]} nodes, {r.variant}, seed {r.seed}: {r.makespan / r.bound:.3f} × the bound, "
                    f"{r.makespan / r.predicted_bound:.3f} × the predicted-work bound"
                    for r in over
                )
                + ". There the makespan is the predicted work of the busiest drained node, sent serially from the "
                "start at its full link; the gap to the physical bound is the dirty memory pre-copy sends again "
                "(the bound counts each byte of memory once), which no order or placement removes; only "
                "another technique than the one the model picks under the policy's objective (one that sends less) "
                "would."
            )
        out.append(
            "  Against the predicted-work bound (the same bound over the model's predicted migration times, which "
            "count re-sent dirty memory): "
            f"{mean(r.makespan / r.predicted_bound for r in drain):.3f}× on average, worst "
            f"{max(r.makespan / r.predicted_bound for r in drain):.3f}×."
        )
        for variant, _ in DRAIN_VARIANTS:
            rs = [r for r in drain if r.variant == variant]
            if not rs:
                continue
            gains = [r.lpt / r.makespan for r in rs]
            better = sum(g > 1.005 for g in gains)
            worse = sum(g < 0.995 for g in gains)
            out.append(
                f"  Longest-predicted-first with the same placement and link reservations, {variant}: "
                f"{mean(gains):.3f}× livemig's makespan on average (range {min(gains):.3f}–{max(gains):.3f}); "
                f"livemig is more than 0.5 % faster on {better}/{len(rs)}, more than 0.5 % slower on {worse}/{len(rs)}."
            )
        out.append(
            "  With one migration per link at a time each drained node sends serially whatever the order; on the "
            "10 Gbit/s instances the orders tie. With mixed links and 20 % drained, the cluster limit leaves sources "
            "with unequal work waiting, and serving the source with the most work left first is a small gain over "
            "longest-first. The larger lever is "
            "placement: with mixed links, a VMI sent to a slower target takes longer and holds its source longer "
            "(the planner now prefers the target giving the most bandwidth; see docs/planners.md)."
        )
    times = [r.plan_s for r in cons if r.size == "large"] + [r.plan_s for r in bal if r.size == "large"]
    times += [r.plan_s for r in drain if r.size == "large"]
    if times:
        out.append(
            f"- Plan time, 500 nodes / 5,000 VMIs: {'**met**' if max(times) < 1 else '**missed**'}: at most "
            f"{max(times):.2f} s over all planners and instances (wall time on the shared 2-core machine, model "
            "predictions included with a cold cache)."
        )
    out.append("")
    return out


def plots(cons: list[ConsolidationRow], bal: list[BalanceRow], drain: list[DrainRow]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    groups: dict[str, list[ConsolidationRow]] = {}
    for r in cons:
        groups.setdefault(f"{SIZES[r.size][0]} nodes {r.kind} h={r.headroom:.0%}", []).append(r)
    labels = list(groups)
    x = range(len(labels))
    axes[0].bar([i - 0.2 for i in x], [statistics.mean(r.used_after - r.bound for r in groups[k]) for k in labels],
                width=0.4, label="livemig")  # fmt: skip
    axes[0].bar([i + 0.2 for i in x], [statistics.mean(r.ffd_nodes - r.bound for r in groups[k]) for k in labels],
                width=0.4, label="FFD")  # fmt: skip
    axes[0].set_xticks(list(x), labels, fontsize=7, rotation=35, ha="right")
    axes[0].set_ylabel("nodes used − lower bound (mean)")
    axes[0].legend()
    axes[1].bar(list(x), [statistics.median(r.bytes_moved / max(1, r.ffd_bytes) for r in groups[k]) for k in labels])
    axes[1].set_xticks(list(x), labels, fontsize=7, rotation=35, ha="right")
    axes[1].set_ylabel("bytes moved / FFD bytes (median)")
    fig.tight_layout()
    fig.savefig(IMG / "planners-consolidation.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].scatter([r.greedy_bytes / GI for r in bal], [r.bytes_moved / GI for r in bal], label="greedy to 80 %")
    axes[0].scatter(
        [r.greedy_target_bytes / GI for r in bal], [r.bytes_moved / GI for r in bal], marker="x",
        label="greedy to the 70 % target",
    )  # fmt: skip
    axes[0].legend(fontsize=8)
    lim = max([r.greedy_bytes / GI for r in bal] + [r.greedy_target_bytes / GI for r in bal] + [1])
    axes[0].plot([0, lim], [0, lim], "k--", lw=0.8)
    axes[0].set_xlabel("greedy baseline: GiB moved")
    axes[0].set_ylabel("livemig: GiB moved")
    axes[1].scatter([r.greedy_max for r in bal], [r.max_after for r in bal])
    axes[1].axhline(0.8, color="r", lw=0.8)
    axes[1].axvline(0.8, color="r", lw=0.8)
    axes[1].set_xlabel("greedy: max CPU after")
    axes[1].set_ylabel("livemig: max CPU after")
    fig.tight_layout()
    fig.savefig(IMG / "planners-balancing.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    idx = range(len(drain))
    ax.plot(list(idx), [r.lpt / r.bound for r in drain], "s", mfc="none", ms=9, label="longest-first")
    ax.plot(list(idx), [r.makespan / r.bound for r in drain], "o", zorder=3, label="livemig")
    ax.plot(list(idx), [r.kubevirt / r.bound for r in drain], "^", label="KubeVirt evacuation (simulated)")
    ax.axhline(1.15, color="r", lw=0.8, label="1.15 × bound")
    split = sum(r.variant == DRAIN_VARIANTS[0][0] for r in drain)
    if 0 < split < len(drain):
        ax.axvline(split - 0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(f"instance (left: {DRAIN_VARIANTS[0][0]}; right: {DRAIN_VARIANTS[1][0]})")
    ax.set_ylabel("makespan / lower bound")
    ax.legend()
    fig.tight_layout()
    fig.savefig(IMG / "planners-drain.png", dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds-small", type=int, default=20, help="instances per configuration, 50 nodes")
    parser.add_argument("--seeds-large", type=int, default=5, help="instances per configuration, 500 nodes")
    parser.add_argument("--only", choices=["consolidation", "balancing", "drain"], action="append")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md and docs/img/planners-*.png")
    args = parser.parse_args()
    seeds = {"small": args.seeds_small, "large": args.seeds_large}
    only = set(args.only or ["consolidation", "balancing", "drain"])
    cons = bench_consolidation(seeds) if "consolidation" in only else []
    bal = bench_balancing(seeds) if "balancing" in only else []
    drain = bench_drain(seeds) if "drain" in only else []
    command = ".venv/bin/python bench/planners.py " + " ".join(sys.argv[1:])
    text = report(cons, bal, drain, command.strip())
    print(text)
    if args.write:
        plots(cons, bal, drain)
        write_section("<!-- planners:begin -->", "<!-- planners:end -->", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
