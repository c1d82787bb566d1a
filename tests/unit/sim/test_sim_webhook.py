"""Admission review plumbing, webhook registrations, the serving certificate and the Prometheus configuration."""

from __future__ import annotations

import base64
import json
import ssl

from cryptography import x509

from livemig.devcluster.prometheus import scrape_config
from livemig.sim import rules
from livemig.sim.webhook import (
    MUTATE_PATH,
    VALIDATE_PATH,
    _review_response,
    make_serving_cert,
    ssl_context,
    webhook_configurations,
)


def test_denial_review_carries_kubevirts_message_field_and_code() -> None:
    denial = rules.Denial("vmiName is missing", field="spec.vmiName", code=422, cause_type="FieldValueRequired")
    response = _review_response("u1", denial)["response"]
    assert response["uid"] == "u1"
    assert response["allowed"] is False
    assert response["status"]["message"] == "vmiName is missing"
    assert response["status"]["code"] == 422
    assert response["status"]["reason"] == "Invalid"
    assert response["status"]["details"]["causes"] == [
        {"type": "FieldValueRequired", "message": "vmiName is missing", "field": "spec.vmiName"}
    ]


def test_state_refusal_is_a_400_with_only_the_text_as_kubevirts_admission_error() -> None:
    response = _review_response("u1", rules.Denial("Cannot migrate VMI in finalized state."))["response"]
    assert response["status"] == {
        "status": "Failure",
        "message": "Cannot migrate VMI in finalized state.",
        "code": 400,
    }


def test_policy_denial_lists_every_negative_field() -> None:
    denial = rules.admit_migration_policy({"spec": {"completionTimeoutPerGiB": -1, "bandwidthPerMigration": "-1"}})
    causes = _review_response("u", denial)["response"]["status"]["details"]["causes"]
    assert [(c["field"], c["message"]) for c in causes] == [
        ("spec.completionTimeoutPerGiB", "must not be negative"),
        ("spec.bandwidthPerMigration", "must not be negative"),
    ]


def test_mutation_review_is_a_base64_json_patch() -> None:
    patch = rules.mutate_migration_create({"metadata": {}, "spec": {"vmiName": "vm"}})
    response = _review_response("u2", None, patch)["response"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == patch


def test_registrations_point_at_loopback_with_the_ca_and_only_our_namespaces() -> None:
    cert = make_serving_cert()
    mutating, validating = webhook_configurations("livemig-sim-x", 8443, cert.ca_pem, ["a", "b"])
    (m,) = mutating["webhooks"]
    create, update, policy = validating["webhooks"]
    # KubeVirt's MigrationPolicy admitter, for the cluster-scoped policies (Ignore: see webhook_configurations).
    assert policy["name"] == "migration-policy-validator.migrations.kubevirt.io"
    assert policy["rules"][0]["apiGroups"] == ["migrations.kubevirt.io"]
    assert policy["rules"][0]["resources"] == ["migrationpolicies"]
    assert policy["failurePolicy"] == "Ignore"
    # KubeVirt's own webhook names, so the API server words denials as it does for KubeVirt.
    assert m["name"] == "migrations-mutator.kubevirt.io"
    assert (create["name"], update["name"]) == (
        "migration-create-validator.kubevirt.io",
        "migration-update-validator.kubevirt.io",
    )
    assert m["clientConfig"]["url"] == f"https://127.0.0.1:8443{MUTATE_PATH}"
    assert m["rules"][0]["operations"] == ["CREATE"]
    assert create["rules"][0]["operations"] == ["CREATE"]
    assert update["rules"][0]["operations"] == ["UPDATE"]
    for v in (create, update):
        assert v["clientConfig"]["url"] == f"https://127.0.0.1:8443{VALIDATE_PATH}"
        assert base64.b64decode(v["clientConfig"]["caBundle"]) == cert.ca_pem
        assert v["namespaceSelector"]["matchExpressions"][0]["values"] == ["a", "b"]
        assert v["failurePolicy"] == "Fail"
        assert v["sideEffects"] == "None"


def test_serving_certificate_is_signed_by_the_ca_for_127_0_0_1() -> None:
    cert = make_serving_cert()
    leaf = x509.load_pem_x509_certificate(cert.cert_pem)
    ca = x509.load_pem_x509_certificate(cert.ca_pem)
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert isinstance(ssl_context(cert), ssl.SSLContext)


def test_prometheus_scrape_config_honors_labels() -> None:
    doc = scrape_config(["127.0.0.1:9479"], interval="5s")
    (job,) = doc["scrape_configs"]
    assert job["honor_labels"] is True
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9479"]}]
    assert job["scrape_interval"] == job["scrape_timeout"] == "5s"
