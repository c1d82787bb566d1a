"""What the executor counts as running when its view is older than what it has recorded (issue 12's counters)."""

from __future__ import annotations

from typing import Any, cast

from livemig.controller.executor import ClusterView, Executor
from livemig.controller.runtime import Runtime
from livemig.core.kubevirt import KubevirtMigrationConfig


def _view(phase: str) -> ClusterView:
    vmi = {"metadata": {"namespace": "prod", "name": "vm-1"}, "status": {"nodeName": "node-01"}}
    vmim = {
        "metadata": {
            "namespace": "prod",
            "name": "lm-vm-1-abc",
            "labels": {"app.kubernetes.io/managed-by": "livemig", "livemig.io/policy": "drain"},
        },
        "spec": {"vmiName": "vm-1"},
        "status": {"phase": phase},
    }
    return ClusterView(
        vmis={"prod/vm-1": vmi},
        namespaces={},
        nodes={},
        vmims=(vmim,),
        kubevirt=None,
        kubevirt_config=KubevirtMigrationConfig(),
        policies={},
    )


def _executor() -> Executor:
    return Executor(cast(Runtime, cast(Any, None)))  # running() reads only the view and the executor's memory


def test_a_migration_in_flight_in_the_view_is_running() -> None:
    running = _executor().running(_view("Running"))
    assert [(r.key, r.policy) for r in running] == [("prod/vm-1", "drain")]


def test_a_migration_recorded_final_is_not_running_even_if_an_older_view_shows_it_running() -> None:
    """A cycle holds the view it started with across its awaits; a migration that ends meanwhile is recorded (and
    counted finished) and must not also count as running, or `migrationsStarted` goes one over."""
    executor = _executor()
    executor.recorded.add("lm-vm-1-abc")
    assert executor.running(_view("Running")) == []
    assert executor.running(_view("Succeeded")) == []
