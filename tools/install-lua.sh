#!/usr/bin/env bash
# Installs Debian's lua5.1 (the Lua dialect Argo CD embeds) when missing: the
# tests run deploy/argocd/health.lua with it (tests/operations/readiness.rs).
set -euo pipefail
command -v lua5.1 >/dev/null && exit 0
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }
echo "lua5.1: installing from Debian packages" >&2
as_root apt-get install -y lua5.1 >/dev/null 2>&1 || { as_root apt-get update >/dev/null && as_root apt-get install -y lua5.1 >/dev/null; }
command -v lua5.1 >/dev/null || { echo "error: lua5.1 could not be installed" >&2; exit 1; }
