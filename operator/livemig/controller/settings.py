"""The operator's settings, grouped the way Kopf groups its own, read once from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    kubeconfig: str | None = None  # None: $KUBECONFIG, else in-cluster
    prometheus_url: str | None = None  # the default Prometheus; a policy's spec.prometheus.url overrides it


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    metrics_port: int = 8080  # /metrics; 0 = any free port
    health_port: int = 8081  # Kopf's liveness endpoint /healthz; 0 = any free port
    bind: str = "0.0.0.0"
    ready_file: str | None = None  # written (JSON: the ports) once the operator serves


@dataclass(frozen=True, slots=True)
class PeeringSettings:
    standalone: bool = True
    name: str | None = None  # Kopf's ClusterKopfPeering object
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ModelSettings:
    default_bandwidth_bps: float = 10e9 / 8  # --default-migration-bandwidth (10Gbit)


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    connection: ConnectionSettings = field(default_factory=ConnectionSettings)
    endpoints: EndpointSettings = field(default_factory=EndpointSettings)
    peering: PeeringSettings = field(default_factory=PeeringSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    log_format: str = "text"  # text | json
    #: Fault points for the reliability tests: the operator exits (SIGKILL-like) at the named point.
    crash_at: str | None = None
