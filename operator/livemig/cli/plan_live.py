"""`livemig plan --kubeconfig PATH --policy NAME`: the plan the operator would make now, from the live cluster.

The same code path as one operator cycle (`livemig.controller.cycle.gather` and `livemig.core.evaluation.evaluate`),
fed by one LIST per kind instead of the operator's watch-fed indexes, with the claims of other policies read from
their running migrations, and the hysteresis memory read from the policy's status.  Creates nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from livemig.adapters.kube import KubeWriter, load_api_client
from livemig.adapters.prometheus import PrometheusClients
from livemig.cli.plan import hot_nodes_arg, render
from livemig.controller.cycle import gather, read_policy, view_from_lists
from livemig.controller.executor import running_claims
from livemig.controller.status import remembered_hot_nodes
from livemig.core.errors import SpecError
from livemig.core.evaluation import Evaluation, evaluate
from livemig.core.inventory import parse_time
from livemig.core.policy import load_policy
from livemig.core.queries import due_for_evacuation

DEFAULT_BANDWIDTH_BPS = 10e9 / 8


def run_live(args: argparse.Namespace) -> int:
    if not Path(args.kubeconfig).is_file():
        raise SpecError("--kubeconfig", f"no such file: {args.kubeconfig}")
    evaluation, bandwidth = asyncio.run(_evaluate(args))
    if args.json:
        out: dict[str, Any] = {
            "bandwidth": bandwidth,
            "result": str(evaluation.result),
            "message": evaluation.message,
            "candidates": evaluation.candidates,
            "warnings": list(evaluation.warnings),
            "degraded": list(evaluation.degraded),
            "conservative": evaluation.conservative,
            "plan": evaluation.plan.to_dict() if evaluation.plan is not None else None,
        }
        json.dump(out, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(f"evaluation: {evaluation.result}: {evaluation.message} ({evaluation.candidates} VMIs in scope)")
    for warning in evaluation.warnings:
        print(f"  warning: {warning}")
    for problem in evaluation.degraded:
        print(f"  metrics: {problem}")
    if evaluation.plan is not None:
        sys.stdout.write(render(evaluation.plan))
    return 0


async def _evaluate(args: argparse.Namespace) -> tuple[Evaluation, dict[str, dict[str, Any]]]:
    try:
        api = await load_api_client(args.kubeconfig)
    except Exception as exc:
        raise SpecError("--kubeconfig", f"cannot load it: {exc}") from None
    try:
        try:
            lists = await KubeWriter(api).list_all()
        except Exception as exc:
            raise SpecError("--kubeconfig", f"cannot read the cluster at {api.configuration.host}: {exc}") from None
    finally:
        await api.close()
    view = view_from_lists(lists)
    body = view.policies.get(args.policy)
    if body is not None:
        policy = read_policy(body)
        status = body.get("status") or {}
    elif await asyncio.to_thread(Path(args.policy).is_file):
        policy, status = load_policy(args.policy), {}
    else:
        raise SpecError("--policy", f"no livemig MigrationPolicy {args.policy!r} in the cluster, and no such file")
    now = time.time()
    nodes = status.get("nodes") or []
    gathered = await gather(PrometheusClients(args.prometheus_url), policy, view, now, DEFAULT_BANDWIDTH_BPS)
    unhealthy: frozenset[str] = frozenset()
    if policy.evacuation is not None:
        since = {n["name"]: t for n in nodes if n.get("state") == "Unhealthy" and (t := parse_time(n.get("since")))}
        since.update(
            {k: now for k, v in gathered.health.items() if policy.evacuation.is_unhealthy(v) and k not in since}
        )
        unhealthy = due_for_evacuation(since, policy.evacuation, now)
    inventory = gathered.inventory
    bandwidth = {
        node.name: {"bps": node.link_bandwidth_bps, "source": inventory.bandwidth_source.get(node.name, "default")}
        for node in inventory.snapshot.nodes
    }
    claims = running_claims(view)
    hot = hot_nodes_arg(args.hot_nodes)
    previously_hot = remembered_hot_nodes(status) if hot is None else hot
    evaluation = evaluate(
        policy, inventory, gathered.metrics, claims, unhealthy_nodes=unhealthy, previously_hot=previously_hot
    )
    return evaluation, bandwidth
