#!/usr/bin/env bash
# Checks the upgrade of the chart from its previous version on a local control
# plane, with the real helm; exits non-zero on any failure.
#
# The previous chart kept the CRDs in crds/, which Helm installs once and never
# upgrades. This chart renders them as templates (templates/crds.yaml), kept on
# uninstall. The check:
#  1. installs the previous chart (from git: ORGACCESS_PREVIOUS_CHART_REF, by
#     default the commit before the one that removed charts/orgaccess/crds/;
#     without that history, this chart rebuilt in the previous layout),
#     and creates an Organization;
#  2. upgrades to this chart, whose CRDs carry a mark the previous ones lack
#     (an extra category, added to a copy of the chart), with --take-ownership
#     (the one-time adoption of CRDs that no release owned: docs/install.md);
#  3. checks the live CRDs carry the mark and the new chart's label, and the
#     Organization is still there; a second upgrade needs no flag;
#  4. uninstalls: the CRDs and the Organization stay.
#
# Starts its own control plane (`control-plane up`) and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { echo; echo "=== check-chart-upgrade: $* ==="; }
fail() { echo "check-chart-upgrade: FAILED: $*" >&2; exit 1; }

release=orgaccess
namespace=orgaccess-system
mark=upgrade-check

bash tools/build-helm.sh >/dev/null
bash tools/build-control-plane.sh >/dev/null
helm="$root/target/helm-bin/helm"
kubectl_bin="$root/target/k8s-bin/kubectl"

work=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-check-chart-upgrade.XXXXXX")
cp_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  if [[ -n "$cp_pid" ]] && kill -0 "$cp_pid" 2>/dev/null; then
    kill -TERM "$cp_pid"
    for _ in $(seq 1 150); do kill -0 "$cp_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$cp_pid" 2>/dev/null
    wait "$cp_pid" 2>/dev/null
  fi
  if [[ $rc -ne 0 ]]; then echo "check-chart-upgrade: work files kept in $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

step "the previous chart"
mkdir -p "$work/previous" "$work/new"
ref=${ORGACCESS_PREVIOUS_CHART_REF:-}
if [[ -z "$ref" ]]; then
  removed=$(git log -1 --diff-filter=D --format=%H -- charts/orgaccess/crds/orgaccess.yaml 2>/dev/null || true)
  [[ -n "$removed" ]] && ref="$removed^"
fi
if [[ -n "$ref" ]]; then
  git archive "$ref" charts/orgaccess | tar -x -C "$work/previous"
  previous="$work/previous/charts/orgaccess"
  echo "previous: $(sed -n 's/^version: //p' "$previous/Chart.yaml") at $(git rev-parse --short "$ref")"
else
  # No history to take it from (a shallow clone, an archive): rebuild the
  # previous layout from this chart, which is what the upgrade is about:
  # CRDs in crds/ (installed once, never upgraded), no CRD templates.
  echo "no commit removed charts/orgaccess/crds/ in this history (a shallow clone?);" \
       "rebuilding the 0.1.0 layout from this chart (set ORGACCESS_PREVIOUS_CHART_REF for the real one)"
  previous="$work/previous/orgaccess"
  cp -r charts/orgaccess "$previous"
  mkdir -p "$previous/crds"
  mv "$previous/files/crds/orgaccess.yaml" "$previous/crds/orgaccess.yaml"
  rm -f "$previous/templates/crds.yaml"
  sed -i 's/^version: .*/version: 0.1.0/' "$previous/Chart.yaml"
fi
[[ -f "$previous/crds/orgaccess.yaml" ]] || fail "the previous chart has no crds/orgaccess.yaml"

# This chart, its CRDs marked: an extra category on every CRD.
cp -r charts/orgaccess "$work/new/"
new="$work/new/orgaccess"
sed -i "s/^    - orgaccess\$/    - orgaccess\\n    - $mark/" "$new/files/crds/orgaccess.yaml"
crd_count=$(grep -c "^kind: CustomResourceDefinition\$" "$new/files/crds/orgaccess.yaml")
[[ $(grep -c "^    - $mark\$" "$new/files/crds/orgaccess.yaml") -eq $crd_count ]] || fail "could not mark the $crd_count CRDs"
new_version=$(sed -n 's/^version: //p' "$new/Chart.yaml")
echo "new: $new_version (CRDs marked with the category $mark)"

step "control plane"
cargo build --quiet -p orgaccess-testenv --bin control-plane
"$root/target/debug/control-plane" up --work-dir "$work/cp" >"$work/control-plane.out" 2>&1 &
cp_pid=$!
for i in $(seq 1 1200); do
  grep -q "control plane ready" "$work/control-plane.out" 2>/dev/null && break
  kill -0 "$cp_pid" 2>/dev/null || { cat "$work/control-plane.out" >&2; fail "the control plane exited"; }
  [[ $i -lt 1200 ]] || { cat "$work/control-plane.out" >&2; fail "the control plane was not ready in 120 s"; }
  sleep 0.1
done
export KUBECONFIG="$work/cp/admin.kubeconfig"
kubectl() { "$kubectl_bin" --cache-dir "$work/kubectl-cache" "$@"; }
categories() { kubectl get crd "$1" -o jsonpath='{.spec.names.categories}'; }
crds=(organizations.orgaccess.dev groups.orgaccess.dev members.orgaccess.dev apikeys.orgaccess.dev)
# This chart's CRDs: the previous ones and the kinds added since.
new_crds=("${crds[@]}" accessreviews.orgaccess.dev)
[[ ${#new_crds[@]} -eq $crd_count ]] || fail "this chart has $crd_count CRDs, the check knows ${#new_crds[@]}"

# No webhook configuration: nothing serves it here (the pods never run), and
# the objects below must be admitted.
step "helm install the previous chart"
"$helm" install "$release" "$previous" --namespace "$namespace" --set webhook.enabled=false >/dev/null
kubectl wait --for condition=established --timeout=60s crd "${crds[@]}" >/dev/null
for crd in "${crds[@]}"; do
  ! grep -q "$mark" <<<"$(categories "$crd")" || fail "$crd already has the mark before the upgrade"
done
kubectl create namespace upgrade-check >/dev/null
kubectl apply -n upgrade-check -f examples/00-organization.yaml >/dev/null
echo "installed; CRDs without the mark; an Organization created"

step "helm upgrade to this chart"
# Helm refuses to take over objects no release owns unless told to.
if "$helm" upgrade "$release" "$new" --namespace "$namespace" --set webhook.enabled=false >/dev/null 2>"$work/adopt.err"; then
  fail "helm upgrade took over the unowned CRDs without --take-ownership (docs/install.md says it is needed)"
fi
grep -q "invalid ownership metadata" "$work/adopt.err" || { cat "$work/adopt.err" >&2; fail "unexpected upgrade failure"; }
echo "without --take-ownership: refused (invalid ownership metadata), as docs/install.md says"
"$helm" upgrade "$release" "$new" --namespace "$namespace" --set webhook.enabled=false --take-ownership >/dev/null
for crd in "${new_crds[@]}"; do
  grep -q "\"$mark\"" <<<"$(categories "$crd")" || fail "$crd was not updated by helm upgrade: categories $(categories "$crd")"
  chart=$(kubectl get crd "$crd" -o jsonpath='{.metadata.labels.helm\.sh/chart}')
  [[ "$chart" == "orgaccess-$new_version" ]] || fail "$crd is labelled chart ${chart:-none}, not orgaccess-$new_version"
done
[[ -n "$(kubectl -n upgrade-check get organizations -o name)" ]] || fail "the Organization is gone after the upgrade"
echo "CRDs updated by helm upgrade (category $mark, chart orgaccess-$new_version); the Organization is still there"
"$helm" upgrade "$release" "$new" --namespace "$namespace" --set webhook.enabled=false >/dev/null \
  || fail "a second upgrade (no --take-ownership) failed"
echo "a further upgrade needs no flag"

step "helm uninstall keeps the CRDs"
"$helm" uninstall "$release" --namespace "$namespace" >/dev/null
for crd in "${new_crds[@]}"; do
  kubectl get crd "$crd" >/dev/null 2>&1 || fail "helm uninstall deleted $crd"
done
[[ -n "$(kubectl -n upgrade-check get organizations -o name)" ]] || fail "the Organization went with the release"
echo "CRDs and the Organization kept after helm uninstall"

echo
echo "check-chart-upgrade: OK"
