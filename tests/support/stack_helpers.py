"""Helpers for tests that run the local stack (scenario builders, API reads, waiting for conditions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from livemig.cli.stack import LocalStack


def wait_until(predicate: Callable[[], Any], *, timeout_s: float, what: str, interval_s: float = 0.5) -> Any:
    """Poll `predicate` (an API read) until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)  # a poll of the API server, bounded by the deadline


def scenario(
    nodes: list[dict[str, Any]],
    vmis: list[dict[str, Any]],
    *,
    namespaces: list[dict[str, Any]] | None = None,
    kubevirt: dict[str, Any] | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "Scenario",
        "metadata": {"name": "operator-test"},
        "kubevirt": kubevirt or {},
        "namespaces": namespaces
        or [{"name": "prod", "labels": {"tier": "prod"}}, {"name": "infra", "labels": {"tier": "infra"}}],
        "nodes": nodes,
        "vmis": vmis,
        "simulation": {"timeScale": 60, "seed": 7, "step": "1s"},
    }
    if version is not None:  # the KubeVirt release the simulator mimics (scenario key kubevirt.version)
        doc["kubevirt"] = {**doc["kubevirt"], "version": version}
    return doc


def node(name: str, *, cpu: int = 32, memory: str = "128Gi", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cpu": str(cpu),
        "memory": memory,
        "labels": {"kubernetes.io/hostname": name},
        "linkBandwidth": "10Gbit",
        **extra,
    }


def vmi(
    namespace: str,
    name: str,
    node_name: str,
    *,
    vcpus: int = 2,
    memory: str = "2Gi",
    cpu: float = 0.5,
    dirty: str = "5Mi",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "node": node_name,
        "vcpus": vcpus,
        "memory": memory,
        "labels": {"app": name.rsplit("-", 1)[0]},
        "usage": {"cpu": cpu, "memory": "1Gi", "dirtyRate": dirty},
        **extra,
    }


def apply(stack: LocalStack, manifest: dict[str, Any]) -> None:
    assert stack.cluster is not None
    stack.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))


def policy_status(stack: LocalStack, name: str) -> dict[str, Any]:
    return dict(stack.kubectl_json("get", "migrationpolicies.livemig.io", name).get("status") or {})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def vmims(stack: LocalStack) -> list[dict[str, Any]]:
    return list(stack.kubectl_json("get", "vmim", "-A")["items"])


def vmis_on(stack: LocalStack, node_name: str) -> list[str]:
    items = stack.kubectl_json("get", "vmis", "-A")["items"]
    return sorted(
        f"{v['metadata']['namespace']}/{v['metadata']['name']}"
        for v in items
        if (v.get("status") or {}).get("nodeName") == node_name
    )


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at once (an end at t closes before a start at t)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best
