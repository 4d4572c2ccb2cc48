#!/usr/bin/env bash
# Fails when crds/ differs from what the binary generates (run `cargo run -- crds > crds/orgaccess.yaml`).
set -euo pipefail
cd "$(dirname "$0")/.."
generated=$(mktemp)
cargo run -q -- crds > "$generated"
if ! diff -u crds/orgaccess.yaml "$generated"; then
  echo "error: crds/orgaccess.yaml is out of date; run: cargo run -- crds > crds/orgaccess.yaml" >&2
  exit 1
fi
echo "crds/ matches the generated CRDs"
