"""Carries a tick's writes to the API server, riding out an API server restart or an etcd outage as KubeVirt's
controllers do: each write is retried with backoff on connection errors, 429 and 5xx, then given up."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from livemig.adapters.kube import transient
from livemig.sim import rules
from livemig.sim.manifests import KV_GROUP, KV_VERSION, event_manifest, json_patch_ops, node_status
from livemig.sim.scenario import Scenario
from livemig.sim.writes import (
    Event,
    NodeLabel,
    NodeReady,
    NodeTaint,
    VmimCreate,
    VmimDeletion,
    VmimFinalizerRemoval,
    VmimStatus,
    VmiPatch,
    Write,
)

log = logging.getLogger(__name__)

WRITE_RETRY_S = 120.0
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
VMI_PLURAL = "virtualmachineinstances"
VMIM_PLURAL = "virtualmachineinstancemigrations"


class ApiWriter:
    def __init__(self, api: client.ApiClient, scenario: Scenario, stamp: Callable[[], str]) -> None:
        self._api = api
        self._scenario = scenario
        self._stamp = stamp

    async def _write_one(self, w: Write, custom: Any, core: Any) -> None:
        if isinstance(w, VmimStatus):
            await custom.patch_namespaced_custom_object_status(
                KV_GROUP, KV_VERSION, w.namespace, VMIM_PLURAL, w.name, {"status": dict(w.status)}
            )
        elif isinstance(w, VmiPatch) and w.replace:
            await custom.patch_namespaced_custom_object(
                KV_GROUP, KV_VERSION, w.namespace, VMI_PLURAL, w.name, json_patch_ops(w.patch), _content_type=JSON_PATCH
            )
        elif isinstance(w, VmiPatch):
            await custom.patch_namespaced_custom_object(
                KV_GROUP, KV_VERSION, w.namespace, VMI_PLURAL, w.name, dict(w.patch)
            )
        elif isinstance(w, VmimFinalizerRemoval):
            await self._remove_finalizer(custom, w.namespace, w.name)
        elif isinstance(w, VmimDeletion):
            await custom.delete_namespaced_custom_object(KV_GROUP, KV_VERSION, w.namespace, VMIM_PLURAL, w.name)
        elif isinstance(w, Event):
            await core.create_namespaced_event(w.namespace, event_manifest(w, self._stamp()))
        elif isinstance(w, VmimCreate):
            created = await custom.create_namespaced_custom_object(
                KV_GROUP, KV_VERSION, w.namespace, VMIM_PLURAL, dict(w.manifest)
            )
            name = created["metadata"]["name"]
            event = Event(
                w.namespace,
                "VirtualMachineInstance",
                w.vmi,
                None,
                "SuccessfulCreate",
                f"Created Migration {name}",
            )
            await core.create_namespaced_event(w.namespace, event_manifest(event, self._stamp()))
        elif isinstance(w, NodeLabel):
            await core.patch_node(w.name, {"metadata": {"labels": {w.key: w.value}}}, _content_type=MERGE)
        elif isinstance(w, NodeTaint):
            node = await core.read_node(w.name)
            taints = [t.to_dict() for t in (node.spec.taints or []) if t.key != w.key]
            taints = [{k: v for k, v in t.items() if v is not None} for t in taints]
            taints.append({"key": w.key, "effect": "NoSchedule"})
            await core.patch_node(w.name, {"spec": {"taints": taints}}, _content_type=MERGE)
        elif isinstance(w, NodeReady):
            n = self._scenario.snapshot.node(w.name)
            await core.patch_node_status(
                w.name,
                {"status": node_status(n, w.ready, self._stamp())},
                _content_type=MERGE,
            )

    async def apply(self, writes: Iterable[Write]) -> None:
        custom: Any = client.CustomObjectsApi(self._api)
        core: Any = client.CoreV1Api(self._api)
        for w in writes:
            try:
                # Like KubeVirt's controllers, ride out an API server restart or an etcd outage: retry the write
                # with backoff on connection errors, 429 and 5xx (for up to two minutes), then give up on it.
                async for attempt in AsyncRetrying(
                    stop=stop_after_delay(WRITE_RETRY_S),
                    wait=wait_exponential(multiplier=0.2, max=5.0),
                    retry=retry_if_exception(transient),
                    reraise=True,
                ):
                    with attempt:
                        await self._write_one(w, custom, core)
            except ApiException as exc:
                if exc.status == 404:
                    continue  # the object is gone (deleted meanwhile): nothing left to write
                log.warning("write %s failed: %s", type(w).__name__, exc)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                log.warning("write %s given up after %.0f s of retries: %s", type(w).__name__, WRITE_RETRY_S, exc)

    async def _remove_finalizer(self, custom: Any, namespace: str, name: str) -> None:
        for _ in range(5):
            obj = await custom.get_namespaced_custom_object(KV_GROUP, KV_VERSION, namespace, VMIM_PLURAL, name)
            meta = obj.get("metadata") or {}
            finalizers = [f for f in meta.get("finalizers") or [] if f != rules.MIGRATION_FINALIZER]
            if finalizers == list(meta.get("finalizers") or []):
                return
            try:
                await custom.patch_namespaced_custom_object(
                    KV_GROUP,
                    KV_VERSION,
                    namespace,
                    VMIM_PLURAL,
                    name,
                    {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}},
                )
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
