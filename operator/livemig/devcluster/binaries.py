"""Finds the control-plane binaries built from Go modules by hack/controlplane/build.sh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from livemig.core.errors import LivemigError

REQUIRED = ("etcd", "kube-apiserver", "kubectl", "helm")


class BinariesMissingError(LivemigError):
    """The control-plane binaries are not built and cannot be built from here."""


def repository_root() -> Path | None:
    """The livemig checkout this package runs from (editable install), if any."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "hack" / "controlplane" / "build.sh").is_file():
            return parent
    return None


def control_plane_bin_dir() -> Path:
    """The directory holding etcd, kube-apiserver, kubectl and helm.

    `LIVEMIG_CONTROLPLANE_BIN` wins; otherwise the build script is asked, which prints the cached directory at once
    or builds it (a cold build takes tens of minutes; its progress goes to stderr).
    """
    override = os.environ.get("LIVEMIG_CONTROLPLANE_BIN")
    if override:
        bin_dir = Path(override)
    else:
        root = repository_root()
        if root is None:
            raise BinariesMissingError(
                "cannot find hack/controlplane/build.sh; set LIVEMIG_CONTROLPLANE_BIN to a directory with "
                + ", ".join(REQUIRED)
            )
        script = root / "hack" / "controlplane" / "build.sh"
        result = subprocess.run(["bash", str(script)], check=False, stdout=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise BinariesMissingError(f"{script} failed with exit code {result.returncode}")
        bin_dir = Path(result.stdout.strip().splitlines()[-1])
    missing = [name for name in REQUIRED if not (bin_dir / name).is_file()]
    if missing:
        raise BinariesMissingError(f"{bin_dir} lacks {', '.join(missing)}")
    return bin_dir
