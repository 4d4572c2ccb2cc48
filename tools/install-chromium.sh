#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver (chromedriver) when missing:
# the access map's browser test (tests/cli/access_map.rs, docs/access-map.md)
# drives headless Chromium over WebDriver. ~1 min on a fresh machine.
set -euo pipefail
have() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }
have && exit 0
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }
echo "chromium: installing chromium, chromium-driver from Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
pkgs=(chromium chromium-driver)
as_root apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
  || { as_root apt-get update >/dev/null && as_root apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; }
have || { echo "error: chromium or chromedriver could not be installed" >&2; exit 1; }
