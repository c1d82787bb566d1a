"""Where the lab's QEMU and guest are: the manifest `lab.env` that hack/lab/setup.sh writes."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from livemig.core.errors import LivemigError

SETUP_COMMAND = "hack/lab/setup.sh"


class LabNotInstalledError(LivemigError):
    """The lab's QEMU or guest image is missing; the message says what and how to set it up."""


def default_manifest_path() -> Path:
    """$LIVEMIG_LAB_ENV, else $LIVEMIG_CACHE/lab/lab.env, else ~/.cache/livemig/lab/lab.env (setup.sh's choice)."""
    explicit = os.environ.get("LIVEMIG_LAB_ENV")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("LIVEMIG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "livemig"
    )
    return Path(cache) / "lab" / "lab.env"


def parse_manifest(text: str) -> dict[str, str]:
    """KEY='value' lines (shell syntax, as setup.sh writes them); comments and blank lines ignored."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        parts = shlex.split(raw)
        values[key.strip()] = " ".join(parts)
    return values


@dataclass(frozen=True, slots=True)
class LabInstall:
    """The paths and versions of one lab installation."""

    qemu: Path
    qemu_datadir: Path
    ld_library_path: str
    qemu_version: str
    kernel: Path
    kernel_version: str
    initramfs: Path

    @classmethod
    def load(cls, manifest: Path | None = None) -> LabInstall:
        path = manifest or default_manifest_path()
        if not path.is_file():
            raise LabNotInstalledError(f"lab not set up: {path} does not exist (run {SETUP_COMMAND})")
        values = parse_manifest(path.read_text())
        keys = ("LAB_QEMU", "LAB_QEMU_DATADIR", "LAB_KERNEL", "LAB_INITRAMFS")
        missing = [key for key in keys if not values.get(key)]
        if missing:
            raise LabNotInstalledError(f"{path}: missing {', '.join(missing)} (run {SETUP_COMMAND})")
        install = cls(
            qemu=Path(values["LAB_QEMU"]),
            qemu_datadir=Path(values["LAB_QEMU_DATADIR"]),
            ld_library_path=values.get("LAB_LD_LIBRARY_PATH", ""),
            qemu_version=values.get("LAB_QEMU_VERSION", "unknown"),
            kernel=Path(values["LAB_KERNEL"]),
            kernel_version=values.get("LAB_KERNEL_VERSION", "unknown"),
            initramfs=Path(values["LAB_INITRAMFS"]),
        )
        for label, file in (("QEMU", install.qemu), ("kernel", install.kernel), ("initramfs", install.initramfs)):
            if not file.exists():
                raise LabNotInstalledError(f"lab {label} {file} is missing (run {SETUP_COMMAND})")
        return install

    def environment(self) -> dict[str, str]:
        """The environment QEMU runs with (its unpacked libraries first)."""
        env = dict(os.environ)
        if self.ld_library_path:
            env["LD_LIBRARY_PATH"] = self.ld_library_path + (
                ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else ""
            )
        return env
