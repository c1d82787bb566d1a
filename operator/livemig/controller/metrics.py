"""The operator's own /metrics (prometheus_client), one registry per operator process."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RATIO_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
EVALUATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.migrations = Counter(
            "livemig_migrations",
            "Finished migrations livemig started, by outcome.",
            ["policy", "purpose", "technique", "outcome"],
            registry=r,
        )
        self.postcopy_losses = Counter(
            "livemig_postcopy_vms_lost",
            "VMs lost because their migration failed after the post-copy switch (inside the model's risk window).",
            ["policy"],
            registry=r,
        )
        self.started = Counter(
            "livemig_migrations_started", "Migrations livemig started.", ["policy", "technique"], registry=r
        )
        self.in_flight = Gauge(
            "livemig_migrations_in_flight", "livemig's unfinished migrations.", ["policy"], registry=r
        )
        self.queue = Gauge("livemig_queue_length", "Moves waiting in livemig's queue.", ["policy"], registry=r)
        self.evaluation = Histogram(
            "livemig_evaluation_duration_seconds",
            "Time one evaluation of a policy took.",
            ["policy"],
            buckets=EVALUATION_BUCKETS,
            registry=r,
        )
        self.evaluations = Counter("livemig_evaluations", "Evaluations by result.", ["policy", "result"], registry=r)
        self.last_evaluation = Gauge(
            "livemig_last_evaluation_timestamp_seconds", "When the policy was last evaluated.", ["policy"], registry=r
        )
        self.prediction_error = Histogram(
            "livemig_prediction_error_ratio",
            "Measured / predicted, per finished migration.",
            ["kind"],
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.condition = Gauge(
            "livemig_policy_condition", "1 when the policy's condition is True.", ["policy", "condition"], registry=r
        )
        self.api_requests = Counter(
            "livemig_api_requests",
            "Kubernetes API requests livemig's own client made (Kopf's watches and Events not included).",
            registry=r,
        )
        self.metrics_unavailable = Gauge(
            "livemig_metrics_unavailable", "1 while the policy's metrics are unavailable.", ["policy"], registry=r
        )

    def forget(self, policy: str) -> None:
        """Drop a deleted policy's gauges (its counters stay until restart, as counters should)."""
        for gauge in (self.in_flight, self.queue, self.last_evaluation, self.metrics_unavailable):
            with contextlib.suppress(KeyError):
                gauge.remove(policy)
        for condition in ("Ready", "Progressing", "Degraded"):
            with contextlib.suppress(KeyError):
                self.condition.remove(policy, condition)
