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
    with pytest.raises(SystemExit) as exc:
        main([*args, "--time-scale", "0"])
    assert exc.value.code == 2
    assert "argument --time-scale: must be greater than zero, got '0'" in capsys.readouterr().err
    assert main(args) == 2
    assert "--kubeconfig: no such file" in capsys.readouterr().err


QEMU_SCENARIO = (
    "apiVersion: livemig.io/v1alpha1\nkind: Scenario\n"
    "nodes: [{name: a, cpu: '4', memory: 8Gi}, {name: b, cpu: '4', memory: 8Gi}]\n"
    "vmis: [{namespace: lab, name: real, node: a, vcpus: 1, memory: 256Mi, backend: qemu},\n"
    "       {namespace: lab, name: simulated, node: a, vcpus: 1, memory: 1Gi}]\n"
)


def test_a_scenario_with_real_qemu_vmis_must_run_in_real_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = tmp_path / "fast.yaml"
    fast.write_text(QEMU_SCENARIO + "simulation: {timeScale: 60}\n")
    assert main(["sim", "check", "--scenario", str(fast)]) == 2
    err = capsys.readouterr().err
    assert "simulation.timeScale: must be 1, not 60: VMIs with backend: qemu (lab/real) run in real time" in err

    real_time = tmp_path / "real-time.yaml"
    real_time.write_text(QEMU_SCENARIO + "simulation: {timeScale: 1}\n")
    assert main(["sim", "check", "--scenario", str(real_time)]) == 0


def test_run_refuses_a_time_scale_override_for_real_qemu_vmis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "real.yaml"
    scenario.write_text(QEMU_SCENARIO)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    code = main(["sim", "run", "--scenario", str(scenario), "--kubeconfig", str(kubeconfig), "--time-scale", "10"])
    assert code == 2
    assert (
        "--time-scale: must be 1, not 10: VMIs with backend: qemu (lab/real) run in real time"
        in capsys.readouterr().err
    )
