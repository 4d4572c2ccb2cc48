#!/usr/bin/env bash
# Prints the paths of the CRDs of Argo CD's Application and Flux's
# OCIRepository, HelmRepository and HelmRelease, taken from the pinned Go modules
# of argo-cd, source-controller and helm-controller (their repositories' module
# zips hold the CRD manifests), downloaded once into the Go module cache through
# the Go module proxy. scripts/check-chart.sh applies them to its control plane
# and dry-runs examples/install/ against them.
set -euo pipefail
# The newest versions that build with this machine's Go (later ones need Go 1.27).
argocd=github.com/argoproj/argo-cd/v3@v3.5.8
source=github.com/fluxcd/source-controller@v1.9.6
helm=github.com/fluxcd/helm-controller@v1.4.5
dir() {
  GOFLAGS=-mod=mod GOTOOLCHAIN=local GOWORK=off go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}
a=$(dir "$argocd"); s=$(dir "$source"); h=$(dir "$helm")
[[ -n "$a" && -n "$s" && -n "$h" ]] || { echo "error: cannot download $argocd, $source or $helm" >&2; exit 1; }
for f in "$a/manifests/crds/application-crd.yaml" \
  "$s/config/crd/bases/source.toolkit.fluxcd.io_ocirepositories.yaml" \
  "$s/config/crd/bases/source.toolkit.fluxcd.io_helmrepositories.yaml" \
  "$h/config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml"; do
  [[ -f "$f" ]] || { echo "error: $f is missing" >&2; exit 1; }
  echo "$f"
done
