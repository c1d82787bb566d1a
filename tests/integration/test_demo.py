"""The README's demo command works: the operator drains the node with zero failed migrations (issue 10, item 11).

Checked against the simulator's outcome log as the demo prints it, and against what the demo says was left.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from livemig.core.snapshot_parser import load_snapshot

pytestmark = pytest.mark.integration

SMALL = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "small.yaml"


def test_demo_shows_the_operator_draining_the_node(tmp_path: Path) -> None:
    timeline = tmp_path / "timeline.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "livemig",
            "demo",
            "--node",
            "node-03",
            "--time-scale",
            "120",
            "--timeline",
            str(timeline),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "node-03 drained" in result.stderr
    rows = re.findall(
        r"^(\S+/\S+)\s+(\S+)\s+(node-\d+)\s+(node-\d+)\s+(\S+)\s+(pre-copy|post-copy|auto-converge)\s+(\S+)",
        result.stdout,
        re.MULTILINE,
    )
    drained = [r for r in rows if r[1] == "maintenance-drain"]
    assert drained, result.stdout
    nodes = {node.name for node in load_snapshot(SMALL).nodes}
    # Every migration of the drain left node-03 for the node the operator's plan chose (a real node of the
    # scenario, not node-03), carried out by the operator, and completed.
    for vmi, _policy, source, target, planned, _technique, outcome in drained:
        assert source == "node-03"
        assert target == planned, f"{vmi} went to {target}, the plan chose {planned}"
        assert target in nodes - {"node-03"}, target
        assert outcome in ("completed", "switched-to-post-copy"), outcome
    # And every other migration (the balancing after the drain) too went where its plan said.
    for vmi, _policy, source, target, planned, _technique, _outcome in rows:
        assert target == planned, f"{vmi} went to {target}, the plan chose {planned}"
        assert target in nodes - {source}, (vmi, source, target)
    assert re.search(r"^failed migrations: 0$", result.stderr, re.MULTILINE), result.stderr[-2000:]
    assert re.search(rf"succeeded: {len(rows)}\b", result.stdout), "Prometheus did not count the migrations"
    # The operator's own metrics agree with the simulator on the drain.
    counted = re.search(
        r'livemig_migrations_total\{outcome="completed",policy="maintenance-drain".*\} (\d+)', result.stdout
    )
    assert counted is not None
    assert int(counted.group(1)) == len(drained)
    left = re.search(r"VMIs left on node-03: (\d+) \[(.*)\]", result.stderr)
    assert left is not None
    assert left.group(2) == "'batch/batch-0003'", "only the VMI that cannot live-migrate stays"
    assert timeline.stat().st_size > 10_000
