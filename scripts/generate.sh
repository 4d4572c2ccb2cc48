#!/usr/bin/env bash
# Regenerates every generated file from the Rust types: the CRDs (crds/) and the
# chart's copy of them (charts/orgaccess/files/crds/, which the chart's
# templates/crds.yaml installs and upgrades). CI fails when these differ from what is committed
# (scripts/check-crds.sh); run this after changing an API type.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --bin orgaccess -- crds > crds/orgaccess.yaml
cp crds/orgaccess.yaml charts/orgaccess/files/crds/orgaccess.yaml
echo "generated crds/orgaccess.yaml and charts/orgaccess/files/crds/orgaccess.yaml"
