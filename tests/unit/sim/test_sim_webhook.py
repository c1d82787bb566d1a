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


def test_denial_review_carries_kubevirts_message_and_field() -> None:
    review = _review_response("u1", rules.Denial("vmiName is missing", field="spec.vmiName"))
    response = review["response"]
    assert response["uid"] == "u1"
    assert response["allowed"] is False
    assert response["status"]["message"] == "vmiName is missing"
    assert response["status"]["details"]["causes"][0]["field"] == "spec.vmiName"


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
    create, update = validating["webhooks"]
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
