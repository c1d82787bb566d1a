"""The composition root of the operator process: clients, /metrics, Kopf's settings and run loop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import kopf
from kubernetes.aio import client
from prometheus_client import start_http_server

from livemig.adapters.kube import KubeWriter, load_api_client
from livemig.adapters.prometheus import PrometheusClients
from livemig.controller import handlers  # noqa: F401 - registers the handlers with Kopf's default registry
from livemig.controller.runtime import Runtime
from livemig.controller.settings import OperatorSettings
from livemig.core.errors import LivemigError

log = logging.getLogger(__name__)
API_PROBE_TIMEOUT_S = 10.0
PEERING_LIFETIME_S = 20


class StartupError(LivemigError):
    """The operator cannot start (no API server, no credentials): a one-line message, exit code 2."""


@kopf.on.startup()
def configure_kopf(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "livemig.io/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="livemig.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="livemig.io", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # livemig posts its own Events; Kopf posts only its warnings
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.batching.error_delays = (1, 2, 5, 10, 20, 30)
    # A replica that dies (SIGKILL, node loss) stops refreshing its peering record; the standby takes over once the
    # record is older than this. Kopf's default is 60 s; 20 s bounds the takeover near 30 s (docs/operator.md, HA).
    settings.peering.lifetime = PEERING_LIFETIME_S


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The kubeconfig `--kubeconfig` named (exported as $KUBECONFIG before Kopf starts), else the service account."""
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(**kwargs)
    return kopf.login_with_service_account(**kwargs)


def free_port(bind: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((bind if bind != "0.0.0.0" else "127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def probe_api(api: client.ApiClient) -> str:
    try:
        version = await asyncio.wait_for(client.VersionApi(api).get_code(), API_PROBE_TIMEOUT_S)
    except Exception as exc:
        host = api.configuration.host
        raise StartupError(
            f"cannot reach the Kubernetes API server at {host}: {type(exc).__name__}: {exc}"[:300]
        ) from None
    return str(version.git_version)


async def serve(settings: OperatorSettings) -> None:
    try:
        api = await load_api_client(settings.connection.kubeconfig)
    except Exception as exc:
        raise StartupError(f"cannot load Kubernetes credentials: {exc}"[:300]) from None
    version = await probe_api(api)
    if settings.connection.kubeconfig:
        os.environ["KUBECONFIG"] = settings.connection.kubeconfig  # for Kopf's own client (login above)
    rt = Runtime(settings, KubeWriter(api), PrometheusClients(settings.connection.prometheus_url))
    rt.writer = KubeWriter(api, on_request=rt.metrics.api_requests.inc)
    endpoints = settings.endpoints
    try:
        server, _thread = start_http_server(endpoints.metrics_port, endpoints.bind, registry=rt.metrics.registry)
    except OSError as exc:
        raise StartupError(f"--metrics-port {endpoints.metrics_port}: {exc.strerror}") from None
    metrics_port = int(server.server_port)
    health_port = endpoints.health_port or free_port(endpoints.bind)
    log.info(
        "livemig operator: API server %s (%s), metrics on :%d/metrics, health on :%d/healthz",
        api.configuration.host,
        version,
        metrics_port,
        health_port,
    )
    ready = asyncio.Event()

    async def announce() -> None:
        await ready.wait()
        if endpoints.ready_file:
            text = json.dumps({"metrics_port": metrics_port, "health_port": health_port})
            await asyncio.to_thread(_write_atomically, Path(endpoints.ready_file), text)

    announcer = asyncio.create_task(announce())
    try:
        await kopf.operator(
            clusterwide=True,
            standalone=settings.peering.standalone,
            peering_name=settings.peering.name,
            priority=settings.peering.priority,
            liveness_endpoint=f"http://{endpoints.bind}:{health_port}/healthz",
            memo=kopf.Memo(runtime=rt),
            ready_flag=ready,
        )
    finally:
        announcer.cancel()
        server.shutdown()
        await api.close()


def run(settings: OperatorSettings) -> None:
    kopf.configure(
        verbose=False,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="k8s" if settings.log_format == "json" else None,
    )
    # Kopf logs every handler's success at INFO; livemig's own log lines say what happened.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    asyncio.run(serve(settings))


def _write_atomically(path: Path, text: str) -> None:
    """Write then rename: whoever polls for the file never reads it half-written."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
