"""What one operator process holds between handler calls: clients, metrics, the executor, per-policy state.

Kopf hands it to every handler as `memo.runtime`.  Only state that can be rebuilt after a restart lives here: what
must survive (counters, outcomes, hot and unhealthy nodes, cordons, the VMIs' migration history) is written to the
policy's status, the Nodes and the VMIs as it changes, and read back from Kopf's indexes on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from livemig.adapters.kube import KubeWriter
from livemig.adapters.prometheus import PrometheusClients
from livemig.controller.metrics import OperatorMetrics
from livemig.controller.settings import OperatorSettings
from livemig.controller.status import COUNTERS, remembered_hot_nodes, set_condition
from livemig.core.inventory import parse_time
from livemig.core.planning import Plan

log = logging.getLogger(__name__)


@dataclass
class PolicyState:
    """In-memory state of one policy; `status` is the last status livemig wrote (or read back)."""

    name: str
    status: dict[str, Any] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded: bool = False
    plan: Plan | None = None
    plan_created_s: float = 0.0
    hot_nodes: frozenset[str] = frozenset()
    unhealthy_since: dict[str, float] = field(default_factory=dict)
    draining: frozenset[str] = frozenset()
    released: frozenset[str] = frozenset()  # consolidation: nodes to cordon once empty
    warnings: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # objects the last snapshot left out (garbage in a VMI, a Node, ...), logged once
    generation: int | None = None


class Runtime:
    def __init__(self, settings: OperatorSettings, writer: KubeWriter, prometheus: PrometheusClients) -> None:
        self.settings = settings
        self.writer = writer
        self.prometheus = prometheus
        self.metrics = OperatorMetrics()
        self.policies: dict[str, PolicyState] = {}
        from livemig.controller.executor import Executor

        self.executor = Executor(self)

    def policy(self, name: str, body_status: Mapping[str, Any] | None = None) -> PolicyState:
        state = self.policies.get(name)
        if state is None:
            state = self.policies[name] = PolicyState(name)
        if not state.loaded and body_status is not None:
            state.status = {k: v for k, v in dict(body_status).items() if k != "kopf"}
            state.loaded = True
            # What the last process knew about nodes survives in status.nodes: the hysteresis memory of hot
            # nodes and when nodes first crossed the health threshold.
            state.hot_nodes = remembered_hot_nodes(state.status)
            for entry in state.status.get("nodes") or []:
                name, kind = entry.get("name"), entry.get("state")
                if kind == "Unhealthy" and (since := parse_time(entry.get("since"))) is not None:
                    state.unhealthy_since[name] = since
        return state

    def forget(self, name: str) -> None:
        self.policies.pop(name, None)
        self.metrics.forget(name)

    async def write_status(self, state: PolicyState, changes: Mapping[str, Any]) -> None:
        """Merge `changes` into the policy's status (caller holds `state.lock`)."""
        state.status.update(changes)
        try:
            await self.writer.patch_policy_status(state.name, changes)
        except kopf.PermanentError:
            raise
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status == 404:
                return
            raise

    def condition(self, state: PolicyState, kind: str, value: bool, reason: str, message: str, now_s: float) -> None:
        """Set a condition in `state.status` (written with the next `write_status`)."""
        state.status["conditions"] = set_condition(
            state.status.get("conditions") or [], kind, value, reason, message, state.generation, now_s
        )
        self.metrics.condition.labels(state.name, kind).set(1.0 if value else 0.0)

    def counters(self, state: PolicyState) -> dict[str, int]:
        current = state.status.get("counters") or {}
        return {k: int(current.get(k, 0) or 0) for k in COUNTERS}

    def crash_point(self, point: str) -> None:
        """A fault point for the reliability tests: die here, as a SIGKILL would (no clean-up)."""
        if self.settings.crash_at == point:
            log.error("fault point %s reached: exiting without clean-up", point)
            os.kill(os.getpid(), signal.SIGKILL)
