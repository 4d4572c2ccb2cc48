#!/usr/bin/env bash
# Builds the helm CLI from the Go module pinned in tools/helm (no download from
# get.helm.sh: only the Go module proxy is needed).
#
# Same caching as tools/build-control-plane.sh: the binary goes to a cache
# outside the checkout, keyed by a hash of tools/helm/go.mod, go.sum and the
# recipe below, so a fresh clone on the same machine reuses it and a changed pin
# rebuilds. target/helm-bin is a symlink to that cache directory.
# Prints the bin directory on the last line of stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

# Bump when the build recipe (flags) changes so caches are rebuilt.
recipe=1
key=$( (echo "recipe $recipe"; cat "$here"/helm/go.mod "$here"/helm/go.sum) | sha256sum | cut -c1-16)
cache=${ORGACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orgaccess}
bin="$cache/helm-$key/bin"

link() {
  mkdir -p "$root/target"
  ln -sfn "$bin" "$root/target/helm-bin"
}

if [[ -x "$bin/helm" && -f "$bin/.complete" ]]; then
  link
  echo "helm: cached in $bin" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: Go is required to build helm (apt-get install golang or use the machine's Go)" >&2; exit 1; }

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
mod_version() { (cd "$here/helm" && go list -m -f "{{.Version}}" "$1"); }
helm_version=$(mod_version helm.sh/helm/v3)
client_go=$(mod_version k8s.io/client-go)
[[ -n "$helm_version" && -n "$client_go" ]] || { echo "error: cannot read versions from tools/helm/go.mod" >&2; exit 1; }
# What helm's Makefile does: the default Kubernetes version helm assumes
# (Capabilities.KubeVersion in `helm template`/`helm lint`) follows client-go,
# v0.X.Y -> 1.X. Without this it would assume 1.20.
k8s_minor=$(echo "$client_go" | sed 's/^v0\.\([0-9]*\)\..*/\1/')
v=helm.sh/helm/v3
ldflags="-s -w -X $v/internal/version.version=$helm_version -X $v/internal/version.metadata= \
 -X $v/internal/version.gitCommit=$key -X $v/internal/version.gitTreeState=clean \
 -X $v/pkg/lint/rules.k8sVersionMajor=1 -X $v/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
 -X $v/pkg/chartutil.k8sVersionMajor=1 -X $v/pkg/chartutil.k8sVersionMinor=$k8s_minor"

progress() {
  local n=0 line
  while IFS= read -r line; do
    case "$line" in
      *": "*|"#"*) echo "$line" >&2 ;;
      *) n=$((n + 1)); if (( n % 100 == 0 )); then echo "  helm: $n packages compiled" >&2; fi ;;
    esac
  done
  echo "  helm: done ($n packages compiled)" >&2
}

mkdir -p "$bin.tmp"
echo "helm: building $helm_version from its Go module (first build takes a few minutes)" >&2
(cd "$here/helm" && go build -v -trimpath -ldflags "$ldflags" -o "$bin.tmp/helm" helm.sh/helm/v3/cmd/helm) 2> >(progress)
wait
[[ -x "$bin.tmp/helm" ]] || { echo "error: helm was not built" >&2; exit 1; }
touch "$bin.tmp/.complete"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
link
echo "helm: built into $bin" >&2
echo "$bin"
