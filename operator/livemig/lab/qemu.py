"""Pure builders: QEMU's command line, the guest's kernel command line, and the migration capabilities and
parameters the way libvirt sets them for KubeVirt's settings.

libvirt (qemuMigrationParams*) turns KubeVirt's migration into QMP as follows, and so do we:
- bandwidthPerMigration -> `max-bandwidth` (bytes/s).  The lab's `--bandwidth` stands for the link, so the
  post-copy phase gets the same cap (`max-postcopy-bandwidth`), else loopback would serve faults at memory speed;
- the downtime limit -> `downtime-limit` (ms; QEMU's and KubeVirt's default 300 ms);
- allowAutoConverge -> capability `auto-converge`, with QEMU's default throttle (initial 20 %, increment 10 %:
  libvirt sets them only when asked, and KubeVirt does not ask);
- allowPostCopy -> capability `postcopy-ram` on both sides and `migrate-start-postcopy` when KubeVirt's
  completion timeout (completionTimeoutPerGiB × ceil(bytes / 10^9)) passes;
- XBZRLE (libvirt's compressed migration, method xbzrle) -> capability `xbzrle` + `xbzrle-cache-size`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livemig.core.vocabulary import Technique
from livemig.lab.case import LabCase
from livemig.lab.install import LabInstall

MIB = 2**20


@dataclass(frozen=True, slots=True)
class RunPaths:
    """Files of one QEMU process inside a run directory."""

    qmp_socket: Path
    serial_log: Path


def kernel_cmdline(case: LabCase) -> str:
    """The guest's command line: the console and the dirtier's settings (read by dirtier.c from /proc/cmdline)."""
    return " ".join(
        (
            "console=ttyS0",
            "quiet",
            "panic=-1",
            f"dirtier.wss_mib={case.working_set_bytes // MIB}",
            f"dirtier.rate={case.dirty_pages_per_s}",
            f"dirtier.bpp={case.bytes_per_page}",
            f"dirtier.pattern={case.pattern}",
            "dirtier.report_ms=1000",
        )
    )


def qemu_command(install: LabInstall, case: LabCase, paths: RunPaths, *, incoming: bool) -> list[str]:
    """One QEMU process: TCG, 1 vCPU, no devices but the serial console, QMP on a unix socket.

    Both sides get the same machine and guest arguments (migration needs identical device models); the
    destination also waits for an incoming migration (`-incoming defer`, then `migrate-incoming`).
    """
    command = [
        str(install.qemu),
        "-L",
        str(install.qemu_datadir),
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-cpu",
        "qemu64",
        "-m",
        f"{case.memory_bytes // MIB}M",
        "-smp",
        "1",
        "-kernel",
        str(install.kernel),
        "-initrd",
        str(install.initramfs),
        "-append",
        kernel_cmdline(case),
        "-display",
        "none",
        "-nodefaults",
        "-no-user-config",
        "-serial",
        f"file:{paths.serial_log}",
        "-qmp",
        f"unix:{paths.qmp_socket},server=on,wait=off",
    ]
    if incoming:
        command += ["-incoming", "defer"]
    return command


def migration_capabilities(case: LabCase) -> list[dict[str, Any]]:
    """`migrate-set-capabilities` argument, the same on source and destination."""
    enabled = {
        Technique.PRE_COPY: (),
        Technique.POST_COPY: ("postcopy-ram",),
        Technique.AUTO_CONVERGE: ("auto-converge",),
        Technique.XBZRLE: ("xbzrle",),
    }[case.technique]
    names = ("events", "postcopy-ram", "auto-converge", "xbzrle")
    return [{"capability": name, "state": name == "events" or name in enabled} for name in names]


def migration_parameters(case: LabCase) -> dict[str, Any]:
    """`migrate-set-parameters` argument for the source."""
    bandwidth = round(case.bandwidth_bps)
    params: dict[str, Any] = {
        "max-bandwidth": bandwidth,
        "downtime-limit": round(case.downtime_limit_s * 1000),
    }
    if case.technique is Technique.POST_COPY:
        params["max-postcopy-bandwidth"] = bandwidth
    if case.technique is Technique.AUTO_CONVERGE:
        params["cpu-throttle-initial"] = case.throttle_initial_pct
        params["cpu-throttle-increment"] = case.throttle_increment_pct
    if case.technique is Technique.XBZRLE:
        params["xbzrle-cache-size"] = case.xbzrle_cache_bytes
    return params


def migration_uri(port: int) -> str:
    return f"tcp:127.0.0.1:{port}"
