"""Command lines and QMP arguments the lab builds, checked against what QEMU and libvirt expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from livemig.core.vocabulary import Technique
from livemig.lab.case import LabCase, Pattern
from livemig.lab.install import LabInstall
from livemig.lab.qemu import RunPaths, kernel_cmdline, migration_capabilities, migration_parameters, qemu_command

MIB = 2**20
INSTALL = LabInstall(
    qemu=Path("/lab/qemu"),
    qemu_datadir=Path("/lab/share"),
    ld_library_path="/lab/lib",
    qemu_version="1:10.0.2",
    kernel=Path("/lab/vmlinuz"),
    kernel_version="6.1",
    initramfs=Path("/lab/initramfs.cpio.gz"),
)
PATHS = RunPaths(Path("/run/src.qmp"), Path("/run/src-serial.log"))


def _value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_source_and_destination_differ_only_in_incoming() -> None:
    case = LabCase(Technique.PRE_COPY, memory_bytes=192 * MIB)
    source = qemu_command(INSTALL, case, PATHS, incoming=False)
    destination = qemu_command(INSTALL, case, PATHS, incoming=True)
    assert destination == [*source, "-incoming", "defer"]
    assert source[0] == "/lab/qemu"
    assert _value(source, "-L") == "/lab/share"
    assert _value(source, "-m") == "192M"
    assert _value(source, "-accel") == "tcg"
    assert _value(source, "-serial") == "file:/run/src-serial.log"
    assert _value(source, "-qmp") == "unix:/run/src.qmp,server=on,wait=off"
    assert _value(source, "-kernel") == "/lab/vmlinuz"
    assert "-nodefaults" in source


def test_kernel_cmdline_carries_the_dirtier_settings() -> None:
    case = LabCase(
        Technique.PRE_COPY,
        working_set_bytes=96 * MIB,
        dirty_pages_per_s=12345,
        bytes_per_page=64,
        pattern=Pattern.HOT_COLD,
    )
    words = kernel_cmdline(case).split()
    assert "console=ttyS0" in words
    assert {"dirtier.wss_mib=96", "dirtier.rate=12345", "dirtier.bpp=64", "dirtier.pattern=hot-cold"} <= set(words)


@pytest.mark.parametrize(
    ("technique", "enabled"),
    [
        (Technique.PRE_COPY, {"events"}),
        (Technique.POST_COPY, {"events", "postcopy-ram"}),
        (Technique.AUTO_CONVERGE, {"events", "auto-converge"}),
        (Technique.XBZRLE, {"events", "xbzrle"}),
    ],
)
def test_capabilities_enable_exactly_the_technique(technique: Technique, enabled: set[str]) -> None:
    caps = migration_capabilities(LabCase(technique))
    assert {c["capability"] for c in caps if c["state"]} == enabled
    # The others are switched off explicitly, so a reused QEMU could not keep a stale capability.
    assert {c["capability"] for c in caps} == {"events", "postcopy-ram", "auto-converge", "xbzrle"}


def test_parameters_follow_libvirt_for_kubevirt_settings() -> None:
    base = dict(bandwidth_bps=200e6 / 8, downtime_limit_s=0.25)
    pre = migration_parameters(LabCase(Technique.PRE_COPY, **base))
    assert pre == {"max-bandwidth": 25_000_000, "downtime-limit": 250}
    post = migration_parameters(LabCase(Technique.POST_COPY, **base))
    assert post["max-postcopy-bandwidth"] == 25_000_000  # the lab's bandwidth is the link, in both phases
    auto = migration_parameters(LabCase(Technique.AUTO_CONVERGE, **base))
    assert (auto["cpu-throttle-initial"], auto["cpu-throttle-increment"]) == (20, 10)  # QEMU's defaults
    xbzrle = migration_parameters(LabCase(Technique.XBZRLE, xbzrle_cache_bytes=128 * MIB, **base))
    assert xbzrle["xbzrle-cache-size"] == 128 * MIB


@pytest.mark.parametrize(
    ("memory_mib", "per_gib", "switch_s"),
    [(256, 1.0, 1.0), (1024, 1.0, 2.0), (256, 3.0, 3.0), (256, 0.0, 0.0)],
)
def test_post_copy_switch_follows_kubevirt_completion_timeout(memory_mib: int, per_gib: float, switch_s: float) -> None:
    # KubeVirt: completionTimeoutPerGiB x ceil(bytes / 10^9); 1 GiB = 1.07 GB -> 2 units.
    case = LabCase(Technique.POST_COPY, memory_bytes=memory_mib * MIB, post_copy_timeout_per_gib=per_gib)
    assert case.post_copy_switch_s == switch_s
