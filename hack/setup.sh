#!/usr/bin/env bash
# Installs everything livemig's tests and demo need on a fresh machine; idempotent and cached.
#   - Debian packages: prometheus (the metrics store the tests and the demo start on loopback)
#   - the local control plane: etcd, kube-apiserver, kubectl, helm built from Go modules (hack/controlplane/build.sh)
#   - the QEMU lab: QEMU from bookworm-backports and the guest image (hack/lab/setup.sh), unless LIVEMIG_SKIP_LAB=1
#   - the Python virtual environment .venv with livemig and its dev tools
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if ! command -v prometheus >/dev/null 2>&1; then
  log "installing Debian's prometheus"
  as_root apt-get update -qq
  # --no-install-recommends keeps node-exporter out; the package does not start a service here.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

log "control plane binaries (cached after the first build)"
bin_dir=$(bash hack/controlplane/build.sh)
log "control plane: $bin_dir"

if [[ ${LIVEMIG_SKIP_LAB:-0} != 1 && -f hack/lab/setup.sh ]]; then
  log "QEMU lab (cached after the first run)"
  bash hack/lab/setup.sh
fi

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.livemig-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  log "installing livemig and its dev dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
log "ready"
