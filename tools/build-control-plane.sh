#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kubectl) from the Go
# modules pinned in tools/etcd and tools/k8s.
#
# The binaries go to a cache outside the checkout, keyed by a hash of the pinned
# module files and of this script, so a fresh clone on the same machine reuses
# them and a changed pin rebuilds. target/k8s-bin is a symlink to that cache.
# Prints the bin directory on the last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

# Bump when the build recipe (flags, binary set) changes so caches are rebuilt.
recipe=1
key=$( (echo "recipe $recipe"; cat "$here"/k8s/go.mod "$here"/k8s/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum) | sha256sum | cut -c1-16)
cache=${ORGACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orgaccess}
bin="$cache/control-plane-$key/bin"

link() {
  mkdir -p "$root/target"
  ln -sfn "$bin" "$root/target/k8s-bin"
}

if [[ -x "$bin/kube-apiserver" && -x "$bin/etcd" && -x "$bin/kubectl" && -f "$bin/.complete" ]]; then
  link
  echo "control plane: cached in $bin" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: Go is required to build the control plane (apt-get install golang or use the machine's Go)" >&2; exit 1; }

k8s_version=$(cd "$here/k8s" && GOWORK=off GOFLAGS=-mod=mod go list -m -f "{{.Version}}" k8s.io/kubernetes | sed "s/^v//")
[[ -n "$k8s_version" ]] || { echo "error: cannot read the k8s.io/kubernetes version from tools/k8s/go.mod" >&2; exit 1; }
minor=$(echo "$k8s_version" | cut -d. -f2)

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
mkdir -p "$bin.tmp"
stamp="k8s.io/component-base/version"
ldflags="-s -w -X $stamp.gitVersion=v$k8s_version -X $stamp.gitMajor=1 -X $stamp.gitMinor=$minor \
 -X $stamp.gitTreeState=clean -X $stamp.gitCommit=$key -X $stamp.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=v$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

# `go build -v` names each package as it compiles; show a count so the first
# (long) build visibly progresses.
progress() {
  local what=$1 n=0 line
  while IFS= read -r line; do
    case "$line" in
      *": "*|"#"*) echo "$line" >&2 ;;
      *) n=$((n + 1)); if (( n % 200 == 0 )); then echo "  $what: $n packages compiled" >&2; fi ;;
    esac
  done
  echo "  $what: done ($n packages compiled)" >&2
}

build() {
  local dir=$1 pkg=$2 out=$3
  echo "control plane: building $out from $pkg (first build takes 10-20 minutes)" >&2
  (cd "$here/$dir" && go build -v -trimpath -ldflags "$ldflags" -o "$bin.tmp/$out" "$pkg") 2> >(progress "$out")
  wait
}

build etcd go.etcd.io/etcd/server/v3 etcd
build k8s k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver
build k8s k8s.io/kubernetes/cmd/kubectl kubectl

for b in etcd kube-apiserver kubectl; do [[ -x "$bin.tmp/$b" ]] || { echo "error: $b was not built" >&2; exit 1; }; done
touch "$bin.tmp/.complete"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
link
echo "control plane: built into $bin" >&2
echo "$bin"
