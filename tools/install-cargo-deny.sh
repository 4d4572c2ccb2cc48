#!/usr/bin/env bash
# Installs cargo-deny (pinned) once per machine, cached outside the clone
# (~/.cache/orgaccess/cargo-deny-<version>), and prints the binary's path.
set -euo pipefail
version=0.20.2
cache="${ORGACCESS_CACHE:-$HOME/.cache/orgaccess}/cargo-deny-$version"
if [[ ! -x "$cache/bin/cargo-deny" ]]; then
  echo "installing cargo-deny $version into $cache (once; a few minutes)" >&2
  cargo install --locked --quiet --version "$version" --root "$cache" cargo-deny >&2
fi
echo "$cache/bin/cargo-deny"
