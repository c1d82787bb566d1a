"""One evaluation cycle of one policy: indexes + Prometheus → snapshot → plan → queue, node actions, status.

The decisions are `livemig.core.evaluation.evaluate`'s (pure); this module gathers its inputs, carries its plan out
through the executor, and reports (status, Events, metrics, logs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livemig.controller.executor import ClusterView, Executor, _event, _policy_ref
from livemig.controller.indexes import values
from livemig.controller.runtime import PolicyState, Runtime
from livemig.controller.status import duration, iso, plan_status
from livemig.core.actuation import MoveRequest, is_livemig
from livemig.core.errors import SpecErrors
from livemig.core.evaluation import Evaluation, MetricsState, Result, evaluate, in_scope
from livemig.core.inventory import Assumptions, ClusterObjects, Inventory, build_snapshot, meta, read_history
from livemig.core.kubevirt import KubevirtMigrationConfig, parse_migration_configuration
from livemig.core.planning import planning_spec
from livemig.core.planning.drain import maintenance_nodes
from livemig.core.policy import LivemigPolicy, matches, parse_policy
from livemig.core.queries import (
    QueryAnswer,
    collect,
    due_for_evacuation,
    metrics_state,
    node_metrics,
    pins_unmeasured_vmis,
    plan_queries,
    unhealthy_since,
    vmi_metrics,
)
from livemig.core.release import PolicyLimits
from livemig.core.vocabulary import Purpose

log = logging.getLogger(__name__)
CORDONED_BY = "livemig.io/cordoned-by"


def view_from(indexes: Mapping[str, Any]) -> ClusterView:
    """The cluster as Kopf's indexes hold it (handler kwargs)."""
    vmis = {f"{meta(v).get('namespace')}/{meta(v).get('name')}": v for v in values(indexes.get("vmi_index"))}
    kubevirts = values(indexes.get("kubevirt_index"))
    kubevirt = kubevirts[0] if kubevirts else None
    return ClusterView(
        vmis=vmis,
        namespaces={str(meta(n).get("name")): n for n in values(indexes.get("namespace_index"))},
        nodes={str(meta(n).get("name")): n for n in values(indexes.get("node_index"))},
        vmims=tuple(values(indexes.get("vmim_index"))),
        kubevirt=kubevirt,
        kubevirt_config=_kubevirt_config(kubevirt),
        policies={str(meta(p).get("name")): p for p in values(indexes.get("policy_index"))},
    )


def view_from_lists(lists: Mapping[str, Sequence[Mapping[str, Any]]]) -> ClusterView:
    """The same view from one LIST per kind (`livemig plan --kubeconfig`)."""
    kubevirt = lists["kubevirts"][0] if lists["kubevirts"] else None
    return ClusterView(
        vmis={f"{meta(v).get('namespace')}/{meta(v).get('name')}": v for v in lists["vmis"]},
        namespaces={str(meta(n).get("name")): n for n in lists["namespaces"]},
        nodes={str(meta(n).get("name")): n for n in lists["nodes"]},
        vmims=tuple(lists["vmims"]),
        kubevirt=kubevirt,
        kubevirt_config=_kubevirt_config(kubevirt),
        policies={str(meta(p).get("name")): p for p in lists["policies"]},
    )


def _kubevirt_config(kubevirt: Mapping[str, Any] | None) -> KubevirtMigrationConfig:
    migrations = ((kubevirt or {}).get("spec") or {}).get("configuration", {}).get("migrations")
    try:
        return parse_migration_configuration(migrations, manifest=True)
    except SpecErrors:
        return KubevirtMigrationConfig()


def read_policy(body: Mapping[str, Any]) -> LivemigPolicy:
    """Parse a policy object as stored (SpecErrors names every bad field)."""
    doc = {
        "apiVersion": body.get("apiVersion") or "livemig.io/v1alpha1",
        "kind": body.get("kind") or "MigrationPolicy",
        "metadata": {k: v for k, v in (body.get("metadata") or {}).items() if k in ("name", "labels", "generation")},
        "spec": body.get("spec") or {},
    }
    return parse_policy(doc)


@dataclass(frozen=True, slots=True)
class Gathered:
    inventory: Inventory
    metrics: MetricsState
    health: Mapping[str, float]


async def gather(
    rt_prometheus: Any, policy: LivemigPolicy, view: ClusterView, now_s: float, default_bandwidth_bps: float
) -> Gathered:
    """Snapshot and metrics for one policy (shared by the operator and `livemig plan --kubeconfig`)."""
    queries, required = plan_queries(policy)
    overrides = policy.prometheus
    client = rt_prometheus.for_policy(overrides.url if overrides else None, overrides.timeout_s if overrides else 10.0)
    if client is None:
        why = "no Prometheus configured (--prometheus-url or spec.prometheus.url)"
        answers = [QueryAnswer(q, error=why) for q in queries]
    else:
        answers = await client.answers(queries)
    scope_nodes = [
        name
        for name, node in view.nodes.items()
        if (policy.node_selector is None or matches(policy.node_selector, meta(node).get("labels") or {}))
    ]
    in_nodes = set(scope_nodes)
    scope_vmis = [
        key
        for key, vmi in view.vmis.items()
        if (vmi.get("status") or {}).get("phase") == "Running" and (vmi.get("status") or {}).get("nodeName") in in_nodes
    ]
    max_age = overrides.max_age_s if overrides else 120.0
    collected = collect(answers, scope_nodes, scope_vmis, max_age)
    objects = ClusterObjects(
        nodes=list(view.nodes.values()),
        namespaces=list(view.namespaces.values()),
        vmis=list(view.vmis.values()),
        vmims=list(view.vmims),
        kubevirt=view.kubevirt,
    )
    inventory = build_snapshot(
        objects, now_s, node_metrics(collected), vmi_metrics(collected), Assumptions(default_bandwidth_bps)
    )
    kept_nodes = {n.name for n in inventory.snapshot.nodes}
    kept_vmis = {v.key for v in inventory.snapshot.vmis}
    if not in_nodes <= kept_nodes or not set(scope_vmis) <= kept_vmis:
        # Garbage the snapshot left out (and logged) has no metrics to wait for: a VMI with a made-up node or
        # absurd numbers must not hold every policy at "metrics unavailable".  Same samples, fewer expected.
        collected = collect(
            answers, [n for n in scope_nodes if n in kept_nodes], [k for k in scope_vmis if k in kept_vmis], max_age
        )
    pin = pins_unmeasured_vmis(policy.purpose)
    return Gathered(inventory, metrics_state(collected, required, pin_unmeasured=pin), collected.health)


def overlap_warnings(policy: LivemigPolicy, inventory: Inventory, view: ClusterView) -> list[str]:
    """Policies of the same purpose selecting the same VMIs (only the higher-priority one can move them)."""
    snapshot = inventory.snapshot
    mine = {v.key for v in snapshot.vmis if in_scope(policy, snapshot, v.namespace, v.labels)}
    out = []
    for name, body in sorted(view.policies.items()):
        if name == policy.name or (body.get("spec") or {}).get("purpose") != str(policy.purpose):
            continue
        try:
            other = read_policy(body)
        except SpecErrors:
            continue
        shared = sum(1 for v in snapshot.vmis if v.key in mine and in_scope(other, snapshot, v.namespace, v.labels))
        if shared:
            out.append(f"overlaps with {policy.purpose} policy {name} on {shared} VMI(s)")
    return out


def move_requests(
    evaluation: Evaluation, policy: LivemigPolicy, inventory: Inventory, view: ClusterView
) -> list[MoveRequest]:
    assert evaluation.plan is not None
    out = []
    for move in evaluation.plan.moves:
        vmi = view.vmis.get(move.vmi)
        history = read_history(vmi) if vmi is not None else []
        out.append(
            MoveRequest(
                policy=policy.name,
                namespace=move.namespace,
                vmi=move.name,
                source=move.source,
                target=move.target,
                technique=move.technique,
                reason=move.reason,
                technique_reason=move.technique_reason,
                predicted_time_s=move.predicted_time_s,
                predicted_downtime_s=move.predicted_downtime_s,
                predicted_risk_window_s=move.predicted_risk_window_s,
                wave=move.wave,
                plan_id=evaluation.plan.id,
                bandwidth_per_migration_bps=policy.technique.bandwidth_per_migration_bps,
                completion_timeout_per_gib=policy.technique.completion_timeout_per_gib,
                history_tag=str(history[-1]["m"]) if history else "",
            )
        )
    return out


class Cycle:
    """One evaluation of one policy in the operator."""

    def __init__(self, rt: Runtime, name: str, body: Mapping[str, Any], view: ClusterView) -> None:
        self.rt, self.name, self.body, self.view = rt, name, body, view
        self.state: PolicyState = rt.policy(name, body.get("status"))
        self.state.generation = (body.get("metadata") or {}).get("generation")

    async def run(self) -> Evaluation | None:
        rt, state, view = self.rt, self.state, self.view
        started = time.perf_counter()
        now = time.time()
        try:
            policy = read_policy(self.body)
        except SpecErrors as exc:
            async with state.lock:
                rt.condition(state, "Ready", False, "InvalidSpec", str(exc), now)
                await rt.write_status(
                    state, {"observedGeneration": state.generation or 0, "conditions": state.status["conditions"]}
                )
            return None
        gathered = await gather(rt.prometheus, policy, view, now, rt.settings.model.default_bandwidth_bps)
        inventory = gathered.inventory
        unhealthy: frozenset[str] = frozenset()
        if policy.evacuation is not None:
            state.unhealthy_since = unhealthy_since(state.unhealthy_since, gathered.health, policy.evacuation, now)
            unhealthy = due_for_evacuation(state.unhealthy_since, policy.evacuation, now)
        claims = rt.executor.claims(view)
        evaluation = evaluate(
            policy, inventory, gathered.metrics, claims, unhealthy_nodes=unhealthy, previously_hot=state.hot_nodes
        )
        warnings = [*evaluation.warnings, *overlap_warnings(policy, inventory, view)]
        if policy.load_balancing is not None and evaluation.plan is not None:
            # The hysteresis memory: the hot nodes the planner decided with, passed back next cycle (and kept in
            # status.nodes as state Hot across restarts).
            state.hot_nodes = frozenset(evaluation.plan.hot_nodes)
        plan = evaluation.plan
        limits = PolicyLimits(policy.limits.max_concurrent_migrations, policy.limits.max_concurrent_migrations_per_node)
        acting = plan is not None and bool(plan.moves) and not policy.dry_run
        requests = move_requests(evaluation, policy, inventory, view) if acting else []
        draining = self._drain_nodes(policy, inventory, unhealthy)
        state.draining = (
            frozenset(draining) if policy.purpose in (Purpose.MAINTENANCE, Purpose.EVACUATION) else frozenset()
        )
        if acting and policy.purpose is Purpose.MAINTENANCE:
            await self._cordon({m.source for m in plan.moves})  # type: ignore[union-attr]
        if policy.purpose is Purpose.MAINTENANCE:
            await self._uncordon_unselected(set(draining))
        if policy.consolidation is not None and policy.consolidation.cordon_emptied and not policy.dry_run:
            await self._cordon_emptied(inventory, plan)
        rt.executor.submit(self.name, policy.purpose, limits, requests)
        await rt.executor.pump(view)
        elapsed = time.perf_counter() - started
        await self._report(policy, evaluation, warnings, inventory, draining, now, elapsed)
        return evaluation

    # --- nodes

    def _drain_nodes(self, policy: LivemigPolicy, inventory: Inventory, unhealthy: frozenset[str]) -> list[str]:
        """The nodes this policy drains now: Maintenance's selected nodes, Evacuation's due unhealthy ones."""
        if policy.purpose is Purpose.MAINTENANCE:
            return maintenance_nodes(inventory.snapshot, planning_spec(policy))
        if policy.purpose is Purpose.EVACUATION:
            return sorted(
                n.name
                for n in inventory.snapshot.nodes
                if n.name in unhealthy and (policy.node_selector is None or matches(policy.node_selector, n.labels))
            )
        return []

    async def _cordon(self, nodes: set[str]) -> None:
        for name in sorted(nodes):
            node = self.view.nodes.get(name)
            if node is None or (node.get("spec") or {}).get("unschedulable"):
                continue
            await self.rt.writer.patch_node(
                name, {"metadata": {"annotations": {CORDONED_BY: self.name}}, "spec": {"unschedulable": True}}
            )
            _event(_policy_ref(self.view, self.name), "Normal", "NodeCordoned", f"cordoned {name} to drain it")

    async def _uncordon_unselected(self, selected: set[str]) -> None:
        for name, node in self.view.nodes.items():
            if (meta(node).get("annotations") or {}).get(CORDONED_BY) == self.name and name not in selected:
                await uncordon(self.rt, name)
                _event(
                    _policy_ref(self.view, self.name),
                    "Normal",
                    "NodeUncordoned",
                    f"uncordoned {name}: the policy no longer selects it",
                )

    async def _cordon_emptied(self, inventory: Inventory, plan: Any) -> None:
        state = self.state
        if plan is not None and plan.efficacy.nodes_released:
            state.released = state.released | frozenset(plan.efficacy.nodes_released)
        emptied = {n for n in state.released if not any(True for _ in inventory.snapshot.vmis_on(n))}
        if emptied:
            await self._cordon(emptied)
            state.released = state.released - emptied

    # --- reporting

    async def _report(
        self,
        policy: LivemigPolicy,
        evaluation: Evaluation,
        warnings: list[str],
        inventory: Inventory,
        draining: list[str],
        now: float,
        elapsed: float,
    ) -> None:
        rt, state, view = self.rt, self.state, self.view
        plan = evaluation.plan
        queued = len(rt.executor.queue.get(self.name, []))
        async with state.lock:
            # Read under the lock that counts finished migrations, so that none counts as finished and running.
            own_running = [r for r in rt.executor.running(view) if r.policy == self.name[:63]]
            counters = rt.counters(state)
            counters["evaluations"] += 1
            finished = counters["migrationsSucceeded"] + counters["migrationsFailed"] + counters["migrationsAborted"]
            counters["migrationsStarted"] = max(counters["migrationsStarted"], finished + len(own_running))
            changes: dict[str, Any] = {
                "observedGeneration": state.generation or 0,
                "counters": counters,
                "lastEvaluation": {
                    "time": iso(now),
                    "duration": duration(elapsed),
                    "result": str(evaluation.result),
                    "message": evaluation.message[:4096],
                    "candidates": evaluation.candidates,
                    "moves": len(plan.moves) if plan is not None else 0,
                },
            }
            if plan is not None and plan.moves:
                names = {r.key: n for n, r in rt.executor.created.items()}
                for vmim in view.vmims:
                    if is_livemig(vmim) and (vmim.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                        names[f"{meta(vmim).get('namespace')}/{(vmim.get('spec') or {}).get('vmiName')}"] = str(
                            meta(vmim).get("name")
                        )
                move_states = {r.key: ("Running", names.get(r.key, "")) for r in own_running}
                changes["currentPlan"] = plan_status(
                    plan, now, "DryRun" if policy.dry_run else "Executing", move_states
                )
            elif state.status.get("currentPlan", {}).get("state") == "Executing" and not own_running and not queued:
                current = dict(state.status["currentPlan"])
                failed = any(m.get("state") == "Failed" for m in current.get("moves", []))
                current["state"] = "Failed" if failed else "Completed"
                changes["currentPlan"] = current
            changes["nodes"] = self._node_status(policy, inventory, draining, now)
            rt.condition(
                state,
                "Ready",
                True,
                "Evaluating",
                f"evaluated every {policy.interval_s:g}s; last result {evaluation.result}",
                now,
            )
            progressing = bool(own_running) or queued > 0
            rt.condition(
                state,
                "Progressing",
                progressing,
                "MigrationsRunning" if progressing else "Idle",
                f"{len(own_running)} running, {queued} queued in livemig",
                now,
            )
            reason, message = self._degraded(evaluation, warnings)
            rt.condition(state, "Degraded", reason is not None, reason or "AsExpected", message, now)
            changes["conditions"] = state.status["conditions"]
            await rt.write_status(state, changes)
        metrics = rt.metrics
        metrics.evaluation.labels(self.name).observe(elapsed)
        metrics.evaluations.labels(self.name, str(evaluation.result)).inc()
        metrics.last_evaluation.labels(self.name).set(now)
        metrics.metrics_unavailable.labels(self.name).set(1.0 if evaluation.degraded else 0.0)
        skipped = tuple(inventory.skipped)
        if skipped != state.skipped:  # logged when the set changes, not at every interval
            for text in skipped:
                log.warning("policy %s: left out of the snapshot: %s", self.name, text, extra={"policy": self.name})
            state.skipped = skipped
        new_warnings = tuple(warnings)
        if new_warnings != state.warnings:
            for text in new_warnings:
                _event(_policy_ref(view, self.name), "Warning", "PolicyWarning", text)
            state.warnings = new_warnings
        if evaluation.result is Result.STALE_METRICS:
            _event(_policy_ref(view, self.name), "Warning", "MetricsUnavailable", evaluation.message)
        log.info(
            "policy %s: %s, %s",
            self.name,
            evaluation.result,
            evaluation.message,
            extra={"policy": self.name, "evaluation_s": round(elapsed, 4), "result": str(evaluation.result)},
        )

    def _degraded(self, evaluation: Evaluation, warnings: list[str]) -> tuple[str | None, str]:
        if evaluation.degraded:
            prefix = (
                "no move planned"
                if evaluation.result is Result.STALE_METRICS
                else "draining with conservative techniques"
                if evaluation.conservative
                else "deciding without some metrics"
            )
            return "MetricsUnavailable", f"{prefix}: " + "; ".join(evaluation.degraded)
        outcomes = self.state.status.get("recentOutcomes") or []
        if outcomes and outcomes[0].get("outcome") in ("failed", "aborted", "not-converged"):
            newest = outcomes[0]
            vmi = newest.get("vmi") or {}
            return "MigrationsFailing", (
                f"the newest migration ({vmi.get('namespace')}/{vmi.get('name')}, "
                f"{newest.get('migration')}) ended {newest.get('outcome')}: "
                f"{newest.get('reason', '')}"
            )
        if warnings:
            reason = (
                "SelectorMatchesNothing"
                if any("matches no" in w for w in warnings)
                else "PolicyOverlap"
                if any("overlaps" in w for w in warnings)
                else "UnknownNodes"
            )
            return reason, "; ".join(warnings)
        return None, "metrics available, no failing migration"

    def _node_status(
        self, policy: LivemigPolicy, inventory: Inventory, draining: list[str], now: float
    ) -> list[dict[str, Any]]:
        snapshot = inventory.snapshot
        previous = {n.get("name"): n for n in self.state.status.get("nodes") or []}
        out: list[dict[str, Any]] = []

        def entry(name: str, state: str, **extra: Any) -> dict[str, Any]:
            before = previous.get(name) or {}
            since = before.get("since") if before.get("state") == state else iso(now)
            node = self.view.nodes.get(name) or {}
            cordoned = (meta(node).get("annotations") or {}).get(CORDONED_BY) == self.name
            return {"name": name, "state": state, "since": since, "cordonedByLivemig": cordoned, **extra}

        # Where each VMI runs now (status.nodeName): the snapshot counts a migrating VMI on its target already.
        running_on: dict[str, str] = {
            key: str((vmi.get("status") or {}).get("nodeName")) for key, vmi in self.view.vmis.items()
        }

        def remaining(name: str) -> int:
            return sum(
                1
                for v in snapshot.vmis
                if running_on.get(v.key) == name and in_scope(policy, snapshot, v.namespace, v.labels)
            )

        def stuck(name: str) -> int:
            """In-scope VMIs on the node that cannot be moved (not LiveMigratable, eviction strategy None)."""
            return sum(
                1
                for v in snapshot.vmis
                if running_on.get(v.key) == name
                and in_scope(policy, snapshot, v.namespace, v.labels)
                and (v.key in inventory.immovable or str(v.eviction_strategy) == "None")
            )

        if policy.purpose in (Purpose.MAINTENANCE, Purpose.EVACUATION):
            moving = {m.source for m in evaluation_moves(self)}
            ready = {n.name for n in snapshot.nodes if n.healthy}
            for name in draining:
                cannot = stuck(name)
                left = remaining(name) - cannot
                if name not in ready:
                    # A failed node: nothing on it can be migrated (no virt-handler); say so instead of waiting.
                    message = f"the node is not Ready: {remaining(name)} in-scope VMI(s) on it cannot be migrated"
                    out.append(entry(name, "NotReady", remaining=remaining(name), message=message))
                    continue
                state = (
                    "Drained"
                    if left == 0
                    else "Draining"
                    if name in moving or name in self._running_sources()
                    else "Waiting"
                )
                note = {"message": f"{cannot} VMI(s) cannot be live-migrated and stay"} if cannot else {}
                out.append(entry(name, state, remaining=left, **note))
        if policy.evacuation is not None:
            for name, since in sorted(self.state.unhealthy_since.items()):
                if name not in draining:
                    out.append(
                        {
                            **entry(name, "Unhealthy", message=f"past the health threshold since {iso(since)}"),
                            "since": iso(since),
                        }
                    )
        for name in sorted(self.state.hot_nodes):
            out.append(entry(name, "Hot"))
        for name in sorted(self.state.released):
            out.append(entry(name, "Emptied" if remaining(name) == 0 else "Draining", remaining=remaining(name)))
        return out[:512]

    def _running_sources(self) -> set[str]:
        return {r.source for r in self.rt.executor.running(self.view) if r.policy == self.name}


def evaluation_moves(cycle: Cycle) -> list[Any]:
    return [e.request for e in cycle.rt.executor.queue.get(cycle.name, [])]


async def uncordon(rt: Runtime, name: str) -> None:
    await rt.writer.patch_node(
        name, {"metadata": {"annotations": {CORDONED_BY: None}}, "spec": {"unschedulable": False}}
    )


__all__ = ["CORDONED_BY", "Cycle", "Executor", "gather", "read_policy", "uncordon", "view_from", "view_from_lists"]
