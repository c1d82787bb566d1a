#!/usr/bin/env bash
# The demo on the embedded local stack: installs what is missing (without the QEMU lab), then `livemig demo`:
# the livemig operator drains a node and balances load while the demo watches (docs/operator.md).
# Extra arguments go to `livemig demo` (e.g. --node node-05 --time-scale 120 --keep).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
LIVEMIG_SKIP_LAB=${LIVEMIG_SKIP_LAB:-1} bash hack/setup.sh
exec .venv/bin/livemig demo "$@"
