#!/usr/bin/env bash
# The project's test command (README): builds the local control plane if it is
# missing, then runs every test, unit, property and integration. Integration
# tests start a real etcd + kube-apiserver and fail (never skip) if they cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build-control-plane.sh >/dev/null
export ORGACCESS_K8S_BIN="$PWD/target/k8s-bin"
cargo test -- --test-threads "${ORGACCESS_TEST_THREADS:-4}"
