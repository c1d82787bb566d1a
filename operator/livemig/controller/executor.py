"""One executor for every policy: livemig's queue, released into KubeVirt under its caps, and the record of each
finished migration.

- `submit` replaces a policy's queued moves with its newest plan (moves already started stay as they are).
- `pump` starts what `core.release.release` allows now: KubeVirt's caps (every unfinished VMIM counts, livemig's or
  not) and each policy's limits, highest purpose first.  Over-cap work waits here, not as Pending VMIMs.
- `start` carries one move out: VMI label, KubeVirt MigrationPolicy, VMIM (`core.actuation`), each step idempotent
  (409 = it exists already: a restart continues where the last process stopped).
- `record` reads a finished livemig VMIM back: status counters and outcomes, the VMI's history annotation, metrics,
  Events; then removes what livemig added (label, KubeVirt policy).  Idempotent too: a VMIM already in the policy's
  `recentOutcomes` or the VMI's history is not counted twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import kopf
from kubernetes.aio.client.exceptions import ApiException

from livemig.controller.status import MAX_OUTCOMES, counters_after, outcome_status
from livemig.core.actuation import (
    MOVE_LABEL,
    POLICY_LABEL,
    MigrationResult,
    MoveRequest,
    is_livemig,
    kv_migration_policy,
    kv_policy_name,
    read_result,
    stale_reason,
    supports_added_node_selector,
    vmim_manifest,
    vmim_name,
)
from livemig.core.evaluation import Claims
from livemig.core.inventory import HISTORY_ANNOTATION, HISTORY_KEEP, meta, read_history, vmim_is_final
from livemig.core.kubevirt import KubevirtMigrationConfig
from livemig.core.release import PolicyLimits, Queued, Running, release
from livemig.core.units import parse_quantity
from livemig.core.vocabulary import Purpose

if TYPE_CHECKING:
    from livemig.controller.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The indexed objects one handler call sees."""

    vmis: Mapping[str, Mapping[str, Any]]  # ns/name ->
    namespaces: Mapping[str, Mapping[str, Any]]
    nodes: Mapping[str, Mapping[str, Any]]
    vmims: tuple[Mapping[str, Any], ...]
    kubevirt: Mapping[str, Any] | None
    kubevirt_config: KubevirtMigrationConfig
    policies: Mapping[str, Mapping[str, Any]]

    @property
    def kubevirt_version(self) -> str | None:
        if self.kubevirt is None:
            return None
        value = (self.kubevirt.get("status") or {}).get("observedKubeVirtVersion")
        return str(value) if value else None


@dataclass
class Entry:
    queued: Queued
    request: MoveRequest


@dataclass
class Executor:
    runtime: Runtime
    queue: dict[str, list[Entry]] = field(default_factory=dict)
    limits: dict[str, PolicyLimits] = field(default_factory=dict)
    created: dict[str, Running] = field(default_factory=dict)  # VMIM name -> not yet seen final
    recorded: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # --- what other policies see

    def claims(self, view: ClusterView) -> Claims:
        """What each policy holds: its queued and running moves, and the nodes it drains."""
        vmis: dict[str, tuple[str, Purpose]] = {}
        for policy, entries in self.queue.items():
            for entry in entries:
                vmis.setdefault(entry.queued.key, (policy, entry.queued.purpose))
        vmis.update(_claims_of(self.running(view), view))
        draining = {node: name for name, state in self.runtime.policies.items() for node in state.draining}
        return Claims(vmis=vmis, draining_nodes=draining)

    def running(self, view: ClusterView) -> list[Running]:
        """Every unfinished migration: the VMIM index, plus what this process created that the index lacks yet."""
        out: dict[str, Running] = {}
        seen: set[str] = set()
        for vmim in view.vmims:
            name = str(meta(vmim).get("name"))
            seen.add(f"{meta(vmim).get('namespace')}/{name}")
            if vmim_is_final(vmim) or name in self.recorded:
                # Recorded final by this process: a view taken before that (a cycle's, held across its awaits)
                # still shows it running, and counting it again would over-count `migrationsStarted`.
                continue
            spec, status = vmim.get("spec") or {}, vmim.get("status") or {}
            key = f"{meta(vmim).get('namespace')}/{spec.get('vmiName')}"
            if key not in view.vmis:
                # Its VMI is gone: KubeVirt deletes such a VMIM and neither runs nor counts it (one still in
                # phase "" stays Terminating under its finalizer); it must not hold one of our slots forever.
                continue
            vmi = view.vmis[key]
            source = (status.get("migrationState") or {}).get("sourceNode") or (vmi.get("status") or {}).get(
                "nodeName", ""
            )
            policy = (meta(vmim).get("labels") or {}).get(POLICY_LABEL) if is_livemig(vmim) else None
            annotations = meta(vmim).get("annotations") or {}
            plan, wave = (
                (str(annotations.get("livemig.io/plan", "")), _int(annotations.get("livemig.io/wave")))
                if policy
                else ("", 0)
            )
            out[key] = Running(key, str(source), policy, plan, wave)
        for name, running in list(self.created.items()):
            namespace = running.key.split("/", 1)[0]
            if f"{namespace}/{name}" in seen:
                if not any(r.key == running.key for r in out.values()):
                    self.created.pop(name, None)  # the index has it, and it is final
                continue
            out.setdefault(running.key, running)
        return list(out.values())

    # --- the queue

    def submit(self, policy: str, purpose: Purpose, limits: PolicyLimits, requests: list[MoveRequest]) -> None:
        self.limits[policy] = limits
        self.queue[policy] = [
            Entry(Queued(r.key, policy, purpose, i, r.source, r.target, r.plan_id, r.wave), r)
            for i, r in enumerate(requests)
        ]
        self.runtime.metrics.queue.labels(policy).set(len(requests))

    def withdraw(self, policy: str) -> None:
        self.queue.pop(policy, None)
        self.limits.pop(policy, None)

    async def pump(self, view: ClusterView) -> list[str]:
        """Start what may start now; returns the VMIM names created."""
        async with self.lock:
            await self._sweep(view)
            entries = {(e.queued.policy, e.queued.key): e for es in self.queue.values() for e in es}
            running = self.running(view)
            decision = release([e.queued for e in entries.values()], running, view.kubevirt_config, self.limits)
            started: list[str] = []
            for queued in decision.start:
                entry = entries[(queued.policy, queued.key)]
                self.queue[queued.policy].remove(entry)
                name = await self._start(entry.request, view)
                if name:
                    started.append(name)
            for policy, items in self.queue.items():
                self.runtime.metrics.queue.labels(policy).set(len(items))
            in_flight: dict[str, int] = {}
            for r in self.running(view):
                if r.policy:
                    in_flight[r.policy] = in_flight.get(r.policy, 0) + 1
            for policy in self.runtime.policies:
                self.runtime.metrics.in_flight.labels(policy).set(in_flight.get(policy, 0))
            return started

    async def _start(self, request: MoveRequest, view: ClusterView) -> str | None:
        rt, writer = self.runtime, self.runtime.writer
        if stale_reason(view.vmis.get(request.key), request) is not None:
            return None  # gone or moved since the plan: the next cycle plans again
        name = vmim_name(request)
        try:
            vmi = await writer.read_vmi(request.namespace, request.vmi)
        except ApiException as exc:
            log.warning("policy %s: cannot read %s before its move: %s", request.policy, request.key, _api_reason(exc))
            return None
        if (stale := stale_reason(vmi, request)) is not None or vmi is None:
            # The index lagged the API server (it does across an API server restart, each watch resuming on its
            # own): the plan was made from a VMI that has moved since.  The next cycle plans from a newer view.
            log.info("policy %s: not starting %s (%s): %s", request.policy, name, request.key, stale)
            return None
        namespace_labels = (meta(view.namespaces.get(request.namespace) or {}).get("labels")) or {}
        vmi_labels = dict(meta(vmi).get("labels") or {})
        try:
            await writer.patch_vmi_metadata(request.namespace, request.vmi, {"labels": {MOVE_LABEL: name}})
            vmi_labels[MOVE_LABEL] = name
            await writer.create_kv_policy(kv_migration_policy(request, name, vmi_labels, namespace_labels))
            rt.crash_point("after-kv-policy")
            pin = supports_added_node_selector(view.kubevirt_version)
            # False: it exists already (a previous start whose answer was lost, e.g. in an API server restart, or
            # one cut short by a crash): adopted, not started a second time, so not counted again.
            created = await writer.create_vmim(vmim_manifest(request, name, pin_target=pin))
            rt.crash_point("after-vmim")
        except ApiException as exc:
            reason = _api_reason(exc)
            log.warning("policy %s: cannot start migration of %s: %s", request.policy, request.key, reason)
            _event(
                _policy_ref(view, request.policy),
                "Warning",
                "MigrationNotStarted",
                f"{request.key} to {request.target}: {reason}",
            )
            await self._undo_start(request, name)
            return None
        self.recorded.discard(name)  # a name made again (its old VMIM long gone) is a new migration
        self.created[name] = Running(request.key, request.source, request.policy, request.plan_id, request.wave)
        if not created:
            log.info("policy %s: %s already exists; adopted", request.policy, name)
            return name
        rt.metrics.started.labels(request.policy, str(request.technique)).inc()
        message = (
            f"migrating {request.key} from {request.source} to {request.target} with {request.technique} "
            f"({name}): {request.reason}; {request.technique_reason}"
        )
        log.info(
            "policy %s: %s",
            request.policy,
            message,
            extra={"policy": request.policy, "vmi": request.key, "migration": name},
        )
        _event(_vmi_ref(vmi), "Normal", "LivemigMigrating", message)
        _event(_policy_ref(view, request.policy), "Normal", "MigrationStarted", message)
        state = rt.policies.get(request.policy)
        if state is not None:
            async with state.lock:
                counters = rt.counters(state)
                counters["migrationsStarted"] += 1
                plan = dict(state.status.get("currentPlan") or {})
                _set_move_state(plan, request.key, "Running", name)
                await rt.write_status(state, {"counters": counters, **({"currentPlan": plan} if plan else {})})
        return name

    async def _sweep(self, view: ClusterView) -> None:
        """Remove what a start cut short left behind (a process killed between the VMI label, the KubeVirt policy
        and the VMIM): a `livemig.io/move` label naming no VMIM, and its KubeVirt policy.  Runs under the lock, so
        no start of this process is half-way; after a restart Kopf's indexes are complete before any handler."""
        existing = {(str(meta(v).get("namespace")), str(meta(v).get("name"))) for v in view.vmims}
        for key, vmi in view.vmis.items():
            label = (meta(vmi).get("labels") or {}).get(MOVE_LABEL)
            namespace, name = key.split("/", 1)
            if not label or (namespace, label) in existing or label in self.created or label in self.recorded:
                continue
            log.info("removing the leftovers of an unfinished start: %s on %s", label, key)
            try:
                await self.runtime.writer.delete_kv_policy(kv_policy_name(label))
                await self.runtime.writer.patch_vmi_metadata(namespace, name, {"labels": {MOVE_LABEL: None}})
            except ApiException as exc:
                log.warning("clean-up of %s on %s: %s", label, key, _api_reason(exc))

    async def _undo_start(self, request: MoveRequest, name: str) -> None:
        """A move that could not start leaves nothing behind."""
        writer = self.runtime.writer
        try:
            await writer.delete_kv_policy(kv_policy_name(name))
            await writer.patch_vmi_metadata(request.namespace, request.vmi, {"labels": {MOVE_LABEL: None}})
        except ApiException as exc:
            log.warning("clean-up after a failed start of %s: %s", name, _api_reason(exc))

    # --- finished migrations

    async def record(self, vmim: Mapping[str, Any], view: ClusterView) -> MigrationResult | None:
        result = read_result(vmim)
        if result is None or not is_livemig(vmim):
            return None
        rt = self.runtime
        self.created.pop(result.vmim, None)
        key = f"{result.namespace}/{result.vmi}"
        vmi = view.vmis.get(key)
        history = read_history(vmi) if vmi is not None else []
        in_history = any(item.get("m") == result.vmim for item in history)
        if result.vmim not in self.recorded and not in_history:
            await self._count(result, view, vmi)
        if vmi is not None:
            metadata: dict[str, Any] = {}
            if not in_history:
                entry = {
                    "m": result.vmim,
                    "t": round(time.time(), 3),
                    "from": result.source,
                    "to": result.target,
                    "outcome": str(result.outcome),
                }
                metadata["annotations"] = {HISTORY_ANNOTATION: json.dumps([*history, entry][-HISTORY_KEEP:])}
            if (meta(vmi).get("labels") or {}).get(MOVE_LABEL) == result.vmim:
                metadata["labels"] = {MOVE_LABEL: None}
            if metadata:
                try:
                    await rt.writer.patch_vmi_metadata(result.namespace, result.vmi, metadata)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
        await rt.writer.delete_kv_policy(kv_policy_name(result.vmim))
        self.recorded.add(result.vmim)
        return result

    async def _count(self, result: MigrationResult, view: ClusterView, vmi: Mapping[str, Any] | None) -> None:
        rt = self.runtime
        policy_body = view.policies.get(result.policy)
        purpose = str(_purpose_of(policy_body) or "")
        rt.metrics.migrations.labels(result.policy, purpose, result.technique, str(result.outcome)).inc()
        if result.succeeded and result.duration_s is not None and result.predicted_time_s:
            rt.metrics.prediction_error.labels("duration").observe(result.duration_s / result.predicted_time_s)
        text = (
            f"{result.namespace}/{result.vmi} {result.outcome} ({result.vmim}, {result.technique}, "
            f"{result.source} -> {result.target})" + (f": {result.reason}" if result.reason else "")
        )
        kind = "Normal" if result.succeeded and not result.policy_mismatch else "Warning"
        reason = "LivemigMigrated" if result.succeeded else "LivemigMigrationFailed"
        if vmi is not None:
            _event(_vmi_ref(vmi), kind, reason, text)
        if result.policy_mismatch:
            _event(
                _policy_ref(view, result.policy),
                "Warning",
                "TechniqueMismatch",
                f"KubeVirt applied MigrationPolicy {result.applied_policy or '(none)'} to {result.vmim}, "
                f"not {result.expected_policy}",
            )
        if result.lost_in_post_copy:
            window = result.predicted_risk_window_s
            lost = (
                f"{result.namespace}/{result.vmi} was lost: its migration {result.vmim} failed after the post-copy "
                f"switch, inside the risk window the model predicted"
                + (f" ({window:.1f} s)" if window else "")
                + (f": {result.reason}" if result.reason else "")
            )
            rt.metrics.postcopy_losses.labels(result.policy).inc()
            if vmi is not None:
                _event(_vmi_ref(vmi), "Warning", "PostCopyVMLost", lost)
            if policy_body is not None:
                _event(_policy_ref(view, result.policy), "Warning", "PostCopyVMLost", lost)
        if policy_body is None:
            return  # the policy is gone: nothing to count into
        _event(_policy_ref(view, result.policy), kind, "MigrationFinished", text)
        state = rt.policy(result.policy, policy_body.get("status"))
        async with state.lock:
            # Counted finished from here on: no longer running, whatever an older view says (see `running`).
            self.recorded.add(result.vmim)
            outcomes = list(state.status.get("recentOutcomes") or [])
            if any(o.get("migration") == result.vmim for o in outcomes):
                return
            guest = _guest_bytes(vmi)
            changes: dict[str, Any] = {
                "counters": counters_after(rt.counters(state), result, guest),
                "recentOutcomes": [outcome_status(result), *outcomes][:MAX_OUTCOMES],
            }
            plan = dict(state.status.get("currentPlan") or {})
            if plan:
                _set_move_state(
                    plan, f"{result.namespace}/{result.vmi}", "Succeeded" if result.succeeded else "Failed", result.vmim
                )
                if plan.get("state") == "Executing" and all(
                    m.get("state") in ("Succeeded", "Failed", "Skipped") for m in plan.get("moves", [])
                ):
                    failed = any(m.get("state") == "Failed" for m in plan.get("moves", []))
                    plan["state"] = "Failed" if failed else "Completed"
                changes["currentPlan"] = plan
            await rt.write_status(state, changes)

    # --- policy deletion

    async def clean_up_policy(self, policy: str, view: ClusterView) -> list[str]:
        """Everything livemig made for `policy` goes: queued moves, its VMIMs (unfinished ones are aborted, as
        deleting a VMIM does in KubeVirt), its KubeVirt MigrationPolicies, its labels on VMIs."""
        self.withdraw(policy)
        writer = self.runtime.writer
        done: list[str] = []
        for vmim in view.vmims:
            labels = meta(vmim).get("labels") or {}
            if not is_livemig(vmim) or labels.get(POLICY_LABEL) != policy[:63]:
                continue
            namespace, name = str(meta(vmim).get("namespace")), str(meta(vmim).get("name"))
            if await writer.delete_vmim(namespace, name):
                done.append(f"VirtualMachineInstanceMigration {namespace}/{name}")
            vmi_key = f"{namespace}/{(vmim.get('spec') or {}).get('vmiName')}"
            vmi = view.vmis.get(vmi_key)
            if vmi is not None and (meta(vmi).get("labels") or {}).get(MOVE_LABEL) == name:
                try:
                    await writer.patch_vmi_metadata(namespace, vmi_key.split("/", 1)[1], {"labels": {MOVE_LABEL: None}})
                except ApiException as exc:
                    if exc.status != 404:
                        raise
            self.created.pop(name, None)
        for kv_policy in await writer.list_kv_policies(f"{POLICY_LABEL}={policy[:63]}"):
            if await writer.delete_kv_policy(str(meta(kv_policy).get("name"))):
                done.append(f"MigrationPolicy.migrations.kubevirt.io {meta(kv_policy).get('name')}")
        return done


def _claims_of(running: list[Running], view: ClusterView) -> dict[str, tuple[str, Purpose]]:
    out: dict[str, tuple[str, Purpose]] = {}
    for r in running:
        purpose = _purpose_of(view.policies.get(r.policy)) if r.policy else None
        if r.policy and purpose is not None:
            out[r.key] = (r.policy, purpose)
    return out


def running_claims(view: ClusterView) -> Claims:
    """Claims as the cluster shows them without an operator's memory: livemig's running migrations, and the nodes
    the policies' status says they drain (for `livemig plan --kubeconfig`)."""
    running = []
    for vmim in view.vmims:
        if is_livemig(vmim) and not vmim_is_final(vmim):
            key = f"{meta(vmim).get('namespace')}/{(vmim.get('spec') or {}).get('vmiName')}"
            running.append(Running(key, "", (meta(vmim).get("labels") or {}).get(POLICY_LABEL)))
    draining = {
        str(n.get("name")): name
        for name, body in view.policies.items()
        for n in (body.get("status") or {}).get("nodes") or []
        if n.get("state") in ("Draining", "Waiting")
    }
    return Claims(vmis=_claims_of(running, view), draining_nodes=draining)


def _set_move_state(plan: dict[str, Any], key: str, state: str, vmim: str) -> None:
    moves = []
    for move in plan.get("moves") or []:
        vmi = move.get("vmi") or {}
        if f"{vmi.get('namespace')}/{vmi.get('name')}" == key and move.get("state") not in ("Succeeded", "Failed"):
            move = {**move, "state": state, "migration": vmim}
        moves.append(move)
    plan["moves"] = moves


def _purpose_of(policy_body: Mapping[str, Any] | None) -> Purpose | None:
    if policy_body is None:
        return None
    try:
        return Purpose(str((policy_body.get("spec") or {}).get("purpose")))
    except ValueError:
        return None


def _guest_bytes(vmi: Mapping[str, Any] | None) -> float:
    if vmi is None:
        return 0.0
    domain = (vmi.get("spec") or {}).get("domain") or {}
    value = (domain.get("memory") or {}).get("guest") or ((domain.get("resources") or {}).get("requests") or {}).get(
        "memory"
    )
    try:
        return parse_quantity(value, "memory") if value is not None else 0.0
    except Exception:
        return 0.0


def _api_reason(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message")
    except (TypeError, ValueError):
        message = None
    return f"{exc.status} {exc.reason}: {message or exc.body}"[:1000]


def _vmi_ref(vmi: Mapping[str, Any]) -> dict[str, Any]:
    m = meta(vmi)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid")},
    }


def _policy_ref(view: ClusterView, policy: str) -> dict[str, Any] | None:
    body = view.policies.get(policy)
    if body is None:
        return None
    m = meta(body)
    return {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": m.get("name"), "uid": m.get("uid")},
    }


def _event(ref: Mapping[str, Any] | None, kind: str, reason: str, message: str) -> None:
    if ref is None or not (ref.get("metadata") or {}).get("uid"):
        return
    body = kopf.Body(dict(ref))  # type: ignore[arg-type]
    kopf.event(body, type=kind, reason=reason, message=message[:1024])


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
