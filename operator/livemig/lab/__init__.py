"""The migration lab: real QEMU live migrations between two local QEMU processes on 127.0.0.1.

`hack/lab/setup.sh` unpacks QEMU 10 and builds the guest (Debian kernel, busybox initramfs, our dirtier);
`run_case` migrates that guest once with a technique, through a TCP relay a test can cut, and reports what QEMU
measured next to what the guest achieved.  See docs/lab.md.
"""

from __future__ import annotations

from livemig.lab.case import LabCase, LinkCut, Pattern, parse_case, parse_matrix
from livemig.lab.install import LabInstall, LabNotInstalledError
from livemig.lab.results import LabResult, Status
from livemig.lab.runner import run_case

__all__ = [
    "LabCase",
    "LabInstall",
    "LabNotInstalledError",
    "LabResult",
    "LinkCut",
    "Pattern",
    "Status",
    "parse_case",
    "parse_matrix",
    "run_case",
]
