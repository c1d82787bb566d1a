"""Soak (issue 12, item 6): load balancing and consolidation together over an accelerated day of fluctuating load,
against the real API server, a real Prometheus and the simulator at time scale 60.

Every VMI's CPU follows a diurnal curve (0.2 to 1.8 cores; the VMIs that start on node-04..06 half a period out of
phase with those on node-01..03, and the phases travel with the VMIs as they move), so at the trough Consolidation
wants to pack nodes and at the peak LoadBalancing wants to spread them: the two fight over the same VMIs unless
cooldowns, budgets and the policies' priorities hold.  Counted from the simulator's outcome log and
the API server:

- ping-pongs (a VMI moved back to a node it left, within its cooldown): 0;
- migrations per VMI within `maxMigrationsPerVMI` (the run is shorter than `limits.window`);
- concurrency per policy within `maxConcurrentMigrations` and, per source node, `maxConcurrentMigrationsPerNode`;
- the operator is one process throughout; its RSS, sampled every 2 s, has no growth trend (slope over the second
  half, reported; asserted on the full run);
- once the policies stop acting (dryRun) and the last migration is final: no KubeVirt MigrationPolicy of livemig's
  and no `livemig.io/` label left on any VMI or node.

`test_soak_short` (default run) compresses the day to a 45-simulated-minute period; the full day is
`test_soak_day` (24 simulated hours, ~25 min of wall time):

    bash hack/test.sh -m slow -k soak tests/integration/controller/test_soak.py -s

Its figures go to docs/reliability.md (printed as JSON; also written to `$LIVEMIG_SOAK_REPORT` if set).
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.stack_helpers import apply, max_overlap, node, scenario, vmi, vmims, wait_until

pytestmark = pytest.mark.integration

TIME_SCALE = 60.0
PLACEMENT = {"node-01": 9, "node-02": 8, "node-03": 7, "node-04": 6, "node-05": 4, "node-06": 2}


@dataclass(frozen=True)
class Soak:
    period_s: float  # simulated seconds of one load cycle
    cycles: float  # how many periods to run
    cooldown: str  # wall-clock (the operator's clock): 20s = 20 simulated minutes at 60x
    cooldown_s: float
    max_per_vmi: int = 3
    max_lb: int = 3
    max_cons: int = 2
    averaging_window: str = "20s"  # LoadBalancing's rate() window, wall-clock


def soak_scenario(soak: Soak) -> dict[str, Any]:
    nodes = [node(name, cpu=16, memory="64Gi") for name in PLACEMENT]
    vmis: list[dict[str, Any]] = []
    index = 0
    for n, (name, count) in enumerate(PLACEMENT.items()):
        for _ in range(count):
            phase = 0 if n < 3 else soak.period_s / 2  # nodes 01-03 peak while 04-06 are at their trough
            cpu = {"diurnal": {"mean": 1.0, "amplitude": 0.8, "period": f"{soak.period_s:g}s", "phase": f"{phase:g}s"}}
            vmis.append(vmi("prod", f"svc-{index:02d}", name, vcpus=2, memory="4Gi", cpu=cpu))  # type: ignore[arg-type]
            index += 1
    return scenario(nodes, vmis)


def policies(soak: Soak) -> list[dict[str, Any]]:
    limits = {"cooldown": soak.cooldown, "maxMigrationsPerVMI": soak.max_per_vmi, "window": "1h"}
    balance = {
        "purpose": "LoadBalancing",
        "loadBalancing": {
            "cpu": {"high": 0.8, "target": 0.6},
            "averagingWindow": soak.averaging_window,
            "hysteresis": 0.05,
        },
        "limits": {**limits, "maxConcurrentMigrations": soak.max_lb, "maxConcurrentMigrationsPerNode": 1},
        "interval": "5s",
    }
    consolidate = {
        "purpose": "Consolidation",
        "consolidation": {"lowUtilization": {"cpu": 0.3}, "headroom": {"cpu": 0.2}, "maxNodesPerCycle": 1},
        "limits": {**limits, "maxConcurrentMigrations": soak.max_cons, "maxConcurrentMigrationsPerNode": 1},
        "interval": "5s",
    }
    return [
        {"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": name}, "spec": spec}
        for name, spec in (("balance", balance), ("consolidate", consolidate))
    ]


class RssSampler(threading.Thread):
    """VmRSS of one process every `every_s` seconds of wall time, with the time of each sample."""

    def __init__(self, pid: int, every_s: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []  # (wall seconds since start, MiB)
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._stop_event.wait(self.every_s):  # a sampling period, not a wait for a condition
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.samples.append((time.monotonic() - start, int(line.split()[1]) / 1024))
            except OSError:
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def slope_mib_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over the second half of the run."""
    half = samples[len(samples) // 2 :]
    if len(half) < 3:
        return 0.0
    xs, ys = [t for t, _ in half], [m for _, m in half]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


def ping_pongs(records: list[dict[str, Any]], cooldown_s: float) -> tuple[int, int]:
    """(moves back to a node the VMI left within `cooldown_s` of wall time, moves back to a node it left at all).
    Times in the outcome log are simulated seconds: wall = simulated / time scale."""
    within = ever = 0
    by_vmi: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in records:
        if r["result"] == "Succeeded":
            by_vmi[r["vmi"]].append(r)
    for moves in by_vmi.values():
        moves.sort(key=lambda r: r["createdAt"])
        for j, back in enumerate(moves):
            left = [m for m in moves[:j] if m["source"] == back["target"]]
            if left:
                ever += 1
                if (back["createdAt"] - left[-1]["createdAt"]) / TIME_SCALE < cooldown_s:
                    within += 1
    return within, ever


def run_soak(start_stack: Any, soak: Soak, *, assert_rss: bool) -> dict[str, Any]:
    stack = start_stack(soak_scenario(soak), time_scale=TIME_SCALE)
    operator = stack.operator_process
    assert operator is not None
    assert operator.process is not None
    assert stack.prometheus is not None
    sampler = RssSampler(operator.process.pid)
    sampler.start()
    for doc in policies(soak):
        apply(stack, doc)
    started = time.monotonic()
    end_sim_s = soak.period_s * soak.cycles
    wall_budget = end_sim_s / TIME_SCALE * 3 + 120
    stack.prometheus.wait_for(f"livemig_sim_time_seconds >= {end_sim_s:g}", timeout_s=wall_budget)
    run_wall_s = time.monotonic() - started
    sampler.stop()
    assert operator.starts == 1
    assert operator.process.poll() is None, operator.log_tail()

    # Stop acting, let the last migrations finish, then look for anything left behind.
    for doc in policies(soak):
        doc["spec"]["dryRun"] = True
        apply(stack, doc)
    wait_until(
        lambda: all((v.get("status") or {}).get("phase") in ("Succeeded", "Failed") for v in vmims(stack)),
        timeout_s=180,
        what="every migration final",
    )
    livemig_kv = wait_until(
        lambda: (
            not [
                p
                for p in stack.kubectl_json("get", "migrationpolicies.migrations.kubevirt.io")["items"]
                if p["metadata"]["name"].startswith("livemig-")
            ]
            or None
        ),
        timeout_s=60,
        what="livemig's KubeVirt MigrationPolicies removed",
    )
    assert livemig_kv
    labelled = [
        f"{kind} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}: {key}"
        for kind in ("vmis", "nodes")
        for o in stack.kubectl_json("get", kind, "-A")["items"]
        for key in o["metadata"].get("labels") or {}
        if key.startswith("livemig.io/")
    ]
    assert labelled == [], labelled

    records = stack.sim.outcomes()
    objects = vmims(stack)
    policy_of = {
        f"{v['metadata']['namespace']}/{v['metadata']['name']}": v["metadata"]["labels"].get("livemig.io/policy")
        for v in objects
    }
    per_vmi = collections.Counter(f"{v['metadata']['namespace']}/{v['spec']['vmiName']}" for v in objects)
    assert max(per_vmi.values(), default=0) <= soak.max_per_vmi, per_vmi.most_common(3)
    assert collections.Counter(r["vmi"] for r in records) <= per_vmi, "the log and the API server disagree"
    within, ever = ping_pongs(records, soak.cooldown_s)
    assert within == 0, "a VMI went back to a node it left within its cooldown"
    concurrency: dict[str, int] = {}
    per_node: dict[str, int] = {}
    for name, limit in (("balance", soak.max_lb), ("consolidate", soak.max_cons)):
        own = [r for r in records if policy_of.get(r["vmim"]) == name]
        concurrency[name] = max_overlap([(r["createdAt"], r["finishedAt"]) for r in own])
        per_node[name] = max(
            (
                max_overlap([(r["createdAt"], r["finishedAt"]) for r in own if r["source"] == source])
                for source in PLACEMENT
            ),
            default=0,
        )
        assert concurrency[name] <= limit, (name, concurrency[name])
        assert per_node[name] <= 1, (name, per_node[name])
    rss = [m for _, m in sampler.samples]
    slope = slope_mib_per_hour(sampler.samples)
    report = {
        "simulated_hours": round(end_sim_s / 3600, 2),
        "wall_minutes": round(run_wall_s / 60, 1),
        "migrations": len(records),
        "by_policy": dict(collections.Counter(policy_of.get(r["vmim"]) for r in records)),
        "failed": sum(1 for r in records if r["result"] != "Succeeded"),
        "vmis_lost": sum(1 for r in records if r.get("vmLost")),
        "vmis_moved": len(per_vmi),
        "max_migrations_per_vmi": max(per_vmi.values(), default=0),
        "ping_pongs_within_cooldown": within,
        "returns_to_a_node_left_earlier": ever,
        "max_concurrency": concurrency,
        "max_concurrency_per_source_node": per_node,
        "rss_mib": {
            "first": round(rss[0], 1) if rss else None,
            "max": round(max(rss), 1) if rss else None,
            "last": round(rss[-1], 1) if rss else None,
            "samples": len(rss),
            "slope_second_half_mib_per_hour": round(slope, 2),
        },
        "operator_starts": operator.starts,
        "leftover_kubevirt_policies": 0,
        "leftover_labels": 0,
    }
    print(json.dumps(report, indent=1))
    if path := os.environ.get("LIVEMIG_SOAK_REPORT"):
        Path(path).write_text(json.dumps(report, indent=1) + "\n")
    assert not report["vmis_lost"]
    if assert_rss:
        # No growth trend: over the second half, the fitted growth stays below 5 % of the median RSS.
        second_half_h = (sampler.samples[-1][0] - sampler.samples[len(rss) // 2][0]) / 3600
        assert slope * second_half_h < 0.05 * statistics.median(rss), report["rss_mib"]
    return report


def test_soak_short(start_stack: Any) -> None:
    """One compressed day: a 45-simulated-minute load cycle, run once (45 s of wall time at 60x)."""
    soak = Soak(period_s=2700, cycles=1.0, cooldown="15s", cooldown_s=15, averaging_window="10s")
    report = run_soak(start_stack, soak, assert_rss=False)
    assert report["migrations"] > 0, "the load must make the policies act, or nothing was tested"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_soak_day(start_stack: Any) -> None:
    """An accelerated day: 24 simulated hours of a 24-hour cycle at 60x (~24 min of wall time)."""
    report = run_soak(start_stack, Soak(period_s=86400, cycles=1.0, cooldown="60s", cooldown_s=60), assert_rss=True)
    assert report["migrations"] > 0
