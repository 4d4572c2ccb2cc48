#!/usr/bin/env bash
# The soak (docs/performance.md "Soak"; tests/webhook/webhook_soak.rs, ignored by `cargo test`):
# SECONDS (default 600) of mixed hostile traffic at the real webhook process
# while a client creates Groups through the apiserver, after a quiet baseline.
# Prints a Markdown table of the figures (docs/performance.md, "Soak").
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
bash tools/build-control-plane.sh >/dev/null
export ORGACCESS_K8S_BIN="$PWD/target/k8s-bin"
profile=()
[[ "${ORGACCESS_SOAK_RELEASE:-0}" == 1 ]] && profile=(--release)
ORGACCESS_SOAK_SECONDS=$seconds cargo test "${profile[@]}" --test webhook webhook_soak:: -- --ignored --nocapture 2>&1 \
  | grep -E '^(##|\|)|test result|panicked|genuine requests failed'
