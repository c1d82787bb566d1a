"""Exactly-once against an index that lags the API server (issue 12, item 2).

Across an API server restart each of Kopf's watches resumes on its own, so for a moment the VMIM index can say a
migration succeeded while the VMI index still has the VMI on its old node; a cycle in that moment plans the move
again.  The executor reads the VMI fresh before it makes anything, so such a move is not started.  This runs the
executor's own release path (`submit`, `pump`) with the real writer against the real API server and the simulator.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import pytest

from livemig.adapters.kube import KubeWriter, load_api_client
from livemig.adapters.prometheus import PrometheusClients
from livemig.controller import executor as executor_module
from livemig.controller.executor import ClusterView
from livemig.controller.runtime import Runtime
from livemig.controller.settings import OperatorSettings
from livemig.core.actuation import MOVE_LABEL, MoveRequest
from livemig.core.kubevirt import KubevirtMigrationConfig
from livemig.core.release import PolicyLimits
from livemig.core.vocabulary import Purpose, Technique
from support.stack_helpers import node, scenario, vmi, vmims

pytestmark = pytest.mark.integration


async def _pump(kubeconfig: str, view: ClusterView, request: MoveRequest) -> list[str]:
    api = await load_api_client(kubeconfig)
    try:
        runtime = Runtime(OperatorSettings(), KubeWriter(api), cast(PrometheusClients, None))  # pump reads no metrics
        executor = runtime.executor
        executor.submit("drain", Purpose.MAINTENANCE, PolicyLimits(2, 2), [request])
        return await executor.pump(view)
    finally:
        await api.close()


@pytest.mark.parametrize("indexed_on", ["node-01", "node-02"])
def test_a_move_planned_from_a_stale_index_is_not_started(
    start_stack: Any, indexed_on: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The VMI is on node-02; a view that still has it on node-01 (where the move was planned from) starts nothing,
    a view that agrees with the API server starts the move."""
    stack = start_stack(
        scenario([node("node-01"), node("node-02"), node("node-03")], [vmi("prod", "vm-000", "node-02")]),
        operator=False,
    )
    assert stack.cluster is not None
    live = stack.kubectl_json("get", "vmi", "-n", "prod", "vm-000")
    indexed = copy.deepcopy(live)
    indexed["status"]["nodeName"] = indexed_on
    view = ClusterView(
        vmis={"prod/vm-000": indexed},
        namespaces={},
        nodes={},
        vmims=(),
        kubevirt=None,
        kubevirt_config=KubevirtMigrationConfig(),
        policies={},
    )
    request = MoveRequest(
        policy="drain",
        namespace="prod",
        vmi="vm-000",
        source=indexed_on,
        target="node-03",
        technique=Technique.PRE_COPY,
        reason="test",
        technique_reason="test",
        predicted_time_s=1.0,
        predicted_downtime_s=0.1,
        plan_id="p1",
    )
    # Kopf posts Events only inside its own context; outside it the executor's Events are collected here.
    events: list[tuple[str, str]] = []

    def collect(ref: Any, kind: str, reason: str, message: str) -> None:
        if ref is not None:
            events.append((reason, f"{ref['metadata'].get('namespace')}/{ref['metadata'].get('name')}"))

    monkeypatch.setattr(executor_module, "_event", collect)
    started = asyncio.run(_pump(str(stack.cluster.kubeconfig), view, request))
    labels = stack.kubectl_json("get", "vmi", "-n", "prod", "vm-000")["metadata"].get("labels") or {}
    if indexed_on == "node-02":
        assert len(started) == 1
        assert [v["metadata"]["name"] for v in vmims(stack)] == started
        assert ("LivemigMigrating", "prod/vm-000") in events
        assert labels.get(MOVE_LABEL) == started[0]
    else:
        assert started == []
        assert vmims(stack) == []
        assert events == []
        assert MOVE_LABEL not in labels, "nothing made, not even the move label"
