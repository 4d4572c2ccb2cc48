#!/usr/bin/env bash
# Builds the release artifacts into dist/ (or $ORGACCESS_DIST):
#
#   orgaccess-VERSION-linux-amd64           the release binary (cargo build --release)
#   orgaccess-image-VERSION.tar             the image (docker load / kind load image-archive /
#                                           k3d image import / crane push), built without a
#                                           Docker daemon by scripts/build-image.sh
#   orgaccess-image-VERSION.oci/            the same image as an OCI image layout
#   orgaccess-image-VERSION.config.json     the image's config (entrypoint, user, labels)
#   orgaccess-CHARTVERSION.tgz              `helm package charts/orgaccess`
#   orgaccess-crds-VERSION.yaml             the CRDs, for installs that manage them apart
#   orgaccess-VERSION.cdx.json              a CycloneDX SBOM, when cargo-cyclonedx is installed
#                                           (tools/install-cargo-cyclonedx.sh); skipped otherwise
#   SHA256SUMS                              sha256sum of every file above
#
# VERSION is the workspace version in Cargo.toml; the chart's appVersion must be
# the same (the chart deploys that image tag by default), or the script stops.
#
# ORGACCESS_RELEASE_BIN=PATH uses that binary instead of building one (the test
# of this script, tests/release.rs, passes the test build's binary).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dist=${ORGACCESS_DIST:-$root/dist}
step() { echo; echo "=== release: $* ===" >&2; }
fail() { echo "release: FAILED: $*" >&2; exit 1; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
chart_version=$(sed -n 's/^version: *//p' charts/orgaccess/Chart.yaml)
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' charts/orgaccess/Chart.yaml)
[[ -n "$version" && -n "$chart_version" ]] || fail "cannot read the versions from Cargo.toml and charts/orgaccess/Chart.yaml"
[[ "$app_version" == "$version" ]] \
  || fail "charts/orgaccess/Chart.yaml appVersion is $app_version but Cargo.toml's version is $version: bump them together"
echo "orgaccess $version, chart $chart_version" >&2
rm -rf "$dist"
mkdir -p "$dist"

step "binary"
if [[ -n "${ORGACCESS_RELEASE_BIN:-}" ]]; then
  bin=$ORGACCESS_RELEASE_BIN
  echo "using $bin" >&2
else
  cargo build --release --locked --bin orgaccess
  bin=$root/target/release/orgaccess
fi
built=$("$bin" --version | awk '{ print $2 }')
[[ "$built" == "$version" ]] || fail "$bin is version $built, not $version"
install -m 0755 "$bin" "$dist/orgaccess-$version-linux-amd64"

step "image (crane, no Docker daemon)"
bash scripts/build-image.sh "$bin" "$version" "$dist" >/dev/null

step "chart"
helm="$(bash tools/build-helm.sh | tail -1)/helm"
"$helm" lint --strict charts/orgaccess >/dev/null
"$helm" package charts/orgaccess --version "$chart_version" --app-version "$version" --destination "$dist" >&2
cp crds/orgaccess.yaml "$dist/orgaccess-crds-$version.yaml"

step "SBOM"
cyclonedx=${ORGACCESS_CACHE:-$HOME/.cache/orgaccess}/cargo-cyclonedx/bin/cargo-cyclonedx
if [[ -x "$cyclonedx" ]]; then
  "$cyclonedx" cyclonedx --format json --spec-version 1.5 --target x86_64-unknown-linux-gnu >&2
  mv orgaccess.cdx.json "$dist/orgaccess-$version.cdx.json"
  # The other crates' SBOMs, written beside their Cargo.toml (not dist/'s).
  find "$root" -name '*.cdx.json' -not -path "$dist/*" -not -path "$root/target/*" -delete
else
  echo "skipped: cargo-cyclonedx is not installed (bash tools/install-cargo-cyclonedx.sh)" >&2
fi

step "checksums"
(cd "$dist" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
cat "$dist/SHA256SUMS" >&2
echo "$dist"
