#!/usr/bin/env bash
# Builds Open Policy Agent (pinned) from its Go module once per machine, into
# a cache outside the clone (~/.cache/orgaccess/opa-<version>), and prints the
# binary's path. Used by scripts/decision-bench.sh to compare the decision
# service with OPA on the same questions (docs/performance.md). Go fetches the
# module through its proxy (GOPROXY); nothing else is downloaded.
set -euo pipefail
version=v1.22.4
cache="${ORGACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orgaccess}/opa-$version"
if [[ ! -x "$cache/bin/opa" ]]; then
  command -v go >/dev/null || { echo "error: Go is required to build OPA" >&2; exit 1; }
  echo "building OPA $version into $cache (once; several minutes)" >&2
  mkdir -p "$cache"
  GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$cache/bin.tmp" \
    go install -trimpath -ldflags "-s -w" "github.com/open-policy-agent/opa@$version" >&2
  rm -rf "$cache/bin" && mv "$cache/bin.tmp" "$cache/bin"
fi
echo "$cache/bin/opa"
