#!/usr/bin/env bash
# Builds the rest of a cluster that runs pods: kube-controller-manager,
# kube-scheduler, kubelet and kube-proxy, from the same pinned k8s.io/kubernetes
# module version as tools/build-control-plane.sh (tools/k8s-node pins it
# beside tools/k8s), with the same flags.
# containerd, runc and the CNI plugins come from Debian (tools/install-node-runtime.sh).
#
# Cached like the control plane: ~/.cache/orgaccess/node-<key>/bin, keyed by the
# pinned module files and this script; target/node-bin links to it.
# Prints the bin directory on the last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

recipe=1
key=$( (echo "node recipe $recipe"; cat "$here"/k8s-node/go.mod "$here"/k8s-node/go.sum) | sha256sum | cut -c1-16)
cache=${ORGACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orgaccess}
bin="$cache/node-$key/bin"
binaries=(kube-controller-manager kube-scheduler kubelet kube-proxy)

link() {
  mkdir -p "$root/target"
  ln -sfn "$bin" "$root/target/node-bin"
}

if [[ -f "$bin/.complete" ]]; then
  link
  echo "node: cached in $bin" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: Go is required to build the node binaries" >&2; exit 1; }
k8s_version=$(cd "$here/k8s-node" && GOWORK=off GOFLAGS=-mod=mod go list -m -f "{{.Version}}" k8s.io/kubernetes | sed "s/^v//")
minor=$(echo "$k8s_version" | cut -d. -f2)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
stamp="k8s.io/component-base/version"
ldflags="-s -w -X $stamp.gitVersion=v$k8s_version -X $stamp.gitMajor=1 -X $stamp.gitMinor=$minor \
 -X $stamp.gitTreeState=clean -X $stamp.gitCommit=$key -X $stamp.buildDate=1970-01-01T00:00:00Z"
mkdir -p "$bin.tmp"
for b in "${binaries[@]}"; do
  if [[ -x "$bin.tmp/$b" ]]; then continue; fi
  echo "node: building $b v$k8s_version" >&2
  start=$(date +%s)
  (cd "$here/k8s-node" && go build -trimpath -ldflags "$ldflags" -o "$bin.tmp/$b.part" "k8s.io/kubernetes/cmd/$b")
  mv "$bin.tmp/$b.part" "$bin.tmp/$b"
  echo "node: $b built in $(( $(date +%s) - start )) s" >&2
done
touch "$bin.tmp/.complete"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
link
echo "node: built into $bin" >&2
echo "$bin"
