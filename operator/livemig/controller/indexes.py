"""What the operator keeps of each watched object: the fields a cycle reads, as plain dicts (small, so 2,000 VMIs
stay cheap in memory).  Kopf keeps the indexes fed from its watches; a cycle never LISTs."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

LIVEMIG_PREFIX = "livemig.io/"


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _copy(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def _metadata(body: Mapping[str, Any], *, annotations: bool = True) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {"name": meta.get("name"), "labels": dict(meta.get("labels") or {})}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    if meta.get("uid"):
        out["uid"] = meta["uid"]
    if meta.get("deletionTimestamp"):
        out["deletionTimestamp"] = meta["deletionTimestamp"]
    if meta.get("generation") is not None:
        out["generation"] = meta["generation"]
    if annotations:
        out["annotations"] = {
            k: v for k, v in (meta.get("annotations") or {}).items() if str(k).startswith(LIVEMIG_PREFIX)
        }
    return out


def _pick(body: Mapping[str, Any], section: str, keys: Iterable[str]) -> dict[str, Any]:
    part = body.get(section) or {}
    if not isinstance(part, Mapping):
        return {}
    return {k: _copy(part[k]) for k in keys if k in part}


def trim_vmi(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    domain = spec.get("domain") or {} if isinstance(spec, Mapping) else {}
    status = _pick(body, "status", ("phase", "nodeName", "evacuationNodeName"))
    conditions = _get(body, "status", "conditions") or []
    status["conditions"] = [
        {k: c.get(k) for k in ("type", "status", "reason", "message")}
        for c in conditions
        if isinstance(c, Mapping) and c.get("type") in ("LiveMigratable", "Ready")
    ]
    trimmed_spec = _pick(body, "spec", ("nodeSelector", "affinity", "tolerations", "evictionStrategy"))
    trimmed_spec["domain"] = {k: _copy(domain[k]) for k in ("cpu", "memory", "resources") if k in domain}
    return {"metadata": _metadata(body), "spec": trimmed_spec, "status": status}


def trim_vmim(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "metadata": _metadata(body),
        "spec": _pick(body, "spec", ("vmiName", "addedNodeSelector")),
        "status": _pick(body, "status", ("phase", "migrationState")),
    }


def trim_node(body: Mapping[str, Any]) -> dict[str, Any]:
    conditions = _get(body, "status", "conditions") or []
    return {
        "metadata": _metadata(body),
        "spec": _pick(body, "spec", ("unschedulable", "taints")),
        "status": {
            **_pick(body, "status", ("allocatable", "capacity")),
            "conditions": [
                {k: c.get(k) for k in ("type", "status")}
                for c in conditions
                if isinstance(c, Mapping) and c.get("type") == "Ready"
            ],
        },
    }


def trim_namespace(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"metadata": _metadata(body, annotations=False)}


def trim_kubevirt(body: Mapping[str, Any]) -> dict[str, Any]:
    configuration = _get(body, "spec", "configuration") or {}
    return {
        "metadata": _metadata(body, annotations=False),
        "spec": {
            "configuration": {
                k: _copy(configuration[k])
                for k in ("migrations", "evictionStrategy", "developerConfiguration")
                if k in configuration
            }
        },
        "status": _pick(body, "status", ("observedKubeVirtVersion", "phase")),
    }


def trim_policy(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
            "labels": dict(meta.get("labels") or {}),
            **({"deletionTimestamp": meta["deletionTimestamp"]} if meta.get("deletionTimestamp") else {}),
        },
        "spec": _copy(dict(body.get("spec") or {})),
        "status": _copy(dict(body.get("status") or {})),
    }


def values(index: Mapping[Any, Iterable[dict[str, Any]]] | None) -> list[dict[str, Any]]:
    """Every object an index holds."""
    if index is None:
        return []
    return [obj for store in index.values() for obj in store]
