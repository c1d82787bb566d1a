"""KubeVirt's own drain, measured: the simulator's KubeVirt evacuation controller run on a benchmark instance.

The reference the drain benchmark compares livemig with is what users already have: `kubectl drain` on nodes whose
VMIs have `evictionStrategy: LiveMigrate` (here the drain taint `kubevirt.io/drain:NoSchedule`, which starts the same
evacuation controller).  `simulate_evacuation` builds a `Simulation` (`livemig.sim.state`) from the instance, taints
the drained nodes at t = 0 with the scenario's `nodeDrain` event and ticks it in simulated time in-process (no API
server): KubeVirt's evacuation controller (`livemig.sim.evacuation`) creates `kubevirt-evacuation-*` VMIMs within
KubeVirt's caps and backoff, the simulated virt-controller schedules their target pods (kube-scheduler's rules in
`livemig.sim.scheduler`) and virt-handler migrates them under the cluster's migration configuration (KubeVirt's
defaults: pre-copy, no auto-converge, no post-copy), every migration stepped by the performance model on the link
share the simulator gives it.  Nothing of livemig's planner is involved; the model is (it is the simulator's physics),
so the reference is independent of livemig's *decisions* (order, placement, technique, timing), not of its model.

The writes the engine would send to the API server are applied back here as the API server's watch would deliver
them: a `NodeTaint` becomes the node's taint, a `VmimCreate` a VMIM with a name and a uid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livemig.core.cluster import ClusterSnapshot
from livemig.sim.evacuation import EVACUATION_PREFIX
from livemig.sim.faults import parse_fault
from livemig.sim.scenario import Scenario, SimulationSettings
from livemig.sim.state import Simulation
from livemig.sim.writes import NodeTaint, VmimCreate

EPOCH_S = 1.8e9
#: KubeVirt retries a failed evacuation for ever (after its backoff); the benchmark stops waiting for a VMI once this
#: many evacuations of it in a row failed (no node admits its target pod, or it never converges).
GIVE_UP_FAILURES = 3


@dataclass(frozen=True, slots=True)
class Evacuation:
    """What KubeVirt's evacuation did, in simulated seconds from the taint."""

    makespan_s: float  # taint -> the last successful migration of a drained VMI finished
    migrations: int  # VMIMs the evacuation controller created
    failed: int  # of which failed (then retried after KubeVirt's backoff)
    left: int  # VMIs still on a drained node at the end: given up after GIVE_UP_FAILURES failed evacuations
    downtime_s: float  # summed over the successful migrations
    setup_s: float  # mean VMIM creation -> migration start (target pod scheduling, readiness, hand-off)
    ticks: int


def simulate_evacuation(snap: ClusterSnapshot, drained: list[str], *, seed: int, cap_s: float = 86400.0) -> Evacuation:
    """Taint `drained` at t = 0 and tick until every VMI on them has moved or been given up on (GIVE_UP_FAILURES
    failed evacuations in a row) and no migration of theirs is open, or until `cap_s` (a safety net)."""
    faults = tuple(
        parse_fault({"type": "nodeDrain", "node": node, "at": "0s"}, f"faults[{i}]") for i, node in enumerate(drained)
    )
    scenario = Scenario(
        snapshot=snap,
        kubevirt=snap.kubevirt,
        kubevirt_manifest=snap.kubevirt.to_manifest(),
        policies=(),
        policy_manifests=(),
        faults=faults,
        simulation=SimulationSettings(seed=seed),
    )
    sim = Simulation(scenario, epoch_s=EPOCH_S, seed=seed)
    step = scenario.simulation.step_s
    to_move = {v.key for v in snap.vmis if v.node in drained}
    drained_set = set(drained)
    outcomes: list[dict[str, Any]] = []
    created = 0
    now = 0.0
    ticks = 0
    while True:
        result = sim.tick(now)
        ticks += 1
        outcomes += result.outcomes
        for write in result.writes:
            if isinstance(write, NodeTaint):
                spec = sim.nodes[write.name].spec
                taints = [{"key": t.key, "value": t.value, "effect": t.effect.value} for t in spec.taints]
                taints.append({"key": write.key, "effect": "NoSchedule"})
                sim.on_node(write.name, spec.labels, taints, cordoned=not spec.schedulable)
            elif isinstance(write, VmimCreate):
                created += 1
                name = f"{EVACUATION_PREFIX}{created:05d}"
                meta = {k: v for k, v in write.manifest["metadata"].items() if k != "generateName"}
                sim.on_vmim({**write.manifest, "metadata": {**meta, "name": name, "uid": f"uid-{name}"}}, now)
        left = [k for k in to_move if sim.vmis[k].node in drained_set and sim.vmis[k].phase == "Running"]
        waiting = [k for k in left if sim.evacuation.failures.get(k, (0, 0.0))[0] < GIVE_UP_FAILURES]
        if (not waiting and not any(m.vmi_key in to_move for m in sim.open.values())) or now >= cap_s:
            break
        now += step
    succeeded = [o for o in outcomes if o["result"] == "Succeeded" and o["vmi"] in to_move]
    finished = [float(o["finishedAt"]) for o in succeeded]
    setups = [float(o["startedAt"]) - float(o["createdAt"]) for o in outcomes if o.get("startedAt") is not None]
    return Evacuation(
        makespan_s=max(finished, default=0.0),
        migrations=created,
        failed=sum(1 for o in outcomes if o["result"] != "Succeeded"),
        left=len(left),
        downtime_s=sum(float(o["simulated"]["downtime_s"] or 0.0) for o in succeeded),
        setup_s=sum(setups) / len(setups) if setups else 0.0,
        ticks=ticks,
    )
