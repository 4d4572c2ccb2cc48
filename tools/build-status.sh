#!/usr/bin/env bash
# Builds tools/status: the real kstatus library (sigs.k8s.io/cli-utils) and
# cel-go, pinned in tools/status/go.mod, behind a small command the readiness
# tests feed objects from the control plane (tests/operations/readiness.rs).
#
# Same caching as tools/build-helm.sh: the binary goes to a cache outside the
# checkout keyed by a hash of the module files and the recipe, so a fresh clone
# reuses it and a changed pin rebuilds. target/status-bin links to it.
# Prints the bin directory on the last line of stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

recipe=1
key=$( (echo "recipe $recipe"; cat "$here"/status/go.mod "$here"/status/go.sum "$here"/status/main.go) | sha256sum | cut -c1-16)
cache=${ORGACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orgaccess}
bin="$cache/status-$key/bin"

link() {
  mkdir -p "$root/target"
  ln -sfn "$bin" "$root/target/status-bin"
}

if [[ -x "$bin/status" && -f "$bin/.complete" ]]; then
  link
  echo "status: cached in $bin" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: Go is required to build tools/status" >&2; exit 1; }
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
mkdir -p "$bin.tmp"
echo "status: building kstatus + cel-go checker from tools/status (first build takes a few minutes)" >&2
(cd "$here/status" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp/status" .)
[[ -x "$bin.tmp/status" ]] || { echo "error: tools/status was not built" >&2; exit 1; }
touch "$bin.tmp/.complete"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
link
echo "status: built into $bin" >&2
echo "$bin"
