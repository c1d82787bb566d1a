"""The operator against the real API server, a real Prometheus and the simulator: one fresh local stack per test
(`livemig.cli.stack.LocalStack`, the same composition `livemig devcluster up --scenario --operator` starts).

Results are read from the simulator's outcome log and the API server, never from the operator's own word.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.cli.stack import LocalStack
from livemig.devcluster import BinariesMissingError
from livemig.devcluster.prometheus import PrometheusError, prometheus_binary


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    """Start a LocalStack on a scenario dict; stopped after the test (logs stay in tmp_path)."""
    try:
        prometheus_binary()
    except PrometheusError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    started: list[LocalStack] = []

    def start(doc: dict[str, Any], *, operator: bool = True, time_scale: float = 60.0) -> LocalStack:
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump(doc))
        stack = LocalStack(tmp_path / "stack", path, time_scale=time_scale, operator=operator)
        started.append(stack)
        try:
            stack.start()
        except BinariesMissingError as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"control-plane binaries unavailable: {exc}")
        stack.wait_vmis_running(len(doc["vmis"]))
        return stack

    yield start
    for stack in started:
        stack.stop()
