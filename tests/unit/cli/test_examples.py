"""The shipped examples do something: every policy in examples/policies/ names, in its header comment, a
`livemig plan` command on a shipped scenario that gives at least one move, and so does the README's example."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from livemig.cli import main
from livemig.sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[3]
POLICIES = sorted((REPO / "examples" / "policies").glob("*.yaml"))
SCENARIOS = REPO / "examples" / "scenarios"


def header_command(path: Path) -> list[str]:
    """The `# Try: livemig plan ...` command of a policy's header comment (continued by a trailing backslash)."""
    header: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    text = "\n".join(header)
    found = re.search(r"^Try: (livemig plan (?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert found, f"{path.name}: no `# Try: livemig plan ...` line in the header comment"
    return shlex.split(found.group(1).replace("\\\n", " "))


def readme_commands() -> list[list[str]]:
    commands = []
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith(".venv/bin/livemig plan --snapshot"):
            commands.append(shlex.split(line.split("#")[0])[1:])  # without .venv/bin/livemig
    return commands


def planned(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    rc = main([*argv, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    plan: dict[str, object] = json.loads(out.out)
    return plan


def test_every_policy_is_here() -> None:
    assert len(POLICIES) >= 6


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.stem)
def test_policy_header_command_gives_moves(
    policy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = header_command(policy)
    assert argv[:2] == ["livemig", "plan"]
    args = argv[2:]
    assert args[args.index("--policy") + 1] == f"examples/policies/{policy.name}"
    snapshot = REPO / args[args.index("--snapshot") + 1]
    assert snapshot.parent == SCENARIOS, f"{snapshot} is not in examples/scenarios/"
    assert snapshot.is_file(), f"{snapshot} does not exist"
    monkeypatch.chdir(REPO)
    plan = planned(["plan", *args], capsys)
    assert plan["status"] == "Ready", plan["reason"]
    assert isinstance(plan["moves"], list)
    assert len(plan["moves"]) >= 1


def test_readme_plan_example_prints_moves(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    commands = readme_commands()
    assert commands, "the README has no `livemig plan --snapshot` example"
    monkeypatch.chdir(REPO)
    for argv in commands:
        assert argv[0] == "plan"
        rc = main(argv)
        out = capsys.readouterr().out
        assert rc == 0
        assert "status Ready" in out
        assert "  why (" in out  # the moves table and their reasons were printed


def test_header_command_parser_reads_continuations(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "# What it does.\n"
        "# Try: livemig plan --policy p.yaml \\\n"
        "#        --snapshot s.yaml --cordon n1\n"
        "kind: X\n"
        "# Try: not this\n"
    )
    assert header_command(policy) == ["livemig", "plan", "--policy", "p.yaml", "--snapshot", "s.yaml", "--cordon", "n1"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_are_simulator_scenarios(scenario: Path) -> None:
    loaded = load_scenario(scenario)
    assert loaded.snapshot.nodes
    assert loaded.snapshot.vmis
