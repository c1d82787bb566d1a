#!/usr/bin/env bash
# Fails when generated or copied files drift from their source (CRD copies, test KubeVirt CRDs, policy docs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.venv/bin/python crds/verify.py
