"""The chart's RBAC is enough for the operator, and no more (issue 11, item 3, first part).

The chart is installed with the real `helm` into the local control plane; a token is issued for the chart's
ServiceAccount (TokenRequest); `livemig operator run` runs out of cluster with a kubeconfig holding only that token,
against the simulator, and carries out a maintenance drain and a load-balancing policy.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.controller.process import OperatorProcess
from livemig.devcluster.binaries import repository_root
from support.stack_helpers import apply, node, policy_status, scenario, vmi, wait_until

pytestmark = pytest.mark.integration

NAMESPACE = "livemig-system"
INSTALL_DOC = Path(__file__).resolve().parents[3] / "docs" / "install.md"
SA = f"system:serviceaccount:{NAMESPACE}:lm-operator"


def _table(name: str) -> list[list[str]]:
    text = INSTALL_DOC.read_text()
    body = text[text.index(f"<!-- {name}:begin -->") : text.index(f"<!-- {name}:end -->")]
    rows = [line for line in body.splitlines() if line.startswith("|")][2:]  # after the header and the rule
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def rbac_tables() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(resource, verb) pairs the operator is allowed / denied, from docs/install.md."""
    allowed = {(row[1], verb.strip()) for row in _table("rbac-allowed") for verb in row[0].split(",")}
    denied = {(row[1], row[0]) for row in _table("rbac-denied")}
    return allowed, denied


def rendered_rules(helm: Path, root: Path) -> set[tuple[str, str]]:
    """(resource, verb) pairs of the chart's operator ClusterRole, as `helm template` renders it."""
    out = subprocess.run(
        [str(helm), "template", "lm", str(root / "charts" / "livemig")], capture_output=True, text=True, check=True
    ).stdout
    role = next(
        d
        for d in yaml.safe_load_all(out)
        if d and d["kind"] == "ClusterRole" and d["metadata"]["name"] == "lm-operator"
    )
    pairs = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                base, _, sub = resource.partition("/")
                name = f"{base}.{group}" if group else base
                name = f"{name}/{sub}" if sub else name
                pairs |= {(name, verb) for verb in rule["verbs"]}
    # events are granted in both the core and the events.k8s.io group; the table names them once
    return {("events", v) if r == "events.events.k8s.io" else (r, v) for r, v in pairs}


def test_the_operator_works_with_the_charts_service_account_alone(start_stack: Any, tmp_path: Path) -> None:
    nodes = [node(f"node-0{i}", cpu=16, memory="64Gi") for i in range(1, 5)]
    vmis = [vmi("prod", f"busy-{i:02d}", "node-01", vcpus=2, cpu=1.75) for i in range(8)]
    vmis += [vmi("prod", f"idle-{i:02d}", "node-04", vcpus=1, cpu=0.2) for i in range(3)]
    stack = start_stack(scenario(nodes, vmis), operator=False)
    cluster = stack.cluster
    assert cluster is not None
    assert stack.prometheus is not None
    assert stack.sim is not None
    root = repository_root()
    assert root is not None
    # KubeVirt >= 1.5 ships this ClusterRole (pkg/virt-operator/resource/generate/rbac/cluster.go, kubevirt.md §7.2);
    # the chart binds it. Created here as KubeVirt would, so the binding is checked against a real role.
    apply(
        stack,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kubevirt.io:migrate"},
            "rules": [
                {
                    "apiGroups": ["kubevirt.io"],
                    "resources": ["virtualmachineinstancemigrations"],
                    "verbs": ["get", "delete", "create", "update", "patch", "list", "watch", "deletecollection"],
                },
                {
                    "apiGroups": ["subresources.kubevirt.io"],
                    "resources": ["virtualmachines/migrate"],
                    "verbs": ["update"],
                },
            ],
        },
    )
    helm = subprocess.run(
        [
            str(cluster.bin_dir / "helm"),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "install",
            "lm",
            str(root / "charts" / "livemig"),
            "-n",
            NAMESPACE,
            "--create-namespace",
            "--wait=false",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert helm.returncode == 0, helm.stderr
    token = cluster.kubectl("create", "token", "lm-operator", "-n", NAMESPACE, "--duration=1h").stdout.strip()
    kubeconfig = cluster.write_token_kubeconfig(token, tmp_path / "operator.kubeconfig", user="lm-operator")

    def can(verb: str, resource: str) -> str:
        base, _, sub = resource.partition("/")
        args = [verb, base, *([f"--subresource={sub}"] if sub else []), "-n", "prod"]
        if verb == "list" and base == "secrets":
            args = [verb, base, "-A"]
        answer = cluster.kubectl("auth", "can-i", *args, f"--as={SA}", check=False).stdout.strip()
        return answer.split()[0] if answer else answer

    allowed, denied = rbac_tables()
    assert allowed == rendered_rules(cluster.bin_dir / "helm", root), "the chart's ClusterRole is the docs' table"
    for resource, verb in sorted(allowed):
        assert can(verb, resource) == "yes", (verb, resource)
    for resource, verb in sorted(denied):
        assert can(verb, resource) == "no", (verb, resource)

    operator = OperatorProcess(kubeconfig, work_dir=tmp_path, prometheus_url=stack.prometheus.url, name="sa-operator")
    operator.start()
    try:
        apply(
            stack,
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "drain"},
                "spec": {
                    "purpose": "Maintenance",
                    "maintenance": {"nodeNames": ["node-04"]},
                    "interval": "5s",
                    "limits": {"cooldown": "0s"},
                },
            },
        )
        apply(
            stack,
            {
                "apiVersion": "livemig.io/v1alpha1",
                "kind": "MigrationPolicy",
                "metadata": {"name": "balance"},
                "spec": {
                    "purpose": "LoadBalancing",
                    "interval": "5s",
                    "loadBalancing": {"cpu": {"high": 0.8, "target": 0.6}, "averagingWindow": "20s"},
                    "limits": {"cooldown": "1h"},
                },
            },
        )
        wait_until(
            lambda: any(
                n.get("name") == "node-04" and n.get("state") == "Drained"
                for n in policy_status(stack, "drain").get("nodes") or []
            ),
            timeout_s=120,
            what="node-04 drained by the ServiceAccount's operator",
        )
        wait_until(
            lambda: any(r["source"] == "node-01" for r in stack.sim.outcomes()),
            timeout_s=120,
            what="a VMI moved off the hot node-01",
        )
    finally:
        assert operator.stop(timeout_s=15) == 0
    records = stack.sim.outcomes()
    assert all(r["result"] == "Succeeded" for r in records), records
    log = operator.log.read_text()
    # A denied request shows as HTTP 403 / Forbidden in Kopf's and livemig's log lines (a port like 40335 is not one).
    assert not re.search(r"(?<![\d.:])403(?!\d)", log), "a request the chart's RBAC does not allow"
    assert "Forbidden" not in log
