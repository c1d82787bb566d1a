"""`livemig plan`: prints a plan for a snapshot and a policy; bad files exit 2 naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livemig.cli import main

SNAPSHOTS = Path(__file__).parents[2] / "data" / "snapshots"

BALANCE = """\
apiVersion: livemig.io/v1alpha1
kind: MigrationPolicy
metadata: {name: balance}
spec:
  purpose: LoadBalancing
  selector:
    namespaceSelector: {matchLabels: {tier: prod}}
  loadBalancing:
    cpu: {high: 0.8, target: 0.7}
    pressure: {cpu: {high: 0.3, target: 0.2}}
  technique: {mode: Auto, allowPostCopy: true, allowAutoConverge: true}
  limits: {cooldown: 0s}
"""

CONSOLIDATE = """\
apiVersion: livemig.io/v1alpha1
kind: MigrationPolicy
metadata: {name: consolidate}
spec:
  purpose: Consolidation
  consolidation:
    lowUtilization: {cpu: 0.5, memory: 0.5}
    headroom: {cpu: 0.2, memory: 0.2}
    maxNodesPerCycle: 10
    cordonEmptied: true
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_json_plan_for_a_hot_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["plan", "--snapshot", str(SNAPSHOTS / "hot.yaml"), "--policy", write(tmp_path, "p.yaml", BALANCE), "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["status"] == "Ready"
    assert out["purpose"] == "LoadBalancing"
    assert out["policy"] == "balance"
    assert out["moves"]
    for move in out["moves"]:
        assert move["source"] == "worker-0"
        assert move["technique"] in ("pre-copy", "post-copy", "auto-converge")
        assert move["predicted_bytes"] > 0
        assert move["predicted_time_s"] > 0
        assert move["vmi"].startswith("prod/")
    assert out["efficacy"]["cpu_max_after"] < out["efficacy"]["cpu_max_before"]
    assert out["efficacy"]["nodes_over_threshold_after"] == 0
    assert out["waves"]
    assert out["limits"]["maxConcurrentMigrationsPerNode"] == 1  # the policy's default


def test_readable_plan_for_consolidation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["plan", "--snapshot", str(SNAPSHOTS / "sparse.yaml"), "--policy", write(tmp_path, "p.yaml", CONSOLIDATE)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "purpose Consolidation" in out
    assert "nodes released:" in out
    assert "then cordon node-00" in out
    assert "efficacy:" in out


def test_bad_snapshot_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (SNAPSHOTS / "hot.yaml").read_text().replace("dirtyRate: 300Mi", "dirtyRate: lots")
    snap = write(tmp_path, "snap.yaml", text)
    rc = main(["plan", "--snapshot", snap, "--policy", write(tmp_path, "p.yaml", BALANCE)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"--snapshot {snap}: vmis[0].usage.dirtyRate" in err


def test_bad_policy_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = BALANCE.replace("cooldown: 0s", "cooldown: soon")
    rc = main(["plan", "--snapshot", str(SNAPSHOTS / "hot.yaml"), "--policy", write(tmp_path, "p.yaml", bad)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "spec.limits.cooldown" in err


def test_missing_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["plan", "--snapshot", str(tmp_path / "none.yaml"), "--policy", str(tmp_path / "none2.yaml")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "none.yaml" in err
    assert "none2.yaml" in err


BAND_POLICY = """\
apiVersion: livemig.io/v1alpha1
kind: MigrationPolicy
metadata: {name: band}
spec:
  purpose: LoadBalancing
  loadBalancing:
    cpu: {high: 0.8, target: 0.6}
    hysteresis: 0.1
  limits: {cooldown: 0s}
"""

INSIDE_THE_BAND = """\
apiVersion: livemig.io/v1alpha1
kind: ClusterSnapshot
nodes:
  - {name: n1, cpu: 16, memory: 64Gi}
  - {name: n2, cpu: 16, memory: 64Gi}
vmis:
""" + "".join(
    f"  - {{namespace: prod, name: v{i}, node: n1, vcpus: 4, memory: 8Gi, usage: {{cpu: 4, dirtyRate: 5Mi}}}}\n"
    for i in range(3)
)  # n1 at 12 / 16 = 0.75: below high (0.8), inside the band (0.7, 0.8]


def test_hot_nodes_flag_is_the_hysteresis_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap, pol = write(tmp_path, "s.yaml", INSIDE_THE_BAND), write(tmp_path, "p.yaml", BAND_POLICY)
    assert main(["plan", "--snapshot", snap, "--policy", pol, "--json"]) == 0
    forgetful = json.loads(capsys.readouterr().out)
    assert (forgetful["status"], forgetful["hot_nodes"]) == ("NothingToDo", [])
    assert main(["plan", "--snapshot", snap, "--policy", pol, "--json", "--hot-nodes", "n1, n9"]) == 0
    remembering = json.loads(capsys.readouterr().out)
    assert (remembering["status"], remembering["hot_nodes"]) == ("Ready", ["n1"])
    assert {m["source"] for m in remembering["moves"]} == {"n1"}
    assert main(["plan", "--snapshot", snap, "--policy", pol, "--hot-nodes", "n1"]) == 0
    assert "hot nodes: n1 (pass back next cycle: --hot-nodes)" in capsys.readouterr().out


DRAIN_CORDONED = """\
apiVersion: livemig.io/v1alpha1
kind: MigrationPolicy
metadata: {name: drain}
spec:
  purpose: Maintenance
  maintenance: {cordoned: true}
  limits: {cooldown: 0s}
"""


def test_cordon_what_if_drains_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "p.yaml", DRAIN_CORDONED)
    snapshot = str(SNAPSHOTS / "hot.yaml")
    assert main(["plan", "--snapshot", snapshot, "--policy", policy, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["moves"] == []
    assert main(["plan", "--snapshot", snapshot, "--policy", policy, "--cordon", "worker-1", "--json"]) == 0
    moves = json.loads(capsys.readouterr().out)["moves"]
    assert moves
    assert {m["source"] for m in moves} == {"worker-1"}
    assert all(m["target"] != "worker-1" for m in moves)


def test_unhealthy_what_if_evacuates_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(
        tmp_path,
        "p.yaml",
        "apiVersion: livemig.io/v1alpha1\nkind: MigrationPolicy\nmetadata: {name: ev}\nspec:\n  purpose: Evacuation\n"
        "  evacuation: {healthQuery: up, threshold: 1}\n  limits: {cooldown: 0s}\n",
    )
    args = ["plan", "--snapshot", str(SNAPSHOTS / "hot.yaml"), "--policy", policy, "--json"]
    assert main([*args, "--unhealthy", "worker-2"]) == 0
    moves = json.loads(capsys.readouterr().out)["moves"]
    assert moves
    assert {m["source"] for m in moves} == {"worker-2"}


@pytest.mark.parametrize("flag", ["--cordon", "--unhealthy"])
def test_what_if_on_an_unknown_node_names_the_flag(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(tmp_path, "p.yaml", DRAIN_CORDONED)
    rc = main(["plan", "--snapshot", str(SNAPSHOTS / "hot.yaml"), "--policy", policy, flag, "worker-1,nope"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert f"{flag}: no node 'nope' in the snapshot" in err
    assert "worker-1" not in err


def test_what_if_is_refused_on_a_live_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["plan", "--kubeconfig", str(tmp_path / "kubeconfig"), "--policy", "p", "--cordon", "n1"])
    assert rc == 2
    assert "--cordon: a what-if for --snapshot only" in capsys.readouterr().err
