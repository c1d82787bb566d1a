"""Lab cases from CLI flags and the matrix file: one parser, errors naming the flag or the matrix field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from livemig.core.errors import SpecErrors
from livemig.core.vocabulary import Technique
from livemig.lab.case import LabCase, Pattern, parse_case, parse_matrix
from livemig.lab.install import LabInstall, LabNotInstalledError, parse_manifest

MIB = 2**20
REPO = Path(__file__).resolve().parents[3]


def test_cli_names_parse_into_si_units() -> None:
    case = parse_case(
        {
            "technique": "xbzrle",
            "memory": "192Mi",
            "working-set": "64Mi",
            "dirty-pages-per-s": "30000",
            "bandwidth": "1Gbit",
            "downtime-limit": "300ms",
            "timeout": "1m",
            "post-copy-timeout-per-gib": "2",
            "xbzrle-cache": "32Mi",
            "pattern": "random",
            "bytes-per-page": "4096",
        },
        "--",
    )
    assert case == LabCase(
        Technique.XBZRLE,
        memory_bytes=192 * MIB,
        working_set_bytes=64 * MIB,
        dirty_pages_per_s=30000,
        bandwidth_bps=125e6,
        downtime_limit_s=0.3,
        timeout_s=60.0,
        post_copy_timeout_per_gib=2.0,
        xbzrle_cache_bytes=32 * MIB,
        pattern=Pattern.RANDOM,
        bytes_per_page=4096,
    )


def test_errors_name_every_bad_flag_at_once() -> None:
    with pytest.raises(SpecErrors) as caught:
        parse_case({"technique": "warp", "bandwidth": "fast", "timeout": "soon", "pattern": "zigzag"}, "--")
    paths = [e.path for e in caught.value.errors]
    assert paths == ["--technique", "--bandwidth", "--timeout", "--pattern"]


def test_working_set_must_fit_in_the_guest() -> None:
    with pytest.raises(SpecErrors, match=r"--working-set: must leave at least 64Mi"):
        parse_case({"technique": "pre-copy", "memory": "128Mi", "working-set": "100Mi"}, "--")
    with pytest.raises(SpecErrors, match=r"--bytes-per-page: must be between 1 and 4096"):
        parse_case({"technique": "pre-copy", "bytes-per-page": "5000"}, "--")


def test_matrix_errors_use_dotted_paths() -> None:
    doc = {"defaults": {"memory": "256Mi"}, "cases": [{"technique": "pre-copy"}, {"technique": "pre-copy", "x": 1}]}
    with pytest.raises(SpecErrors, match=r"cases\[1\]\.x: unknown setting"):
        parse_matrix(doc)
    with pytest.raises(SpecErrors, match=r"cases\[1\]\.name: duplicates"):
        parse_matrix({"cases": [{"technique": "pre-copy"}, {"technique": "pre-copy"}]})


def test_the_shipped_matrix_has_the_issue_shape() -> None:
    cases = parse_matrix(yaml.safe_load((REPO / "examples" / "lab" / "matrix.yaml").read_text()))
    assert len(cases) >= 16
    grid = {(c.technique, c.bandwidth_bps, c.dirty_pages_per_s) for c in cases}
    for technique in (Technique.PRE_COPY, Technique.POST_COPY, Technique.AUTO_CONVERGE, Technique.XBZRLE):
        assert len({(bw, rate) for t, bw, rate in grid if t is technique}) >= 4
    assert any(c.working_set_bytes != 128 * MIB for c in cases)
    assert len({c.xbzrle_cache_bytes for c in cases if c.technique is Technique.XBZRLE}) >= 2
    assert any(c.repeat > 1 for c in cases)


def test_manifest_parsing_and_missing_install(tmp_path: Path) -> None:
    values = parse_manifest("# comment\nLAB_QEMU='/a b/qemu'\n\nLAB_KERNEL_VERSION='linux-image-6.1 6.1.192-2'\n")
    assert values == {"LAB_QEMU": "/a b/qemu", "LAB_KERNEL_VERSION": "linux-image-6.1 6.1.192-2"}
    with pytest.raises(LabNotInstalledError, match=r"hack/lab/setup\.sh"):
        LabInstall.load(tmp_path / "nope.env")
    partial = tmp_path / "lab.env"
    partial.write_text(f"LAB_QEMU='{tmp_path}/qemu'\n")
    with pytest.raises(LabNotInstalledError, match="missing LAB_QEMU_DATADIR"):
        LabInstall.load(partial)
