"""`VmiReader`: one entry of a snapshot's `vmis:` list read into a `Vmi`: size, usage profiles (CPU, memory, dirty
rate), requests, where it may run (node selector, affinity, tolerations), how it is evicted and its past migrations.
"""

from __future__ import annotations

from collections.abc import Mapping

from livemig.core.cluster import MAX_VMI_MEMORY_BYTES, MAX_VMI_VCPUS, EvictionStrategy, Node, Vmi, VmiUsage
from livemig.core.profiles import Constant, parse_profile
from livemig.core.snapshot_parser.fields import parse_cpu, parse_memory, parse_rate
from livemig.core.snapshot_parser.scheduling import SchedulingReader
from livemig.core.units import parse_bytes

_VMI_KEYS = (
    "namespace", "name", "labels", "node", "vcpus", "memory", "usage", "workingSet", "nodeSelector", "affinity",
    "tolerations", "evictionStrategy", "liveMigratable", "migrations", "backend", "requests",
    "overcommitGuestOverhead",
)  # fmt: skip


class VmiReader(SchedulingReader):
    def vmi(self, value: object, path: str, nodes: Mapping[str, Node]) -> Vmi | None:
        m = self.mapping(value, path, _VMI_KEYS)
        if m is None:
            return None
        before = len(self.errors)
        namespace = self.string(m.get("namespace", "default"), f"{path}.namespace")
        name = self.string(m.get("name"), f"{path}.name")
        node = self.string(m.get("node"), f"{path}.node")
        if node is not None and nodes and node not in nodes:
            self.fail(f"{path}.node", f"names no node in nodes: {node!r}")
        vcpus = (
            self.number(m.get("vcpus"), f"{path}.vcpus", integer=True, minimum=1, maximum=MAX_VMI_VCPUS)
            if "vcpus" in m
            else None
        )
        if "vcpus" not in m:
            self._missing(f"{path}.vcpus")
        memory = (
            self.call(parse_bytes, m.get("memory"), f"{path}.memory", allow_zero=False)
            if "memory" in m
            else self._missing(f"{path}.memory")
        )
        if memory is not None and memory > MAX_VMI_MEMORY_BYTES:
            self.fail(f"{path}.memory", f"must be at most 1Pi, got {m.get('memory')!r}")
            memory = None
        labels = self.labels(m.get("labels"), f"{path}.labels")
        usage = self.vmi_usage(m.get("usage"), f"{path}.usage", vcpus, memory)
        working_set = (
            self.call(parse_bytes, m["workingSet"], f"{path}.workingSet") if m.get("workingSet") is not None else None
        )
        if working_set is not None and memory is not None and working_set > memory:
            self.fail(f"{path}.workingSet", "must not exceed memory")
        node_selector = self.labels(m.get("nodeSelector"), f"{path}.nodeSelector")
        affinity = self.affinity(m.get("affinity"), f"{path}.affinity")
        tolerations = self.tolerations(m.get("tolerations"), f"{path}.tolerations")
        strategy = (
            self.enum(m["evictionStrategy"], f"{path}.evictionStrategy", EvictionStrategy)
            if m.get("evictionStrategy") is not None
            else EvictionStrategy.LIVE_MIGRATE
        )
        migratable = self.boolean(m.get("liveMigratable", True), f"{path}.liveMigratable")
        migrations: list[float] = []
        raw = m.get("migrations")
        if raw is not None:
            if not isinstance(raw, list):
                self.fail(f"{path}.migrations", "must be a list of timestamps")
            else:
                for i, t in enumerate(raw):
                    s = self.timestamp(t, f"{path}.migrations[{i}]")
                    if s is not None:
                        migrations.append(s)
        backend = m.get("backend")
        if backend is not None and backend not in ("sim", "qemu"):
            self.fail(f"{path}.backend", f"must be sim or qemu, not {backend!r}")
        cpu_request, memory_request = self.requests(m.get("requests"), f"{path}.requests")
        overcommit_overhead = self.boolean(m.get("overcommitGuestOverhead", False), f"{path}.overcommitGuestOverhead")
        if len(self.errors) != before:
            return None
        assert namespace is not None
        assert name is not None
        assert node is not None
        assert vcpus is not None
        assert memory is not None
        assert usage is not None
        assert strategy is not None
        assert migratable is not None
        return Vmi(
            namespace=namespace,
            name=name,
            node=node,
            vcpus=int(vcpus),
            memory_bytes=memory,
            usage=usage,
            cpu_cores=usage.cpu.value_at(0.0),
            memory_used_bytes=usage.memory.value_at(0.0),
            dirty_rate_bps=usage.dirty_rate.value_at(0.0),
            labels=labels,
            working_set_bytes=working_set,
            node_selector=node_selector,
            affinity=affinity,
            tolerations=tolerations,
            eviction_strategy=strategy,
            live_migratable=migratable,
            migrations_s=tuple(sorted(migrations)),
            backend=str(backend) if backend is not None else None,
            cpu_request_cores=cpu_request,
            memory_request_bytes=memory_request,
            overcommit_guest_overhead=bool(overcommit_overhead),
        )

    def vmi_usage(self, value: object, path: str, vcpus: float | None, memory: float | None) -> VmiUsage | None:
        m: Mapping[str, object] = {}
        if value is not None:
            got = self.mapping(value, path, ("cpu", "memory", "dirtyRate"))
            if got is None:
                return None
            m = got
        before = len(self.errors)
        cpu = (
            parse_profile(m["cpu"], f"{path}.cpu", parse_cpu, self.errors)
            if "cpu" in m
            else Constant(float(vcpus or 0))
        )
        mem = (
            parse_profile(m["memory"], f"{path}.memory", parse_memory, self.errors)
            if "memory" in m
            else Constant(float(memory or 0))
        )
        dirty = (
            parse_profile(m["dirtyRate"], f"{path}.dirtyRate", parse_rate, self.errors)
            if "dirtyRate" in m
            else Constant(0.0)
        )
        if len(self.errors) != before or cpu is None or mem is None or dirty is None:
            return None
        return VmiUsage(cpu, mem, dirty)
