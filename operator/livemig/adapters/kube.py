"""Writes to the Kubernetes API through `kubernetes.aio` (never a blocking call on the event loop).

Every call is retried with `tenacity` on transient failures (connection errors, 429, 5xx: an API server restart or
an etcd outage) with exponential backoff, and never on the others (403, 404, 409, 422: the caller decides).
Creating an object that exists (409) is reported as `False`, so an idempotent caller can go on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from kubernetes.aio import client, config
from kubernetes.aio.client.exceptions import ApiException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
KV = ("kubevirt.io", "v1")
LIVEMIG = ("livemig.io", "v1alpha1", "migrationpolicies")
KV_POLICY = ("migrations.kubevirt.io", "v1alpha1", "migrationpolicies")
T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in (0, 429, 500, 502, 503, 504)
    return isinstance(exc, aiohttp.ClientError | ConnectionError | TimeoutError)


@dataclass(frozen=True, slots=True)
class RetrySettings:
    max_delay_s: float = 60.0  # give up on one write after this long (the next cycle tries again)
    first_wait_s: float = 0.5
    max_wait_s: float = 8.0


async def load_api_client(kubeconfig: str | None) -> client.ApiClient:
    """An ApiClient for `kubeconfig`, else $KUBECONFIG, else the in-cluster service account."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        await config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


class KubeWriter:
    """The operator's writes: VMI labels and annotations, VMIMs, KubeVirt MigrationPolicies, node cordons, policy
    status.  Reads come from Kopf's watch-fed indexes, not from here, except the fresh read of a VMI right
    before a move starts (`read_vmi`)."""

    def __init__(
        self,
        api: client.ApiClient,
        retry: RetrySettings = RetrySettings(),
        on_request: Callable[[], None] | None = None,
    ) -> None:
        self.api = api
        self._on_request = on_request
        self._custom: Any = client.CustomObjectsApi(api)
        self._core: Any = client.CoreV1Api(api)
        self._retry = retry
        self.requests = 0  # API requests made (for the benchmarks)

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(self._retry.max_delay_s),
            wait=wait_exponential(multiplier=self._retry.first_wait_s, max=self._retry.max_wait_s),
            retry=retry_if_exception(transient),
            reraise=True,
        ):
            with attempt:
                self.requests += 1
                if self._on_request is not None:
                    self._on_request()
                return await fn()
        raise AssertionError("unreachable")  # pragma: no cover

    async def create(self, fn: Callable[[], Awaitable[Any]]) -> bool:
        """True if created, False if it already existed."""
        try:
            await self._call(fn)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def delete(self, fn: Callable[[], Awaitable[Any]]) -> bool:
        """True if deleted, False if it was already gone."""
        try:
            await self._call(fn)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- VMIs

    async def read_vmi(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The VMI as the API server has it now (a quorum read), or None if it is gone: the one read not served by
        an index, made right before a move starts so a stale index cannot start a second one."""
        try:
            result: Mapping[str, Any] = await self._call(
                lambda: self._custom.get_namespaced_custom_object(*KV, namespace, "virtualmachineinstances", name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def patch_vmi_metadata(self, namespace: str, name: str, metadata: Mapping[str, Any]) -> None:
        await self._call(
            lambda: self._custom.patch_namespaced_custom_object(
                *KV, namespace, "virtualmachineinstances", name, {"metadata": dict(metadata)}, _content_type=MERGE
            )
        )

    # --- VMIMs

    async def create_vmim(self, manifest: Mapping[str, Any]) -> bool:
        namespace = manifest["metadata"]["namespace"]
        return await self.create(
            lambda: self._custom.create_namespaced_custom_object(
                *KV, namespace, "virtualmachineinstancemigrations", dict(manifest)
            )
        )

    async def delete_vmim(self, namespace: str, name: str) -> bool:
        return await self.delete(
            lambda: self._custom.delete_namespaced_custom_object(
                *KV, namespace, "virtualmachineinstancemigrations", name
            )
        )

    # --- KubeVirt MigrationPolicies

    async def create_kv_policy(self, manifest: Mapping[str, Any]) -> bool:
        return await self.create(lambda: self._custom.create_cluster_custom_object(*KV_POLICY, dict(manifest)))

    async def delete_kv_policy(self, name: str) -> bool:
        return await self.delete(lambda: self._custom.delete_cluster_custom_object(*KV_POLICY, name))

    async def list_kv_policies(self, label_selector: str) -> list[Mapping[str, Any]]:
        result = await self._call(
            lambda: self._custom.list_cluster_custom_object(*KV_POLICY, label_selector=label_selector)
        )
        return list(result.get("items", []))

    # --- Nodes

    async def patch_node(self, name: str, body: Mapping[str, Any]) -> None:
        await self._call(lambda: self._core.patch_node(name, dict(body), _content_type=MERGE))

    # --- livemig policies

    async def patch_policy_status(self, name: str, status: Mapping[str, Any]) -> None:
        await self._call(
            lambda: self._custom.patch_cluster_custom_object_status(
                *LIVEMIG, name, {"status": dict(status)}, _content_type=MERGE
            )
        )

    # --- reads used outside the operator's indexes (livemig plan --kubeconfig, clean-up on policy deletion)

    async def list_all(self) -> dict[str, list[Mapping[str, Any]]]:
        """One LIST per kind the operator indexes (for `livemig plan --kubeconfig`)."""
        nodes = await self._call(lambda: self._core.list_node())
        namespaces = await self._call(lambda: self._core.list_namespace())
        vmis = await self._call(lambda: self._custom.list_cluster_custom_object(*KV, "virtualmachineinstances"))
        vmims = await self._call(
            lambda: self._custom.list_cluster_custom_object(*KV, "virtualmachineinstancemigrations")
        )
        kubevirts = await self._call(lambda: self._custom.list_cluster_custom_object(*KV, "kubevirts"))
        policies = await self._call(lambda: self._custom.list_cluster_custom_object(*LIVEMIG))
        sanitize = self.api.sanitize_for_serialization
        return {
            "nodes": [sanitize(n) for n in nodes.items],
            "namespaces": [sanitize(n) for n in namespaces.items],
            "vmis": list(vmis.get("items", [])),
            "vmims": list(vmims.get("items", [])),
            "kubevirts": list(kubevirts.get("items", [])),
            "policies": list(policies.get("items", [])),
        }
