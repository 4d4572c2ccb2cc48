#!/usr/bin/env bash
# Builds go-containerregistry's crane from the Go module pinned in tools/crane
# (only the Go module proxy is needed). scripts/release.sh uses it to build the
# operator's OCI image without a Docker daemon.
#
# Same caching as tools/build-helm.sh: the binary goes to a cache outside the
# checkout, keyed by a hash of tools/crane/go.mod, go.sum and the recipe below,
# so a fresh clone on the same machine reuses it and a changed pin rebuilds.
# target/crane-bin is a symlink to that cache directory.
# Prints the bin directory on the last line of stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

# Bump when the build recipe (flags) changes so caches are rebuilt.
recipe=1
key=$( (echo "recipe $recipe"; cat "$here"/crane/go.mod "$here"/crane/go.sum) | sha256sum | cut -c1-16)
cache=${ORGACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orgaccess}
bin="$cache/crane-$key/bin"

link() {
  mkdir -p "$root/target"
  ln -sfn "$bin" "$root/target/crane-bin"
}

if [[ -x "$bin/crane" && -f "$bin/.complete" ]]; then
  link
  echo "crane: cached in $bin" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: Go is required to build crane (apt-get install golang or use the machine's Go)" >&2; exit 1; }

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
version=$(cd "$here/crane" && go list -m -f "{{.Version}}" github.com/google/go-containerregistry)
[[ -n "$version" ]] || { echo "error: cannot read the go-containerregistry version from tools/crane/go.mod" >&2; exit 1; }
mkdir -p "$bin.tmp"
echo "crane: building $version from its Go module (about a minute)" >&2
(cd "$here/crane" && go build -trimpath -ldflags "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$version" \
  -o "$bin.tmp/crane" github.com/google/go-containerregistry/cmd/crane)
[[ -x "$bin.tmp/crane" ]] || { echo "error: crane was not built" >&2; exit 1; }
touch "$bin.tmp/.complete"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
link
echo "crane: built into $bin" >&2
echo "$bin"
