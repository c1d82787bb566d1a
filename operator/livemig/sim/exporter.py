"""Prometheus metrics of the simulated cluster, with KubeVirt's and node-exporter's names and labels.

Node series carry `node` and `instance` = the node's name, as a relabelled node-exporter would; scrape with
`honor_labels: true` so Prometheus keeps them (docs/simulator.md).  Counters of seconds (CPU, PSI) advance in
wall-clock-equivalent seconds, so `rate()` gives cores and stall fractions at any time scale; byte counters are
simulated bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from livemig.sim.load import integrate, node_demand
from livemig.sim.objects import PHASE_BUCKETS_S
from livemig.sim.rules import Phase
from livemig.sim.state import Simulation

PER_CPU_LIMIT = 2048


class SimulationCollector(Collector):
    """Reads the simulation's state at scrape time."""

    def __init__(self, sim: Simulation, now: Callable[[], float], *, per_cpu: bool | None = None) -> None:
        self._sim = sim
        self._now = now
        # node-exporter exports one node_cpu_seconds_total series per CPU and mode; for big clusters (the 200-node
        # scenario has 12,800 CPUs) the simulator exports one series per mode with cpu="all" instead.
        total_cpus = sum(max(1, round(n.spec.cpu_cores)) for n in sim.nodes.values())
        self.per_cpu = total_cpus <= PER_CPU_LIMIT if per_cpu is None else per_cpu
        total_vcpus = sum(max(1, v.spec.vcpus) for v in sim.vmis.values())
        self.per_vcpu = total_vcpus <= PER_CPU_LIMIT if per_cpu is None else per_cpu

    def collect(self) -> Iterator[Metric]:
        sim = self._sim
        now = self._now()
        integrate(sim, now)
        yield from self._nodes(sim, now)
        yield from self._vmis(sim, now)
        yield from self._migrations(sim)
        yield from self._simulator(sim, now)

    # ---- node-exporter ----

    def _nodes(self, sim: Simulation, now: float) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", labels=["node", "instance", "cpu", "mode"]
        )
        total = GaugeMetricFamily(
            "node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes.", labels=["node", "instance"]
        )
        avail = GaugeMetricFamily(
            "node_memory_MemAvailable_bytes",
            "Memory information field MemAvailable_bytes.",
            labels=["node", "instance"],
        )
        psi = {
            "cpu_waiting": CounterMetricFamily(
                "node_pressure_cpu_waiting_seconds_total",
                "Total time in seconds that processes have waited for CPU time",
                labels=["node", "instance"],
            ),
            "memory_waiting": CounterMetricFamily(
                "node_pressure_memory_waiting_seconds_total",
                "Total time in seconds that processes have waited for memory",
                labels=["node", "instance"],
            ),
            "memory_stalled": CounterMetricFamily(
                "node_pressure_memory_stalled_seconds_total",
                "Total time in seconds no process could make progress due to memory congestion",
                labels=["node", "instance"],
            ),
            "io_waiting": CounterMetricFamily(
                "node_pressure_io_waiting_seconds_total",
                "Total time in seconds that processes have waited due to IO congestion",
                labels=["node", "instance"],
            ),
            "io_stalled": CounterMetricFamily(
                "node_pressure_io_stalled_seconds_total",
                "Total time in seconds no process could make progress due to IO congestion",
                labels=["node", "instance"],
            ),
        }
        up = GaugeMetricFamily(
            "livemig_sim_node_ready", "1 if the simulated node is Ready.", labels=["node", "instance"]
        )
        demand = node_demand(sim, now)
        for name, node in sim.nodes.items():
            labels = [name, name]
            cores = max(1, round(node.spec.cpu_cores))
            for mode, seconds in node.cpu_seconds.items():
                if not self.per_cpu:
                    cpu.add_metric([*labels, "all", mode], seconds)
                    continue
                for c in range(cores):
                    cpu.add_metric([*labels, str(c), mode], seconds / cores)
            total.add_metric(labels, node.spec.memory_bytes)
            avail.add_metric(labels, max(0.0, node.spec.memory_bytes - demand[name][1]))
            for key, family in psi.items():
                family.add_metric(labels, node.psi[key])
            up.add_metric(labels, 1.0 if node.ready else 0.0)
        yield cpu
        yield total
        yield avail
        yield from psi.values()
        yield up

    # ---- KubeVirt virt-handler: per VMI ----

    def _vmis(self, sim: Simulation, now: float) -> Iterator[Metric]:
        labels = ["node", "namespace", "name"]
        available = GaugeMetricFamily(
            "kubevirt_vmi_memory_available_bytes", "Amount of usable memory as seen by the domain.", labels=labels
        )
        domain = GaugeMetricFamily(
            "kubevirt_vmi_memory_domain_bytes", "The amount of memory allocated to the domain.", labels=labels
        )
        resident = GaugeMetricFamily(
            "kubevirt_vmi_memory_resident_bytes", "Resident set size of the process running the domain.", labels=labels
        )
        usable = GaugeMetricFamily(
            "kubevirt_vmi_memory_usable_bytes",
            "The amount of memory which can be reclaimed by balloon without pushing the guest system to swap.",
            labels=labels,
        )
        cpu = CounterMetricFamily(
            "kubevirt_vmi_cpu_usage_seconds_total",
            "Total CPU time spent in all modes (sum of both vcpu and hypervisor usage).",
            labels=labels,
        )
        delay = CounterMetricFamily(
            "kubevirt_vmi_vcpu_delay_seconds_total",
            "Amount of time spent by each vcpu waiting in the queue instead of running.",
            labels=[*labels, "id"],
        )
        dirty = GaugeMetricFamily(
            "kubevirt_vmi_dirty_rate_bytes_per_second", "Guest dirty-rate in bytes per second.", labels=labels
        )
        info = GaugeMetricFamily(
            "kubevirt_vmi_info", "Information about VirtualMachineInstances.", labels=[*labels, "phase"]
        )
        non_evictable = GaugeMetricFamily(
            "kubevirt_vmi_non_evictable",
            "Indication for a VirtualMachine that its eviction strategy is set to Live "
            "Migration but is not migratable.",
            labels=labels,
        )
        for vmi in sim.vmis.values():
            namespace, name = vmi.key.split("/", 1)
            lv = [vmi.node, namespace, name]
            info.add_metric([*lv, vmi.phase.lower()], 1.0)
            if vmi.phase != "Running":
                continue
            used = vmi.spec.usage.memory.value_at(now)
            available.add_metric(lv, vmi.spec.memory_bytes)
            domain.add_metric(lv, vmi.spec.memory_bytes)
            resident.add_metric(lv, used)
            usable.add_metric(lv, max(0.0, vmi.spec.memory_bytes - used))
            cpu.add_metric(lv, vmi.cpu_seconds)
            if self.per_vcpu:
                for i in range(max(1, vmi.spec.vcpus)):
                    delay.add_metric([*lv, str(i)], vmi.delay_seconds / max(1, vmi.spec.vcpus))
            else:
                delay.add_metric([*lv, "all"], vmi.delay_seconds)
            rate = 0.0 if vmi.paused else vmi.spec.usage.dirty_rate.value_at(now) * (1.0 - vmi.throttle)
            dirty.add_metric(lv, rate)
            if vmi.spec.eviction_strategy == "LiveMigrate" and not vmi.spec.live_migratable:
                non_evictable.add_metric(lv, 1.0)
        yield from (available, domain, resident, usable, cpu, delay, dirty, info, non_evictable)

    # ---- KubeVirt: migrations ----

    def _migrations(self, sim: Simulation) -> Iterator[Metric]:
        counts = {"pending": 0, "scheduling": 0, "running": 0, "unset": 0}
        succeeded = GaugeMetricFamily(
            "kubevirt_vmi_migration_succeeded",
            "Indicates if the VMI migration succeeded.",
            labels=["vmi", "vmim", "namespace"],
        )
        failed = GaugeMetricFamily(
            "kubevirt_vmi_migration_failed",
            "Indicates if the VMI migration failed.",
            labels=["vmi", "vmim", "namespace"],
        )
        prog = ["namespace", "name", "node"]
        data_help = "The total Guest OS data to be migrated to the new VM."
        data_total: Metric
        if sim.kubevirt_version.minor >= 8:  # exposed as kubevirt_vmi_migration_data_bytes_total
            data_total = CounterMetricFamily("kubevirt_vmi_migration_data_bytes", data_help, labels=prog)
        else:
            # Before v1.8 KubeVirt named it kubevirt_vmi_migration_data_total_bytes (a counter without the _total
            # suffix, which prometheus_client cannot expose as a counter: a gauge of the same name and value).
            data_total = GaugeMetricFamily("kubevirt_vmi_migration_data_total_bytes", data_help, labels=prog)
        remaining = GaugeMetricFamily(
            "kubevirt_vmi_migration_data_remaining_bytes",
            "The remaining guest OS data to be migrated to the new VM.",
            labels=prog,
        )
        processed = GaugeMetricFamily(
            "kubevirt_vmi_migration_data_processed_bytes",
            "The total Guest OS data processed and migrated to the new VM.",
            labels=prog,
        )
        dirty = GaugeMetricFamily(
            "kubevirt_vmi_migration_dirty_memory_rate_bytes",
            "The rate of memory being dirty in the Guest OS.",
            labels=prog,
        )
        transfer = GaugeMetricFamily(
            # v1.5 and v1.6 named it ..._disk_transfer_rate_bytes (with the same help text); v1.7 renamed it.
            "kubevirt_vmi_migration_memory_transfer_rate_bytes"
            if sim.kubevirt_version.minor >= 7
            else "kubevirt_vmi_migration_disk_transfer_rate_bytes",
            "The rate at which the memory is being transferred.",
            labels=prog,
        )
        start = GaugeMetricFamily(
            "kubevirt_vmi_migration_start_time_seconds",
            "The time at which the migration started.",
            labels=["node", "namespace", "name", "migration_name"],
        )
        end = GaugeMetricFamily(
            "kubevirt_vmi_migration_end_time_seconds",
            "The time at which the migration ended.",
            labels=["node", "namespace", "name", "migration_name", "status"],
        )
        for m in sim.migrations.values():
            if m.phase is Phase.UNSET:
                counts["unset"] += 1
            elif m.phase is Phase.PENDING:
                counts["pending"] += 1
            elif m.phase is Phase.SCHEDULING:
                counts["scheduling"] += 1
            elif m.phase.is_running:
                counts["running"] += 1
            vmi_name = m.vmi_key.split("/", 1)[1]
            if m.phase is Phase.SUCCEEDED:
                succeeded.add_metric([vmi_name, m.name, m.namespace], 1.0)
            elif m.phase is Phase.FAILED:
                failed.add_metric([vmi_name, m.name, m.namespace], 1.0)
            if m.phase is Phase.RUNNING and m.last is not None:
                lv = [m.namespace, vmi_name, m.source_node]
                data_total.add_metric(lv, sim.vmis[m.vmi_key].spec.memory_bytes)
                remaining.add_metric(lv, m.last.remaining_bytes)
                processed.add_metric(lv, m.last.transferred_bytes)
                dirty.add_metric(lv, m.last.dirty_rate_bps)
                transfer.add_metric(lv, m.last.transfer_rate_bps)
        # vmistats_collector's collectVMIMigrationTime: one series per VMI, from its migrationState (so only its
        # latest migration), labelled with the VMI's node now; `status` is "" unless `completed` (so "" for a failed
        # migration from v1.6, where failure leaves `completed` unset).
        for vmi_key, m in sim.latest_handed_off().items():
            vmi = sim.vmis[vmi_key]
            labels = [vmi.node, m.namespace, vmi_key.split("/", 1)[1], m.name]
            if m.running_since is not None:
                start.add_metric(labels, float(int(sim.epoch_s + m.running_since)))
            if m.end_at is not None:
                failed_migration = m.outcome is None or not m.outcome.succeeded
                completed = not failed_migration or sim.kubevirt_version.completed_on_failure
                status = "" if not completed else ("failed" if failed_migration else "succeeded")
                end.add_metric([*labels, status], float(int(sim.epoch_s + m.end_at)))
        if not sim.kubevirt_version.minor >= 6:
            counts.pop("unset", None)  # kubevirt_vmi_migrations_in_unset_phase is new in v1.6
        for phase, value in counts.items():
            yield GaugeMetricFamily(
                f"kubevirt_vmi_migrations_in_{phase}_phase", f"Number of current {phase} migrations.", value=value
            )
        yield from (succeeded, failed, data_total, remaining, processed, dirty, transfer, start, end)
        histogram = HistogramMetricFamily(
            "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds",
            "Histogram of VM migration phase transitions duration from creation time in seconds.",
            labels=["phase"],
        )
        bounds = [*(str(float(b)) for b in PHASE_BUCKETS_S), "+Inf"]
        for phase, bucket_counts in sim.phase_histogram.buckets.items():
            buckets = list(zip(bounds, map(float, bucket_counts), strict=True))
            histogram.add_metric([phase], buckets, sim.phase_histogram.sums[phase])
        yield histogram

    # ---- the simulator's own ----

    def _simulator(self, sim: Simulation, now: float) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "livemig_sim_time_seconds", "Simulated seconds since the simulation started.", value=now
        )
        yield CounterMetricFamily(
            "livemig_sim_vmis_lost", "VMs lost to a fault (post-copy link failure, node failure).", value=sim.vmis_lost
        )
        fired = CounterMetricFamily("livemig_sim_faults_fired", "Faults that took effect, by type.", labels=["type"])
        for kind, n in sim.faults_fired.items():
            fired.add_metric([kind], n)
        yield fired
        done = CounterMetricFamily(
            "livemig_sim_migrations_finished", "Finished migrations by result.", labels=["result"]
        )
        for result, n in sim.migration_totals.items():
            done.add_metric([result], n)
        yield done
