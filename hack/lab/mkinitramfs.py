#!/usr/bin/env python3
"""Write a gzip'd newc cpio archive (a Linux initramfs) from a directory, without the cpio tool.

    mkinitramfs.py ROOT_DIR OUT.cpio.gz

Entries are sorted and stamped with mtime 0 and uid/gid 0, so the same tree gives the same bytes.
"""

from __future__ import annotations

import gzip
import os
import stat
import sys
from pathlib import Path


def _header(name: bytes, mode: int, size: int, ino: int, nlink: int) -> bytes:
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
    return b"070701" + b"".join(f"{value:08X}".encode() for value in fields) + name + b"\0"


def _pad(length: int) -> bytes:
    return b"\0" * ((4 - length % 4) % 4)


def build(root: Path) -> bytes:
    out = bytearray()
    paths = sorted(p for p in root.rglob("*"))
    for ino, path in enumerate(paths, start=1):
        info = path.lstat()
        name = str(path.relative_to(root)).encode()
        if stat.S_ISLNK(info.st_mode):
            data = os.readlink(path).encode()
        elif stat.S_ISREG(info.st_mode):
            data = path.read_bytes()
        else:
            data = b""
        nlink = 2 if stat.S_ISDIR(info.st_mode) else 1
        head = _header(name, info.st_mode, len(data), ino, nlink)
        out += head + _pad(len(head)) + data + _pad(len(data))
    trailer = _header(b"TRAILER!!!", 0, 0, 0, 1)
    out += trailer + _pad(len(trailer))
    return bytes(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    archive = build(Path(argv[1]))
    with open(argv[2], "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
