#!/usr/bin/env bash
# Installs Debian's nginx when missing: tests/operations/decision_nginx.rs runs it (as
# the test's own user, from a generated configuration) in front of the
# decision service's auth_request endpoint.
set -euo pipefail
nginx_bin() { command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; }; }
nginx_bin >/dev/null && exit 0
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }
echo "nginx: installing from Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
as_root apt-get install -y --no-install-recommends nginx-light >/dev/null 2>&1 \
  || as_root apt-get install -y --no-install-recommends nginx >/dev/null 2>&1 \
  || { as_root apt-get update >/dev/null && as_root apt-get install -y --no-install-recommends nginx >/dev/null; }
nginx_bin >/dev/null || { echo "error: nginx could not be installed" >&2; exit 1; }
