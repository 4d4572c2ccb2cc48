#!/usr/bin/env bash
# Fails when a generated file differs from what the Rust types generate:
# crds/orgaccess.yaml and the chart's copy. Fix: bash scripts/generate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
# Helm installs a chart's crds/ directory but never upgrades it: the chart's
# copy lives in files/crds/ (templates/crds.yaml), and crds/ must not come back.
if [[ -e charts/orgaccess/crds ]]; then
  echo "error: charts/orgaccess/crds/ exists; the chart's CRDs belong in charts/orgaccess/files/crds/ (see templates/crds.yaml)" >&2
  exit 1
fi
cargo run -q --bin orgaccess -- crds > "$generated"
for committed in crds/orgaccess.yaml charts/orgaccess/files/crds/orgaccess.yaml; do
  if ! diff -u "$committed" "$generated"; then
    echo "error: $committed is out of date; run: bash scripts/generate.sh" >&2
    exit 1
  fi
done
echo "crds/ and the chart's CRDs match the generated CRDs"
