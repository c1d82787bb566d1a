"""The README's demo command works: a node of the small scenario is drained on the local stack."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_drains_the_node_with_the_planned_techniques() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "livemig", "demo", "--node", "node-03", "--time-scale", "120"],
        capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    planned = re.findall(r"^(\S+/\S+)\s+node-03\s+(node-\d+)\s+(pre-copy|post-copy|auto-converge)\s", result.stdout,
                         re.MULTILINE)  # fmt: skip
    assert planned, result.stdout
    # Every planned move was carried out with the technique the planner chose, and completed.
    for vmi, _target, technique in planned:
        row = re.search(rf"^{re.escape(vmi)}\s+{technique}\s+{technique}\s+(\S+)", result.stdout, re.MULTILINE)
        assert row is not None, f"{vmi}: no outcome row\n{result.stdout}"
        assert row.group(1) in ("completed", "switched-to-post-copy"), row.group(0)
    assert re.search(rf"succeeded: {len(planned)}\b", result.stdout), "Prometheus did not see the migrations"
    assert re.search(r"VMIs left on node-03: (\d+) \(\1 the plan could not move\)", output), output[-2000:]
