#!/usr/bin/env bash
# Installs Debian's runc, containerd and CNI plugins (containernetworking-plugins,
# in /usr/lib/cni) when missing: scripts/check-image-runc.sh runs the operator's
# image with runc; the node side of a cluster (docs/control-plane.md, "Pods")
# needs containerd and the plugins too. ~40 s on a fresh machine.
set -euo pipefail
have() { command -v runc >/dev/null && command -v containerd >/dev/null && [[ -x /usr/lib/cni/bridge ]]; }
have && exit 0
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }
echo "node runtime: installing runc, containerd, containernetworking-plugins from Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
pkgs=(runc containerd containernetworking-plugins)
as_root apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
  || { as_root apt-get update >/dev/null && as_root apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; }
have || { echo "error: runc, containerd or the CNI plugins could not be installed" >&2; exit 1; }
