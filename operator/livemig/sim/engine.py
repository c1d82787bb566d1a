"""The simulator's I/O: creates the scenario's objects, watches the API server (`livemig.sim.watches`), applies
`Simulation`'s writes, serves the admission webhooks, the metrics and the control endpoint.

Inputs come from watches (VMIMs, the KubeVirt CR, KubeVirt MigrationPolicies, Namespaces, VMIs), never from polling;
the only timer is the simulation clock that advances the physics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from kubernetes.aio import client, config
from kubernetes.aio.client.exceptions import ApiException
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from livemig.core.errors import LivemigError, SpecError, SpecErrors
from livemig.core.kubevirt import (
    MIGRATION_POLICY_GROUP,
    MIGRATION_POLICY_PLURAL,
    MIGRATION_POLICY_VERSION,
)
from livemig.core.vocabulary import Outcome
from livemig.sim import rules, webhook
from livemig.sim.apiwriter import ApiWriter
from livemig.sim.clock import Clock, RealClock
from livemig.sim.exporter import SimulationCollector
from livemig.sim.faults import fault_to_manifest, parse_fault
from livemig.sim.load import integrate
from livemig.sim.manifests import (
    KV_GROUP,
    KV_VERSION,
    node_manifest,
    node_status,
    vmi_manifest,
)
from livemig.sim.objects import VmiState
from livemig.sim.scenario import Scenario
from livemig.sim.state import Simulation
from livemig.sim.watches import KUBEVIRT_NAME, KUBEVIRT_PLURAL, VMI_PLURAL, VMIM_PLURAL, ApiWatches

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    kubeconfig: Path
    metrics_port: int = 0  # 0 = any free port
    outcome_log: Path | None = None  # None = stdout
    ready_file: Path | None = None  # JSON with the endpoints, written once the simulator is ready
    wall_tick_s: float = 0.05
    create_concurrency: int = 16


class Engine(ApiWatches):
    def __init__(self, scenario: Scenario, options: EngineOptions, *, clock: Clock | None = None) -> None:
        self.scenario = scenario
        self.options = options
        self._own_clock = clock is None
        self.clock: Clock = clock or RealClock(scenario.simulation.time_scale)
        self.sim = Simulation(scenario, epoch_s=time.time())
        # One name per set of namespaces: a simulator restarted after a crash (SIGKILL leaves its webhook
        # registrations behind, and their failurePolicy Fail would block VMIMs there) replaces them.
        digest = hashlib.sha256(",".join(scenario.namespaces).encode()).hexdigest()[:10]
        self.name = f"livemig-sim-{digest}"
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready = False
        self._api: client.ApiClient | None = None
        self._outcome_out: IO[str] | None = None
        self._runners: list[web.AppRunner] = []
        self.metrics_port = 0
        self.webhook_port = 0
        self.admission: webhook.AdmissionHandlers | None = None
        self.registry = CollectorRegistry()
        self.registry.register(SimulationCollector(self.sim, lambda: self.clock.now()))

    # ------------------------------------------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Set up, then simulate until `stop()` (or cancellation); always cleans up the webhook registrations."""
        self._api = await config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.options.kubeconfig)
        )
        # The clock is read at each write: `self.clock` is replaced once the cluster is set up.
        self.writer = ApiWriter(self._api, self.scenario, lambda: self.sim.timestamp(self.clock.now()))
        self._outcome_out = (
            open(self.options.outcome_log, "a", encoding="utf-8")  # noqa: SIM115, ASYNC230 - at start-up; closed in finally
            if self.options.outcome_log is not None
            else None
        )
        try:
            await self._require_crds()
            await self._start_servers()
            await self._create_objects()
            await self._register_webhooks()
            if self._own_clock:
                # Simulated time 0 is the moment the cluster is set up (creating 2,000 VMIs takes a while).
                self.clock = RealClock(self.scenario.simulation.time_scale)
                self.sim.epoch_s = time.time()
            tasks = [
                asyncio.create_task(self._watch_vmims(), name="watch-vmims"),
                asyncio.create_task(self._watch_kubevirt(), name="watch-kubevirt"),
                asyncio.create_task(self._watch_policies(), name="watch-policies"),
                asyncio.create_task(self._watch_namespaces(), name="watch-namespaces"),
                asyncio.create_task(self._watch_vmis(), name="watch-vmis"),
                asyncio.create_task(self._watch_nodes(), name="watch-nodes"),
                asyncio.create_task(self._loop(), name="simulate"),
            ]
            self._ready = True
            self._write_ready_file()
            log.info(
                "simulator ready: metrics http://127.0.0.1:%d/metrics, webhook :%d",
                self.metrics_port,
                self.webhook_port,
            )
            try:
                stop = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t is not stop and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._unregister_webhooks())
            for runner in self._runners:
                await runner.cleanup()
            if self._outcome_out is not None:
                self._outcome_out.close()
            await self._api.close()

    def stop(self) -> None:
        self._stop.set()

    @property
    def api(self) -> client.ApiClient:
        assert self._api is not None
        return self._api

    # ------------------------------------------------------------------------------------------------- servers

    async def _start_servers(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/state", self._state)
        app.router.add_get("/faults", self._list_faults)
        app.router.add_post("/faults", self._post_fault)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.options.metrics_port)
        await site.start()
        self._runners.append(runner)
        self.metrics_port = _bound_port(runner)

        cert = webhook.make_serving_cert()
        self._ca_pem = cert.ca_pem
        self.admission = webhook.AdmissionHandlers(
            self._get_vmi,
            self._list_vmims_for_vmi,
            version=self.scenario.kubevirt_version,
            priority_queue=lambda: self.sim.priority_queue,
        )
        hook = web.Application()
        hook.router.add_post(webhook.VALIDATE_PATH, self.admission.validate)
        hook.router.add_post(webhook.VALIDATE_POLICY_PATH, self.admission.validate_policy)
        hook.router.add_post(webhook.MUTATE_PATH, self.admission.mutate)
        hook_runner = web.AppRunner(hook, access_log=None)
        await hook_runner.setup()
        await web.TCPSite(hook_runner, "127.0.0.1", 0, ssl_context=webhook.ssl_context(cert)).start()
        self._runners.append(hook_runner)
        self.webhook_port = _bound_port(hook_runner)

    def _write_ready_file(self) -> None:
        if self.options.ready_file is None:
            return
        info = {
            "metrics": f"http://127.0.0.1:{self.metrics_port}/metrics",
            "control": f"http://127.0.0.1:{self.metrics_port}",
            "metricsPort": self.metrics_port,
            "webhookPort": self.webhook_port,
            "webhookConfiguration": self.name,
            "epoch": self.sim.epoch_s,
            "timeScale": self.clock.time_scale,
        }
        tmp = self.options.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        tmp.replace(self.options.ready_file)

    async def _metrics(self, request: web.Request) -> web.Response:
        # Collected on the event loop: the collector reads the simulation's state, which only this loop mutates.
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok" if self._ready else "starting", status=200 if self._ready else 503)

    async def _state(self, request: web.Request) -> web.Response:
        sim = self.sim
        body = {
            "now": self.clock.now(),
            "timeScale": self.clock.time_scale,
            "migrations": {
                m.key: {
                    "phase": m.phase.value,
                    "source": m.source_node,
                    "target": m.target_node,
                    "mode": m.mode,
                    "outcome": None if m.outcome is None else str(m.outcome),
                    "reason": m.failure_reason,
                }
                for m in sim.migrations.values()
            },
            "vmisLost": sim.vmis_lost,
            "faultsFired": sim.faults_fired,
            "nodesNotReady": sorted(n for n, s in sim.nodes.items() if not s.ready),
            "nodesCordoned": sorted(n for n, s in sim.nodes.items() if not s.spec.schedulable),
            "nodesTainted": sorted(n for n, s in sim.nodes.items() if s.spec.blocking_taints()),
            "denials": list(self.admission.denials if self.admission else []),
        }
        return web.json_response(body)

    async def _list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([fault_to_manifest(f) for f in self.sim.faults])

    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            doc = await request.json()
            fault = parse_fault(doc, "fault", now_s=self.clock.now())
            names = self.sim.nodes
            if fault.node is not None and fault.node not in names:
                raise SpecError("fault.node", f"no node named {fault.node!r}")
            if fault.vmi is not None and fault.vmi not in self.sim.vmis:
                raise SpecError("fault.vmi", f"no VMI {fault.vmi!r}")
        except (SpecError, SpecErrors, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        index = self.sim.add_fault(fault)
        self._wake.set()
        return web.json_response({"index": index, "fault": fault_to_manifest(fault)}, status=201)

    # ------------------------------------------------------------------------------------------------- objects

    async def _require_crds(self, timeout_s: float = 30.0) -> None:
        """The KubeVirt CRDs must be served (they may have been applied a moment ago: wait until established)."""
        custom: Any = client.CustomObjectsApi(self.api)
        wanted = [
            (KV_GROUP, KV_VERSION, VMI_PLURAL),
            (KV_GROUP, KV_VERSION, VMIM_PLURAL),
            (KV_GROUP, KV_VERSION, KUBEVIRT_PLURAL),
            (MIGRATION_POLICY_GROUP, MIGRATION_POLICY_VERSION, MIGRATION_POLICY_PLURAL),
        ]
        deadline = time.monotonic() + timeout_s
        for group, version, plural in wanted:
            while True:
                try:
                    await custom.list_cluster_custom_object(group, version, plural, limit=1)
                    break
                except ApiException as exc:
                    if exc.status not in (404, 429, 503) or time.monotonic() > deadline:
                        raise LivemigError(
                            f"the API server does not serve {plural}.{group}/{version} ({exc.status} {exc.reason}); "
                            "install KubeVirt's CRDs first: kubectl apply --server-side -f hack/kubevirt-crds/"
                        ) from None
                await asyncio.sleep(0.5)  # a just-applied CRD becomes established within a moment

    async def _create_objects(self) -> None:
        core: Any = client.CoreV1Api(self.api)
        custom: Any = client.CustomObjectsApi(self.api)
        snap = self.scenario.snapshot
        namespaces = {*self.scenario.namespaces, self.scenario.simulation.kubevirt_namespace}
        for name in sorted(namespaces):
            labels = dict(self.sim.namespace_labels.get(name, {}))
            await _create_or_patch(
                partial(core.create_namespace, {"metadata": {"name": name, "labels": labels}}),
                partial(core.patch_namespace, name, {"metadata": {"labels": labels}}, _content_type=MERGE),
            )
        sem = asyncio.Semaphore(self.options.create_concurrency)

        async def node(n: Any) -> None:
            async with sem:
                manifest = node_manifest(n, annotate_bandwidth=self.scenario.simulation.bandwidth_annotation)
                await _create_or_patch(partial(core.create_node, manifest), _noop)
                await core.patch_node_status(
                    n.name, {"status": node_status(n, True, self.sim.timestamp(0))}, _content_type=MERGE
                )
                # The API server's TaintNodesByCondition admission gives a new Node the taint
                # node.kubernetes.io/not-ready:NoSchedule; the node lifecycle controller (not running here) removes
                # it once the node is Ready.  Write the scenario's labels, taints and cordon over it.
                await core.patch_node(
                    n.name, {"metadata": manifest["metadata"], "spec": manifest["spec"]}, _content_type=MERGE
                )

        async def vmi(v: VmiState) -> None:
            async with sem:
                manifest = vmi_manifest(
                    v,
                    self.sim.timestamp(0),
                    self.scenario.vmi_documents.get(v.key, {}),
                    sizing=self.scenario.snapshot.launcher,
                )
                ns, name = v.key.split("/", 1)
                await _create_or_patch(
                    lambda: custom.create_namespaced_custom_object(KV_GROUP, KV_VERSION, ns, VMI_PLURAL, manifest),
                    lambda: custom.patch_namespaced_custom_object(
                        KV_GROUP,
                        KV_VERSION,
                        ns,
                        VMI_PLURAL,
                        name,
                        {
                            "metadata": {"labels": manifest["metadata"]["labels"]},
                            "spec": manifest["spec"],
                            "status": {**manifest["status"], "migrationState": None},
                        },
                    ),
                )

        await asyncio.gather(*(node(n) for n in snap.nodes))
        await asyncio.gather(*(vmi(v) for v in self.sim.vmis.values()))
        kv_ns = self.scenario.simulation.kubevirt_namespace
        kv = {
            "apiVersion": f"{KV_GROUP}/{KV_VERSION}",
            "kind": "KubeVirt",
            "metadata": {"name": KUBEVIRT_NAME, "namespace": kv_ns},
            "spec": {
                "configuration": {
                    "migrations": dict(self.scenario.kubevirt_manifest),
                    "developerConfiguration": {"featureGates": list(self.scenario.feature_gates)},
                }
            },
        }
        await _create_or_patch(
            lambda: custom.create_namespaced_custom_object(KV_GROUP, KV_VERSION, kv_ns, KUBEVIRT_PLURAL, kv),
            lambda: custom.patch_namespaced_custom_object(
                KV_GROUP, KV_VERSION, kv_ns, KUBEVIRT_PLURAL, KUBEVIRT_NAME, {"spec": kv["spec"]}
            ),
        )
        # virt-operator publishes the deployed release; operators read it to know which KubeVirt they drive.
        await custom.patch_namespaced_custom_object_status(
            KV_GROUP,
            KV_VERSION,
            kv_ns,
            KUBEVIRT_PLURAL,
            KUBEVIRT_NAME,
            {"status": {"phase": "Deployed", "observedKubeVirtVersion": self.scenario.kubevirt_version.tag}},
        )
        for manifest in self.scenario.policy_manifests:
            name = manifest["metadata"]["name"]
            group = (MIGRATION_POLICY_GROUP, MIGRATION_POLICY_VERSION, MIGRATION_POLICY_PLURAL)
            await _create_or_patch(
                partial(custom.create_cluster_custom_object, *group, manifest),
                partial(custom.patch_cluster_custom_object, *group, name, {"spec": manifest["spec"]}),
            )

    async def _register_webhooks(self) -> None:
        # The simulator plays virt-controller: its own requests (evacuation VMIMs with a priority) pass the check
        # KubeVirt keeps for virt-controller's service account.
        if self.admission is not None:
            with contextlib.suppress(ApiException):
                review = await client.AuthenticationV1Api(self.api).create_self_subject_review(
                    client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
                )
                user = review.status.user_info if review.status is not None else None
                if user is not None and user.username:
                    self.admission.controller_users = self.admission.controller_users | {str(user.username)}
        adm: Any = client.AdmissionregistrationV1Api(self.api)
        mutating, validating = webhook.webhook_configurations(
            self.name, self.webhook_port, self._ca_pem, self.scenario.namespaces
        )
        await _create_or_patch(
            partial(adm.create_mutating_webhook_configuration, mutating),
            partial(adm.patch_mutating_webhook_configuration, self.name, mutating, _content_type=MERGE),
        )
        await _create_or_patch(
            partial(adm.create_validating_webhook_configuration, validating),
            partial(adm.patch_validating_webhook_configuration, self.name, validating, _content_type=MERGE),
        )

    async def _unregister_webhooks(self) -> None:
        adm: Any = client.AdmissionregistrationV1Api(self.api)
        for delete in (adm.delete_validating_webhook_configuration, adm.delete_mutating_webhook_configuration):
            with contextlib.suppress(ApiException):
                await delete(self.name)

    # lookups for the validating webhook (live, as KubeVirt's admitter does)

    async def _get_vmi(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        custom: Any = client.CustomObjectsApi(self.api)
        try:
            obj = await custom.get_namespaced_custom_object(KV_GROUP, KV_VERSION, namespace, VMI_PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj) if isinstance(obj, dict) else None

    async def _list_vmims_for_vmi(self, namespace: str, vmi: str) -> list[Mapping[str, Any]]:
        custom: Any = client.CustomObjectsApi(self.api)
        result = await custom.list_namespaced_custom_object(
            KV_GROUP, KV_VERSION, namespace, VMIM_PLURAL, label_selector=f"{rules.VMI_NAME_LABEL}={vmi}"
        )
        return list(result.get("items") or [])

    # ------------------------------------------------------------------------------------------------- simulate

    async def _loop(self) -> None:
        last_integrated = time.monotonic()
        while True:
            now = self.clock.now()
            result = self.sim.tick(now)
            await self.writer.apply(result.writes)
            for record in result.outcomes:
                self._log_outcome(record)
            if time.monotonic() - last_integrated >= 0.5:
                integrate(self.sim, now)
                last_integrated = time.monotonic()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.options.wall_tick_s)

    def _log_outcome(self, record: Mapping[str, Any]) -> None:
        line = json.dumps({**record, "epoch": self.sim.epoch_s}, sort_keys=True)
        if self._outcome_out is not None:
            self._outcome_out.write(line + "\n")
            self._outcome_out.flush()
        else:
            print(line, flush=True)


async def _noop() -> None:
    return None


async def _create_or_patch(create: Callable[[], Awaitable[Any]], patch: Callable[[], Awaitable[Any]]) -> None:
    try:
        await create()
    except ApiException as exc:
        if exc.status != 409:
            raise
        await patch()


def _bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("server has no bound socket")


__all__ = ["Engine", "EngineOptions", "Outcome"]
