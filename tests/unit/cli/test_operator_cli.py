"""`livemig operator run`: a bad flag, a missing kubeconfig or an unreachable API server is one line and exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from livemig.cli import main


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--metrics-port", "70000"], "--metrics-port"),
        (["--health-port", "x"], "--health-port"),
        (["--default-migration-bandwidth", "fast"], "--default-migration-bandwidth"),
        (["--prometheus-url", "prometheus:9090"], "--prometheus-url"),
        (["--log-format", "xml"], "--log-format"),
        (["--peering", "Not_A_Name"], "--peering"),
        (["--standalone", "--peering", "p"], "--peering"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(args: list[str], names: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["operator", "run", *args])
    assert exc.value.code == 2
    assert names in capsys.readouterr().err


def test_missing_kubeconfig_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["operator", "run", "--kubeconfig", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--kubeconfig" in err[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_api_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{_closed_port()}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "livemig",
            "operator",
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-port",
            "0",
            "--health-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:" in lines[0]
