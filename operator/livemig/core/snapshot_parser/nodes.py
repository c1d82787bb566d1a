"""`NodeReader`: one entry of a snapshot's `nodes:` list read into a `Node`: capacity, labels and taints, health, link
bandwidth, pressure, usage profiles and the requests of pods other than VMIs.
"""

from __future__ import annotations

from livemig.core.cluster import DEFAULT_LINK_BANDWIDTH_BPS, Node, NodePressure, NodeUsage
from livemig.core.profiles import parse_profile
from livemig.core.snapshot_parser.fields import parse_cpu, parse_memory
from livemig.core.snapshot_parser.scheduling import SchedulingReader
from livemig.core.units import parse_bitrate, parse_bytes

_NODE_KEYS = (
    "name", "cpu", "memory", "labels", "taints", "schedulable", "healthy", "linkBandwidth", "pressure", "usage",
    "otherRequests",
)  # fmt: skip


class NodeReader(SchedulingReader):
    def node(self, value: object, path: str) -> Node | None:
        m = self.mapping(value, path, _NODE_KEYS)
        if m is None:
            return None
        before = len(self.errors)
        name = self.string(m.get("name"), f"{path}.name")
        cpu = self.call(parse_cpu, m.get("cpu"), f"{path}.cpu") if "cpu" in m else self._missing(f"{path}.cpu")
        memory = (
            self.call(parse_bytes, m.get("memory"), f"{path}.memory", allow_zero=False)
            if "memory" in m
            else self._missing(f"{path}.memory")
        )
        if cpu is not None and cpu <= 0:
            self.fail(f"{path}.cpu", "must be greater than zero")
        labels = self.labels(m.get("labels"), f"{path}.labels")
        taints = self.taints(m.get("taints"), f"{path}.taints")
        schedulable = self.boolean(m.get("schedulable", True), f"{path}.schedulable")
        healthy = self.boolean(m.get("healthy", True), f"{path}.healthy")
        link = DEFAULT_LINK_BANDWIDTH_BPS
        if m.get("linkBandwidth") is not None:
            link = self.call(parse_bitrate, m["linkBandwidth"], f"{path}.linkBandwidth") or link
        pressure = self.pressure(m.get("pressure"), f"{path}.pressure")
        usage: NodeUsage | None = None
        cpu_used: float | None = None
        memory_used: float | None = None
        if m.get("usage") is not None:
            um = self.mapping(m["usage"], f"{path}.usage", ("cpu", "memory"))
            if um is not None:
                cpu_p = parse_profile(um["cpu"], f"{path}.usage.cpu", parse_cpu, self.errors) if "cpu" in um else None
                mem_p = (
                    parse_profile(um["memory"], f"{path}.usage.memory", parse_memory, self.errors)
                    if "memory" in um
                    else None
                )
                usage = NodeUsage(cpu_p, mem_p)
                cpu_used = cpu_p.value_at(0.0) if cpu_p is not None else None
                memory_used = mem_p.value_at(0.0) if mem_p is not None else None
        other_cpu, other_memory = self.requests(m.get("otherRequests"), f"{path}.otherRequests")
        if len(self.errors) != before:
            return None
        assert name is not None
        assert cpu is not None
        assert memory is not None
        assert schedulable is not None
        assert healthy is not None
        return Node(
            name=name,
            cpu_cores=cpu,
            memory_bytes=memory,
            labels=labels,
            taints=taints,
            schedulable=schedulable,
            healthy=healthy,
            link_bandwidth_bps=link,
            pressure=pressure,
            usage=usage,
            cpu_used_cores=cpu_used,
            memory_used_bytes=memory_used,
            other_cpu_requests_cores=other_cpu or 0.0,
            other_memory_requests_bytes=other_memory or 0.0,
        )

    def pressure(self, value: object, path: str) -> NodePressure:
        if value is None:
            return NodePressure()
        m = self.mapping(value, path, ("cpu", "memory", "io"))
        if m is None:
            return NodePressure()
        vals: dict[str, float] = {}
        for key in ("cpu", "memory", "io"):
            if m.get(key) is not None:
                n = self.number(m[key], f"{path}.{key}")
                if n is not None and n > 1:
                    self.fail(f"{path}.{key}", f"must be a fraction between 0 and 1, got {n:g}")
                elif n is not None:
                    vals[key] = n
        return NodePressure(**vals)
