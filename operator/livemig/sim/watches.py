"""The simulator's inputs: list-then-watch of every kind it plays KubeVirt for (VMIMs, the KubeVirt CR, KubeVirt
MigrationPolicies, Namespaces, Nodes, VMIs), each event handed to `Simulation`'s `on_*` methods.

A mixin of `Engine` (livemig.sim.engine), which owns the API client and the wake-up event the watches set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubernetes.aio import client, watch
from kubernetes.aio.client.exceptions import ApiException

from livemig.core.errors import SpecErrors
from livemig.core.kubevirt import (
    MIGRATION_POLICY_GROUP,
    MIGRATION_POLICY_PLURAL,
    MIGRATION_POLICY_VERSION,
    parse_kv_migration_policy,
    parse_migration_configuration,
)
from livemig.sim.clock import Clock
from livemig.sim.manifests import KV_GROUP, KV_VERSION
from livemig.sim.scenario import Scenario
from livemig.sim.state import Simulation

log = logging.getLogger(__name__)

VMI_PLURAL, VMIM_PLURAL, KUBEVIRT_PLURAL = "virtualmachineinstances", "virtualmachineinstancemigrations", "kubevirts"
KUBEVIRT_NAME = "kubevirt"


class ApiWatches:
    scenario: Scenario
    sim: Simulation
    clock: Clock
    _wake: asyncio.Event

    @property
    def api(self) -> client.ApiClient:
        raise NotImplementedError  # Engine's

    async def _watch(
        self,
        list_fn: Callable[..., Awaitable[Any]],
        on_event: Callable[[str, Mapping[str, Any]], None],
        on_relist: Callable[[list[Mapping[str, Any]]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        """List, then watch from the list's resourceVersion; relist after an expired version or a broken stream."""
        while True:
            try:
                listing = await list_fn(**kwargs)
                if not isinstance(listing, dict):
                    listing = self.api.sanitize_for_serialization(listing)  # type: ignore[no-untyped-call]
                items = list(listing.get("items") or [])
                if on_relist is not None:
                    on_relist(items)
                for item in items:
                    on_event("ADDED", item)
                self._wake.set()
                version = (listing.get("metadata") or {}).get("resourceVersion")
                w: Any = watch.Watch()  # type: ignore[no-untyped-call]
                try:
                    async for event in w.stream(
                        list_fn, resource_version=version, timeout_seconds=240, allow_watch_bookmarks=True, **kwargs
                    ):
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            on_event(event["type"], event["raw_object"])
                            self._wake.set()
                finally:
                    await w.close()
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                if exc.status != 410:
                    log.warning(
                        "watch %s failed (%s %s); relisting",
                        getattr(list_fn, "__name__", list_fn),
                        exc.status,
                        exc.reason,
                    )
                    await asyncio.sleep(1.0)
            except Exception:
                log.exception("watch %s broke; relisting", getattr(list_fn, "__name__", list_fn))
                await asyncio.sleep(1.0)

    async def _watch_vmims(self) -> None:
        custom: Any = client.CustomObjectsApi(self.api)
        namespaces = set(self.scenario.namespaces)

        def relist(items: list[Mapping[str, Any]]) -> None:
            present = {f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in items}
            for key in [k for k in self.sim.migrations if k not in present]:
                ns, name = key.split("/", 1)
                self.sim.on_vmim_gone(ns, name)

        def on_event(kind: str, obj: Mapping[str, Any]) -> None:
            meta = obj.get("metadata") or {}
            if meta.get("namespace") not in namespaces:
                return
            if kind == "DELETED":
                self.sim.on_vmim_gone(meta["namespace"], meta["name"])
            else:
                self.sim.on_vmim(obj, self.clock.now())

        await self._watch(
            custom.list_cluster_custom_object, on_event, relist, group=KV_GROUP, version=KV_VERSION, plural=VMIM_PLURAL
        )

    async def _watch_kubevirt(self) -> None:
        custom: Any = client.CustomObjectsApi(self.api)

        def on_event(kind: str, obj: Mapping[str, Any]) -> None:
            if kind == "DELETED" or (obj.get("metadata") or {}).get("name") != KUBEVIRT_NAME:
                return
            configuration = (obj.get("spec") or {}).get("configuration") or {}
            gates = (configuration.get("developerConfiguration") or {}).get("featureGates") or []
            try:
                self.sim.on_kubevirt_config(
                    parse_migration_configuration(
                        configuration.get("migrations"), "spec.configuration.migrations", manifest=True
                    ),
                    [str(g) for g in gates] if isinstance(gates, list) else [],
                )
            except SpecErrors as exc:
                log.warning("ignoring the KubeVirt CR's migration configuration: %s", exc)

        await self._watch(
            custom.list_namespaced_custom_object,
            on_event,
            group=KV_GROUP,
            version=KV_VERSION,
            namespace=self.scenario.simulation.kubevirt_namespace,
            plural=KUBEVIRT_PLURAL,
        )

    async def _watch_policies(self) -> None:
        custom: Any = client.CustomObjectsApi(self.api)

        def relist(items: list[Mapping[str, Any]]) -> None:
            present = {i["metadata"]["name"] for i in items}
            for name in [n for n in self.sim.policies if n not in present]:
                self.sim.on_policy_gone(name)

        def on_event(kind: str, obj: Mapping[str, Any]) -> None:
            name = (obj.get("metadata") or {}).get("name", "")
            if kind == "DELETED":
                self.sim.on_policy_gone(name)
                return
            try:
                self.sim.on_policy(parse_kv_migration_policy(obj, f"migrationpolicies/{name}"))
            except SpecErrors as exc:
                log.warning("ignoring KubeVirt MigrationPolicy %s: %s", name, exc)

        await self._watch(
            custom.list_cluster_custom_object,
            on_event,
            relist,
            group=MIGRATION_POLICY_GROUP,
            version=MIGRATION_POLICY_VERSION,
            plural=MIGRATION_POLICY_PLURAL,
        )

    async def _watch_namespaces(self) -> None:
        core: Any = client.CoreV1Api(self.api)
        wanted = set(self.scenario.namespaces)

        def on_event(kind: str, obj: Mapping[str, Any]) -> None:
            meta = obj.get("metadata") or {}
            if kind != "DELETED" and meta.get("name") in wanted:
                self.sim.on_namespace_labels(meta["name"], meta.get("labels") or {})

        await self._watch(core.list_namespace, on_event)

    async def _watch_nodes(self) -> None:
        core: Any = client.CoreV1Api(self.api)

        def on_event(kind: str, obj: Mapping[str, Any]) -> None:
            meta = obj.get("metadata") or {}
            spec = obj.get("spec") or {}
            if kind != "DELETED" and meta.get("name") in self.sim.nodes:
                self.sim.on_node(
                    meta["name"], meta.get("labels") or {}, spec.get("taints") or [], bool(spec.get("unschedulable"))
                )

        await self._watch(core.list_node, on_event)

    async def _watch_vmis(self) -> None:
        custom: Any = client.CustomObjectsApi(self.api)

        def on_event(kind: str, obj: Mapping[str, Any]) -> None:
            meta = obj.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            if kind == "DELETED":
                self.sim.on_vmi_gone(key, self.clock.now())
                return
            self.sim.on_vmi_labels(key, meta.get("labels") or {})
            self.sim.on_vmi_phase(key, str((obj.get("status") or {}).get("phase") or ""), self.clock.now())

        await self._watch(
            custom.list_cluster_custom_object, on_event, group=KV_GROUP, version=KV_VERSION, plural=VMI_PLURAL
        )
