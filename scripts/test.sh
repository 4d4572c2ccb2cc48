#!/usr/bin/env bash
# The project's test command (README): builds the local control plane if it is
# missing, then runs every test: unit, property and integration. Integration
# tests start a real etcd + kube-apiserver and fail (never skip) if they cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build-control-plane.sh >/dev/null
bash tools/build-helm.sh >/dev/null
bash tools/build-crane.sh >/dev/null
# kstatus + cel-go checker and lua5.1 for the readiness tests (tests/readiness.rs).
bash tools/build-status.sh >/dev/null
bash tools/install-lua.sh
export ORGACCESS_K8S_BIN="$PWD/target/k8s-bin"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Library, binary and integration tests of every workspace crate (no doc-tests; benches
# are measured with `cargo bench`, see docs/performance.md).
set +e
cargo test --workspace --no-fail-fast --lib --bins --tests -- --test-threads "${ORGACCESS_TEST_THREADS:-4}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
