#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kubectl and helm from Go modules into a cache outside the repository.
#
# The cache key is the pinned versions plus the hash of each wrapper module's go.sum, so a change of
# either rebuilds and an unchanged tree reuses the binaries.  Prints the bin directory on stdout.
#
#   hack/controlplane/build.sh            # build if missing, print the bin dir
#   hack/controlplane/build.sh --regen    # regenerate the wrapper go.mod files (after a version bump)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath

cache_root=${LIVEMIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/livemig}
k8s_minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
staging_version="v0.${KUBERNETES_VERSION#v1.}"

regen_kubernetes() {
  local dir=$here/kubernetes
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init livemig.local/controlplane/kubernetes >/dev/null 2>&1 \
    && go mod edit -go=1.25.0 -godebug=default=go1.24)
  local upstream_mod
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # Staging modules are required at v0.0.0 upstream; replace is main-module-only, so pin each here.
  for module in $(awk '$2=="v0.0.0"{print $1}' "$upstream_mod"); do
    (cd "$dir" && go mod edit -replace="$module=$module@$staging_version")
  done
  (cd "$dir" && go get "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    && go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION" \
    && go mod tidy)
}

regen_etcd() {
  local dir=$here/etcd
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init livemig.local/controlplane/etcd >/dev/null 2>&1 \
    && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy)
}

regen_helm() {
  local dir=$here/helm
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init livemig.local/controlplane/helm >/dev/null 2>&1 \
    && go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" && go mod tidy)
}

if [[ ${1:-} == --regen ]]; then
  mkdir -p "$here/kubernetes" "$here/etcd" "$here/helm"
  regen_kubernetes; regen_etcd; regen_helm
fi

sum_hash=$(cat "$here/versions.env" "$here/kubernetes/go.sum" "$here/etcd/go.sum" "$here/helm/go.sum" \
  | sha256sum | cut -c1-12)
bin_dir="$cache_root/controlplane/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-$sum_hash/bin"

if [[ -x $bin_dir/kube-apiserver && -x $bin_dir/etcd && -x $bin_dir/kubectl && -x $bin_dir/helm ]]; then
  echo "$bin_dir"
  exit 0
fi

staging=$(mktemp -d "$cache_root/controlplane/.build.XXXXXX" 2>/dev/null || { mkdir -p "$cache_root/controlplane"; mktemp -d "$cache_root/controlplane/.build.XXXXXX"; })
trap 'rm -rf "$staging"' EXIT
start=$(date +%s)

# Stamp versions as upstream's hack/lib/version.sh does: helm and kubectl read them for skew checks.
ldflags="-s -w"
for kv in gitVersion=$KUBERNETES_VERSION gitMajor=1 gitMinor=$k8s_minor gitTreeState=clean \
          buildDate=2025-01-01T00:00:00Z; do
  ldflags="$ldflags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
done
echo "building kube-apiserver and kubectl $KUBERNETES_VERSION (cold: several minutes)" >&2
(cd "$here/kubernetes" && go build -ldflags "$ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)

echo "building etcd $ETCD_VERSION" >&2
(cd "$here/etcd" && go build -ldflags "-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3)

echo "building helm $HELM_VERSION" >&2
helm_flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_flags="$helm_flags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
(cd "$here/helm" && go build -ldflags "$helm_flags" -o "$staging/helm" helm.sh/helm/v3/cmd/helm)

mkdir -p "$(dirname "$bin_dir")"
rm -rf "$bin_dir"
chmod 755 "$staging"
mv "$staging" "$bin_dir"
trap - EXIT
echo "built in $(( $(date +%s) - start ))s into $bin_dir" >&2
echo "$bin_dir"
