#!/usr/bin/env python3
"""Fails when a derived copy of the CRDs drifted from crds/ (the single source of truth).

Checks, from the repository root (`python3 crds/verify.py`, exit 1 with one line per problem):
- every other file in the repository named like a CRD in crds/ (e.g. charts/livemig/crds/<same name>) is identical;
- the test-only KubeVirt CRDs are what hack/kubevirt-crds/build.py writes;
- docs/policy.md mentions every spec field of the livemig MigrationPolicy CRD.
Only needs Python 3 and PyYAML.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
# Label-selector internals are documented once, not per selector.
SELECTOR_KEYS = {"matchLabels", "matchExpressions"}


def spec_field_paths(crd_path: Path) -> Iterator[str]:
    crd = yaml.safe_load(crd_path.read_text())
    (version,) = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def walk(schema: dict[str, Any], path: str) -> Iterator[str]:
        for key, sub in schema.get("properties", {}).items():
            if key in SELECTOR_KEYS:
                continue
            yield f"{path}.{key}"
            yield from walk(sub, f"{path}.{key}")

    yield from walk(spec, "spec")


def copies_of(root: Path, name: str) -> Iterator[Path]:
    for path in root.rglob(name):
        if path.parent != root / "crds" and not SKIP_DIRS.intersection(path.relative_to(root).parts):
            yield path


def problems(root: Path = ROOT) -> list[str]:
    found: list[str] = []
    crds = root / "crds"
    for source in sorted(crds.glob("*.yaml")):
        for copy in copies_of(root, source.name):
            if copy.read_bytes() != source.read_bytes():
                found.append(f"{copy.relative_to(root)} differs from crds/{source.name}; copy it again")
    build = root / "hack" / "kubevirt-crds" / "build.py"
    result = subprocess.run([sys.executable, str(build), "--check"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        found.append(result.stderr.strip() or "hack/kubevirt-crds is stale")
    docs = (root / "docs" / "policy.md").read_text()
    for path in spec_field_paths(crds / "livemig.io_migrationpolicies.yaml"):
        if f"`{path}`" not in docs:
            found.append(f"docs/policy.md does not document `{path}`")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
