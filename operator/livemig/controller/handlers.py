"""Kopf handlers: decorators and a few lines of delegation each.

- Indexes (watch-fed, what cycles read): VMIs, VMIMs, Nodes, Namespaces, the KubeVirt CR, livemig policies.
- livemig MigrationPolicy: create/update/resume check the spec (`Ready`); a daemon per policy runs the evaluation
  cycle every `spec.interval` (a timer whose interval the policy sets); delete cleans up everything livemig made.
- VMIMs: every event of a finished one records livemig's outcome and lets the executor start what waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf

from livemig.controller import indexes
from livemig.controller.cycle import CORDONED_BY, Cycle, read_policy, uncordon, view_from
from livemig.controller.runtime import Runtime
from livemig.core.errors import SpecErrors
from livemig.core.inventory import meta, vmim_is_final

log = logging.getLogger(__name__)

KV = ("kubevirt.io", "v1")
LIVEMIG = ("livemig.io", "v1alpha1", "migrationpolicies")
#: Shortest pause between two cycles of one policy when the spec cannot be read (the CRD allows ≥ 5 s).
MIN_INTERVAL_S = 5.0


def runtime(memo: Any) -> Runtime:
    rt: Runtime = memo.runtime
    return rt


# --- indexes


@kopf.index(*KV, "virtualmachineinstances")
def vmi_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): indexes.trim_vmi(body)}


@kopf.index(*KV, "virtualmachineinstancemigrations")
def vmim_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): indexes.trim_vmim(body)}


@kopf.index(*KV, "kubevirts")
def kubevirt_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): indexes.trim_kubevirt(body)}


@kopf.index("", "v1", "nodes")
def node_index(name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {name: indexes.trim_node(body)}


@kopf.index("", "v1", "namespaces")
def namespace_index(name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {name: indexes.trim_namespace(body)}


@kopf.index(*LIVEMIG)
def policy_index(name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {name: indexes.trim_policy(body)}


# --- livemig policies


@kopf.on.resume(*LIVEMIG)
@kopf.on.create(*LIVEMIG)
@kopf.on.update(*LIVEMIG, field="spec")
async def policy_changed(
    name: str, body: kopf.Body, memo: Any, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    """Check the spec as the parser does; a bad one is reported (Ready=False), not retried."""
    rt = runtime(memo)
    state = rt.policy(name, body.get("status"))
    state.generation = body.get("metadata", {}).get("generation")
    try:
        read_policy(body)
    except SpecErrors as exc:
        async with state.lock:
            rt.condition(state, "Ready", False, "InvalidSpec", str(exc), time.time())
            await rt.write_status(
                state, {"observedGeneration": state.generation or 0, "conditions": state.status["conditions"]}
            )
        raise kopf.PermanentError(str(exc)) from None
    logger.info("policy %s accepted (generation %s)", name, state.generation)


@kopf.daemon(*LIVEMIG, cancellation_timeout=5.0)
async def policy_cycle(stopped: kopf.DaemonStopped, name: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """The policy's timer: one evaluation every `spec.interval` (read afresh each time: the body is live)."""
    rt = runtime(memo)
    while not stopped:
        interval = MIN_INTERVAL_S
        with contextlib.suppress(SpecErrors):
            interval = read_policy(body).interval_s
        try:
            view = view_from(kwargs)
            await Cycle(rt, name, view.policies.get(name) or indexes.trim_policy(body), view).run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("policy %s: evaluation failed; retrying in %ss", name, interval, extra={"policy": name})
        await stopped.wait(interval)


@kopf.on.delete(*LIVEMIG)
async def policy_deleted(
    name: str, memo: Any, logger: logging.Logger | logging.LoggerAdapter[Any], **kwargs: Any
) -> None:
    """Nothing livemig made for the policy stays: queued moves, VMIMs, KubeVirt policies, labels, cordons."""
    rt = runtime(memo)
    view = view_from(kwargs)
    removed = await rt.executor.clean_up_policy(name, view)
    for node_name, node in view.nodes.items():
        if (meta(node).get("annotations") or {}).get(CORDONED_BY) == name:
            await uncordon(rt, node_name)
            removed.append(f"cordon of node {node_name}")
    rt.forget(name)
    logger.info("policy %s deleted; removed: %s", name, ", ".join(removed) or "nothing")


# --- migrations


@kopf.on.event(*KV, "virtualmachineinstancemigrations")
async def vmim_event(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """A finished migration frees a slot (whoever made it); a finished livemig one is also recorded."""
    if body.get("status", {}).get("phase") not in ("Succeeded", "Failed") and kwargs.get("type") != "DELETED":
        return
    rt = runtime(memo)
    view = view_from(kwargs)
    if vmim_is_final(indexes.trim_vmim(body)):
        await rt.executor.record(indexes.trim_vmim(body), view)
    await rt.executor.pump(view)
