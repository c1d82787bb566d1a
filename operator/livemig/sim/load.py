"""The load the simulated VMs and migrations put on their nodes, integrated into the counters node-exporter and
virt-handler export (CPU seconds, PSI stall seconds, vCPU delay)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from livemig.core.cluster import Node
from livemig.sim.objects import VmiState
from livemig.sim.rules import Phase

if TYPE_CHECKING:
    from livemig.sim.state import Simulation


def vmi_cpu_cores(vmi: VmiState, now: float) -> float:
    if vmi.phase != "Running" or vmi.paused:
        return 0.0
    return vmi.spec.usage.cpu.value_at(now) * (1.0 - vmi.throttle)


def node_demand(sim: Simulation, now: float) -> dict[str, tuple[float, float]]:
    """(CPU demand in cores, memory in use in bytes) per node, migrations' costs included."""
    cpu = {n: 0.0 for n in sim.nodes}
    mem = {n: 0.0 for n in sim.nodes}
    for vmi in sim.vmis.values():
        if vmi.phase == "Running" and vmi.node in cpu:
            cpu[vmi.node] += vmi_cpu_cores(vmi, now)
            mem[vmi.node] += vmi.spec.usage.memory.value_at(now)
    for m in sim.open.values():
        if m.phase is Phase.RUNNING and m.target_node in cpu:
            cpu[m.source_node] += sim.settings.migration_cpu_source_cores
            cpu[m.target_node] += sim.settings.migration_cpu_target_cores
            # The target holds the pages already copied.
            if m.last is not None:
                mem[m.target_node] += min(m.last.transferred_bytes, sim.vmis[m.vmi_key].spec.memory_bytes)
    for name, node in sim.nodes.items():
        usage = node.spec.usage
        if usage is not None and usage.cpu is not None:
            baseline = sum(v.usage.cpu.value_at(now) for v in sim.initial_vmis.get(name, ()))
            cpu[name] += max(0.0, usage.cpu.value_at(now) - baseline)
        if not node.ready:
            cpu[name] = 0.0
            mem[name] = 0.0
    return {n: (cpu[n], mem[n]) for n in sim.nodes}


def integrate(sim: Simulation, now: float) -> None:
    """Advance the CPU and PSI counters to `now` (wall-equivalent seconds: rate() reads cores and fractions)."""
    dt_sim = now - sim.last_integrated
    if dt_sim <= 0:
        return
    sim.last_integrated = now
    dt = dt_sim / sim.settings.time_scale
    demand = node_demand(sim, now)
    migration_cpu: dict[str, float] = {}
    for m in sim.open.values():
        if m.phase is Phase.RUNNING and m.target_node is not None:
            src, dst = sim.settings.migration_cpu_source_cores, sim.settings.migration_cpu_target_cores
            migration_cpu[m.source_node] = migration_cpu.get(m.source_node, 0.0) + src
            migration_cpu[m.target_node] = migration_cpu.get(m.target_node, 0.0) + dst
    for name, node in sim.nodes.items():
        cpu, mem = demand[name]
        cap = node.spec.cpu_cores
        used = min(cpu, cap)
        system = min(used, migration_cpu.get(name, 0.0))
        node.cpu_seconds["user"] += (used - system) * dt
        node.cpu_seconds["system"] += system * dt
        node.cpu_seconds["idle"] += max(0.0, cap - used) * dt
        pressure = node_pressure(node.spec, cpu, mem)
        node.psi["cpu_waiting"] += pressure[0] * dt
        node.psi["memory_waiting"] += pressure[1] * dt
        node.psi["memory_stalled"] += pressure[1] / 2 * dt
        node.psi["io_waiting"] += pressure[2] * dt
        node.psi["io_stalled"] += pressure[2] / 2 * dt
    overload = {
        name: (1.0 - node.spec.cpu_cores / demand[name][0]) if demand[name][0] > node.spec.cpu_cores else 0.0
        for name, node in sim.nodes.items()
    }
    for vmi in sim.vmis.values():
        wanted = vmi_cpu_cores(vmi, now)
        share = overload.get(vmi.node, 0.0)
        vmi.cpu_seconds += wanted * (1.0 - share) * dt
        vmi.delay_seconds += wanted * share * dt


def node_pressure(node: Node, cpu_demand: float, memory_used: float) -> tuple[float, float, float]:
    """PSI "some" fractions (cpu, memory, io): the scenario's base pressure, raised by overload.

    CPU: the share of demand that cannot run (1 - capacity/demand) once demand exceeds the cores.  Memory: rises
    linearly from 90 % to 100 % use.  A simplification, documented in docs/simulator.md.
    """
    cpu = max(node.pressure.cpu, 1.0 - node.cpu_cores / cpu_demand if cpu_demand > node.cpu_cores else 0.0)
    used = memory_used / node.memory_bytes if node.memory_bytes else 0.0
    mem = max(node.pressure.memory, min(1.0, max(0.0, (used - 0.9) / 0.1)))
    return min(1.0, cpu), mem, node.pressure.io
