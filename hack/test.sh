#!/usr/bin/env bash
# The one test command: installs what is missing (hack/setup.sh), checks style and types, runs every test.
# Extra arguments go to pytest, e.g. `bash hack/test.sh tests/unit -k model`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash hack/setup.sh

lint_paths=(); for d in operator tests bench hack examples; do [[ -d $d ]] && lint_paths+=("$d"); done
echo "== ruff"; .venv/bin/ruff check "${lint_paths[@]}"; .venv/bin/ruff format --check "${lint_paths[@]}"
echo "== mypy"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
[[ -x hack/verify.sh ]] && { echo "== verify generated files"; bash hack/verify.sh; }

echo "== pytest"
set +e
# Without arguments: everything but the tests marked slow (the full real-QEMU set; run them with `-m slow`).
if [[ $# -eq 0 ]]; then set -- -m "not slow"; fi
.venv/bin/pytest "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit $status
