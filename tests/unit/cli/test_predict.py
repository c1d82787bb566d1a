"""`livemig predict`: JSON shape, the readable table, the plot, and exit code 2 naming the bad argument."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livemig.cli import main
from livemig.core.vocabulary import Outcome, Technique

BASE = ["predict", "--memory", "4Gi", "--dirty-rate", "200Mi", "--bandwidth", "1Gbit"]
OK = ["--memory", "4Gi", "--dirty-rate", "1Mi", "--bandwidth", "1Gbit"]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*BASE, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_exactly_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--json")
    assert code == 0
    doc = json.loads(out)  # exactly one JSON object on stdout
    assert set(doc) == {"chosen", "reason", "techniques"}
    assert set(doc["techniques"]) == {t.value for t in Technique}
    for figures in doc["techniques"].values():
        assert set(figures) == {
            "total_time_s",
            "downtime_s",
            "transferred_bytes",
            "rounds",
            "outcome",
            "stopped_at_horizon_s",
        }
        assert isinstance(figures["total_time_s"], float)
        assert isinstance(figures["downtime_s"], float)
        assert isinstance(figures["transferred_bytes"], int)
        assert isinstance(figures["rounds"], int)
        assert figures["outcome"] in {o.value for o in Outcome}
        assert figures["stopped_at_horizon_s"] is None  # the timeouts end every technique here
    assert isinstance(doc["reason"], str)
    assert "\n" not in doc["reason"]


def test_defaults_are_kubevirts_so_only_pre_copy_can_be_chosen(capsys: pytest.CaptureFixture[str]) -> None:
    # 4 GiB dirtied at 200 MiB/s over 1 Gbit/s: pre-copy cannot converge and aborts at 5 x 150 s.
    _, out, _ = run_cli(capsys, "--json")
    doc = json.loads(out)
    assert doc["chosen"] == "pre-copy"
    pre = doc["techniques"]["pre-copy"]
    assert pre["outcome"] == "aborted"
    assert pre["total_time_s"] == pytest.approx(750.0)


def test_allowing_post_copy_lets_the_selector_use_it(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, "--json", "--allow-post-copy")
    doc = json.loads(out)
    assert doc["chosen"] == "post-copy"
    assert doc["techniques"]["post-copy"]["outcome"] == "switched-to-post-copy"


def test_post_copy_timeout_zero_switches_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, "--json", "--post-copy-timeout-per-gib", "0", "--technique", "post-copy")
    doc = json.loads(out)
    assert set(doc["techniques"]) == {"post-copy"}
    post = doc["techniques"]["post-copy"]
    assert post["transferred_bytes"] == 4 * 2**30
    assert post["total_time_s"] == pytest.approx(4 * 2**30 / 125e6)


def test_table_names_every_technique_and_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--allow-auto-converge", "--wss", "512Mi", "--stop-rules", "xen")
    assert code == 0
    for technique in Technique:
        assert technique.value in out
    assert "chosen: " in out
    assert "reason: " in out


def test_plot_writes_a_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_png = tmp_path / "out.png"
    code, _, _ = run_cli(capsys, "--plot", str(out_png), "--allow-post-copy")
    assert code == 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--memory=-4Gi", "--dirty-rate", "1Mi", "--bandwidth", "1Gbit"], "--memory"),
        (["--memory", "lots", "--dirty-rate", "1Mi", "--bandwidth", "1Gbit"], "--memory"),
        (["--memory", "4Gi", "--dirty-rate=-5Mi", "--bandwidth", "1Gbit"], "--dirty-rate"),
        (["--memory", "4Gi", "--dirty-rate", "1Mi", "--bandwidth", "0"], "--bandwidth"),
        (["--memory", "4Gi", "--dirty-rate", "1Mi", "--bandwidth", "fast"], "--bandwidth"),
        ([*OK, "--max-downtime", "0s"], "--max-downtime"),
        ([*OK, "--downtime-limit", "x"], "--downtime-limit"),
        ([*OK, "--completion-timeout-per-gib=-1"], "--completion-timeout-per-gib"),
        ([*OK, "--post-copy-timeout-per-gib", "one"], "--post-copy-timeout-per-gib"),
        ([*OK, "--progress-timeout=-3s"], "--progress-timeout"),
        ([*OK, "--timeout", "0"], "--timeout"),
        ([*OK, "--xbzrle-cache", "big"], "--xbzrle-cache"),
    ],
)
def test_bad_input_exits_2_naming_the_argument(capsys: pytest.CaptureFixture[str], args: list[str], flag: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["predict", *args])
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert out == ""
    assert f"argument {flag}:" in err
    assert len(err.strip().splitlines()) == 1


def test_a_working_set_above_the_memory_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", *OK, "--wss", "8Gi"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        "livemig predict: error: --wss: must not exceed --memory (4294967296 bytes), got 8589934592 bytes"
    )


def test_a_run_stopped_at_the_horizon_says_so_and_shows_it(capsys: pytest.CaptureFixture[str]) -> None:
    # 1 EB over 1 Gbit/s takes 8e9 s to send once, and KubeVirt's completion timeout is 150 s x 1e9 GB: nothing
    # ends the run before the model's 7-day horizon.
    huge = ["predict", "--memory", "1E", "--dirty-rate", "0", "--bandwidth", "1Gbit", "--technique", "pre-copy"]
    assert main(huge) == 0
    out = capsys.readouterr().out
    assert "not-converged (horizon)" in out
    assert "stopped at the model's horizon of 604800 s (7 days)" in out
    assert main([*huge, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["techniques"]["pre-copy"]["stopped_at_horizon_s"] == 604800.0
    # A caller's cap before the horizon is not the horizon.
    assert main([*huge, "--timeout", "1h"]) == 0
    out = capsys.readouterr().out
    assert "not-converged" in out
    assert "horizon" not in out


@pytest.mark.parametrize("args", [["--stop-rules", "vmware"], ["--mode", "Fast"], ["--technique", "teleport"]])
def test_bad_choices_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*BASE, *args])
    assert exc.value.code == 2
    assert args[0] in capsys.readouterr().err
