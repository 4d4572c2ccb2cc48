#!/usr/bin/env bash
# Installs cargo-cyclonedx (pinned; the CycloneDX project's cargo plugin) once per
# machine, cached outside the clone (~/.cache/orgaccess/cargo-cyclonedx), and
# prints the binary's path. scripts/release.sh writes the SBOM with it when it
# is installed.
set -euo pipefail
version=0.5.9
cache="${ORGACCESS_CACHE:-$HOME/.cache/orgaccess}/cargo-cyclonedx"
if [[ ! -x "$cache/bin/cargo-cyclonedx" || "$(cat "$cache/.version" 2>/dev/null)" != "$version" ]]; then
  echo "installing cargo-cyclonedx $version into $cache (once; a few minutes)" >&2
  cargo install --locked --quiet --version "$version" --root "$cache" cargo-cyclonedx >&2
  echo "$version" >"$cache/.version"
fi
echo "$cache/bin/cargo-cyclonedx"
