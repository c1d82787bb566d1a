"""KubeVirt's admission webhooks for VirtualMachineInstanceMigration, served by the simulator over TLS on loopback.

- mutating (CREATE): adds label `kubevirt.io/vmi-name` and finalizer `kubevirt.io/migrationJobFinalize`, as
  virt-api's MigrationCreateMutator does;
- validating (CREATE, UPDATE): KubeVirt's MigrationCreateAdmitter / MigrationUpdateAdmitter (`rules.admit_*`),
  and its MigrationPolicyAdmitter for `migrations.kubevirt.io` MigrationPolicies (negative values refused).

Both are registered with the API server (Mutating/ValidatingWebhookConfiguration, `url: https://127.0.0.1:PORT/...`,
`caBundle` = the simulator's throw-away CA), limited to the scenario's namespaces, and removed on shutdown.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from livemig.adapters.tls import CertificateAuthority
from livemig.core.kubevirt import DEFAULT_KUBEVIRT_VERSION, KubevirtVersion
from livemig.sim import rules

log = logging.getLogger(__name__)

VALIDATE_PATH = "/validate-virtualmachineinstancemigrations"
MUTATE_PATH = "/mutate-virtualmachineinstancemigrations"
VALIDATE_POLICY_PATH = "/validate-migrationpolicies"


@dataclass(frozen=True, slots=True)
class ServingCert:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_serving_cert(host: str = "127.0.0.1") -> ServingCert:
    """A throw-away CA and a serving certificate for `host` (IP SAN), valid for a day."""
    ca = CertificateAuthority("livemig-sim-webhook-ca", validity=datetime.timedelta(days=1))
    issued = ca.issue(host, ip_addresses=(host,), server=True)
    return ServingCert(ca_pem=ca.cert_pem, cert_pem=issued.cert_pem, key_pem=issued.key_pem)


def ssl_context(cert: ServingCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(cert.cert_pem)
        key_file.write_bytes(cert.key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


# Lookups the validating webhook needs, answered live from the API server (as KubeVirt's admitter does).
GetVmi = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]
ListVmimsForVmi = Callable[[str, str], Awaitable[Sequence[Mapping[str, Any]]]]


def _review_response(
    uid: str, denial: rules.Denial | None, patch: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": denial is None}
    if denial is not None:
        # As KubeVirt's webhookutils: 422 Invalid with the causes, or 400 with only the error's text.
        status: dict[str, Any] = {"status": "Failure", "message": denial.message, "code": denial.code}
        if denial.code == rules.INVALID:
            status["reason"] = "Invalid"
            message = denial.message.split(", ")[0] if denial.more_fields else denial.message
            causes = [{"type": denial.cause_type, "message": message} for _ in denial.fields or ("",)]
            for cause, name in zip(causes, denial.fields, strict=False):
                cause["field"] = name
            status["details"] = {"causes": causes}
        response["status"] = status
    if patch is not None:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


class AdmissionHandlers:
    def __init__(
        self,
        get_vmi: GetVmi,
        list_vmims: ListVmimsForVmi,
        *,
        version: KubevirtVersion = DEFAULT_KUBEVIRT_VERSION,
        priority_queue: Callable[[], bool] = lambda: False,
        controller_users: frozenset[str] = frozenset({rules.VIRT_CONTROLLER_USER}),
    ) -> None:
        self._get_vmi = get_vmi
        self._list_vmims = list_vmims
        self._version = version
        self._priority_queue = priority_queue
        self.controller_users = controller_users
        self.denials: list[str] = []

    async def validate_policy(self, request: web.Request) -> web.Response:
        """KubeVirt's MigrationPolicyAdmitter (negative values refused)."""
        review = await request.json()
        req = review.get("request") or {}
        denial = rules.admit_migration_policy(req.get("object") or {})
        if denial is not None:
            self.denials.append(denial.message)
        return web.json_response(_review_response(req.get("uid", ""), denial))

    async def validate(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review.get("request") or {}
        uid = req.get("uid", "")
        obj = req.get("object") or {}
        denial: rules.Denial | None = None
        try:
            if req.get("operation") == "CREATE":
                namespace = req.get("namespace") or (obj.get("metadata") or {}).get("namespace", "")
                obj = {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": namespace}}
                vmi_name = (obj.get("spec") or {}).get("vmiName") or ""
                vmi = await self._get_vmi(namespace, vmi_name) if vmi_name else None
                others = await self._list_vmims(namespace, vmi_name) if vmi_name else []
                username = (req.get("userInfo") or {}).get("username", "")
                denial = rules.admit_migration_create(
                    obj,
                    vmi,
                    others,
                    username,
                    priority_queue=self._priority_queue(),
                    controller_users=self.controller_users,
                )
            elif req.get("operation") == "UPDATE":
                denial = rules.admit_migration_update(obj, req.get("oldObject") or {})
        except Exception as exc:  # an error is an answer too: KubeVirt returns it as the denial
            log.exception("admission failed")
            denial = rules.Denial(str(exc), code=500)
        if denial is not None:
            self.denials.append(denial.message)
        return web.json_response(_review_response(uid, denial))

    async def mutate(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review.get("request") or {}
        patch = (
            rules.mutate_migration_create(
                req.get("object") or {},
                added_node_selector_supported=self._version.has_added_node_selector,
                priority_supported=self._version.has_migration_priority,
            )
            if req.get("operation") == "CREATE"
            else []
        )
        return web.json_response(_review_response(req.get("uid", ""), None, patch))


def webhook_configurations(
    name: str, port: int, ca_pem: bytes, namespaces: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(MutatingWebhookConfiguration, ValidatingWebhookConfiguration) manifests for the simulator's webhooks."""
    bundle = base64.b64encode(ca_pem).decode()
    common: dict[str, Any] = {
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 10,
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}]
        },
    }
    rule = {
        "apiGroups": ["kubevirt.io"],
        "apiVersions": ["v1"],
        "resources": ["virtualmachineinstancemigrations"],
        "scope": "Namespaced",
    }
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "livemig-sim"}},
        "webhooks": [
            {
                "name": "migrations-mutator.kubevirt.io",  # KubeVirt's own webhook names: denials read alike
                "clientConfig": {"url": f"https://127.0.0.1:{port}{MUTATE_PATH}", "caBundle": bundle},
                "rules": [{**rule, "operations": ["CREATE"]}],
                "reinvocationPolicy": "Never",
                **common,
            }
        ],
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "livemig-sim"}},
        "webhooks": [
            {
                "name": f"migration-{operation.lower()}-validator.kubevirt.io",
                "clientConfig": {"url": f"https://127.0.0.1:{port}{VALIDATE_PATH}", "caBundle": bundle},
                "rules": [{**rule, "operations": [operation]}],
                **common,
            }
            for operation in ("CREATE", "UPDATE")
        ]
        + [
            {
                # KubeVirt's migration-policy-validator.  MigrationPolicies are cluster-scoped, so no namespace
                # limits it: `Ignore` (KubeVirt: Fail) keeps a simulator that died without unregistering from
                # blocking every MigrationPolicy on a shared API server.
                "name": "migration-policy-validator.migrations.kubevirt.io",
                "clientConfig": {"url": f"https://127.0.0.1:{port}{VALIDATE_POLICY_PATH}", "caBundle": bundle},
                "rules": [
                    {
                        "apiGroups": ["migrations.kubevirt.io"],
                        "apiVersions": ["v1alpha1"],
                        "resources": ["migrationpolicies"],
                        "scope": "Cluster",
                        "operations": ["CREATE", "UPDATE"],
                    }
                ],
                **{**common, "failurePolicy": "Ignore"},
            }
        ],
    }
    return mutating, validating
