"""`livemig sim check` and the argument errors of `livemig sim run` (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from livemig.cli import main

SMALL = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "small.yaml"


def test_check_summarizes_a_valid_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "check", "--scenario", str(SMALL)]) == 0
    assert "8 nodes, 60 VMIs in 3 namespaces, 1 KubeVirt MigrationPolicies" in capsys.readouterr().out


def test_check_names_every_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: livemig.io/v1alpha1\nkind: Scenario\nnodes: [{name: a, cpu: '4', memory: 8Gi}]\nvmis: []\n"
        "faults: [{type: nodeFailure, node: b}]\nsimulation: {timeScale: -1}\n"
    )
    assert main(["sim", "check", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "simulation.timeScale: must be a positive number" in err
    assert "faults[0].node: no node named 'b' in the scenario" in err


def test_run_refuses_a_bad_time_scale_and_a_missing_kubeconfig(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sim", "run", "--scenario", str(SMALL), "--kubeconfig", str(tmp_path / "none")]
    assert main([*args, "--time-scale", "0"]) == 2
    assert "--time-scale: must be positive" in capsys.readouterr().err
    assert main(args) == 2
    assert "--kubeconfig: no such file" in capsys.readouterr().err
