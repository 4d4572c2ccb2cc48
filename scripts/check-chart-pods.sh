#!/usr/bin/env bash
# The chart installed for real, on a cluster whose kubelet runs its pods
# (scripts/node-cluster.sh: kube-apiserver, controller-manager, scheduler,
# kubelet, kube-proxy, containerd + runc), with the image scripts/build-image.sh
# builds from ORGACCESS_BIN (default target/debug/orgaccess), imported into
# containerd:
#
#   1. `helm install` with the defaults: both pods Running and Ready (probes,
#      mounts, the restricted profile enforced on the namespace);
#   2. the apiserver calls the webhook through the Service (kube-proxy): a
#      change the catalog refuses comes back with orgaccess's message, and
#      examples/ are reconciled by the in-cluster operator;
#   3. the leader's pod is deleted: the other replica takes the Lease;
#   4. `helm upgrade` to another image tag rolls both pods (maxUnavailable 0,
#      the PodDisruptionBudget) with no admission refused meanwhile;
#   5. `helm uninstall` keeps the CRDs and the organization.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
step() { echo; echo "=== check-chart-pods: $* ==="; }
fail() { echo "check-chart-pods: FAILED: $*" >&2; exit 1; }

bin=${ORGACCESS_BIN:-$root/target/debug/orgaccess}
[[ -x "$bin" ]] || fail "$bin is not built"
work=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-pods.XXXXXX")
cluster="$work/cluster"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  bash scripts/node-cluster.sh down "$cluster"
  if [[ $rc -ne 0 ]]; then echo "check-chart-pods: work files kept in $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

helm="$(bash tools/build-helm.sh | tail -1)/helm"
k8s="$(bash tools/build-control-plane.sh | tail -1)"
in_cluster() { bash scripts/node-cluster.sh run "$cluster" "$@"; }
kubectl() { in_cluster "$k8s/kubectl" "$@"; }
helm() { in_cluster "$helm" "$@"; }

step "cluster"
started=$(date +%s)
bash scripts/node-cluster.sh up "$cluster" >/dev/null
echo "node Ready in $(( $(date +%s) - started )) s"

step "image"
version=$("$bin" --version | awk '{ print $2 }')
bash scripts/build-image.sh "$bin" "$version" "$work/image" >/dev/null
# The same image under a second tag, for the upgrade.
bash scripts/node-cluster.sh import "$cluster" "$work/image/orgaccess-image-$version.tar" orgaccess:"$version" orgaccess:"$version-b"
echo "imported orgaccess:$version and orgaccess:$version-b into containerd"

ns=orgaccess-system release=orgaccess
step "helm install (defaults): pods Running and Ready"
kubectl create namespace "$ns" >/dev/null
kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
started=$(date +%s)
helm install "$release" charts/orgaccess --namespace "$ns" \
  --set image.repository=docker.io/library/orgaccess --set image.tag="$version" --set image.pullPolicy=Never >/dev/null
kubectl -n "$ns" rollout status deployment/"$release" --timeout=300s >/dev/null \
  || { kubectl -n "$ns" get pods -o wide >&2; kubectl -n "$ns" describe pods >&2; fail "the Deployment did not roll out"; }
ready=$(kubectl -n "$ns" get pods -l app.kubernetes.io/instance="$release" \
  -o jsonpath='{range .items[*]}{.status.phase}/{.status.conditions[?(@.type=="Ready")].status} {end}')
[[ "$ready" == "Running/True Running/True " ]] || fail "pods: $ready"
echo "2 pods Running and Ready in $(( $(date +%s) - started )) s"

step "the apiserver calls the webhook through the Service"
kubectl create namespace acme >/dev/null
# Ready pods are in the Service's EndpointSlice at once, but kube-proxy programs
# them on its next sync: until then the apiserver's call is refused
# ("failed calling webhook ... connection refused"), as in any cluster.
for _ in $(seq 1 60); do
  if out=$(kubectl apply -f tests/golden/bad/custom-not-offered.yaml 2>&1); then fail "the catalog's refusal was admitted: $out"; fi
  grep -q "failed calling webhook" <<<"$out" || break
  sleep 0.5
done
grep -q 'admission webhook "validate.orgaccess.dev" denied the request' <<<"$out" || fail "unexpected answer: $out"
grep -q "CatalogValidity" <<<"$out" || fail "unexpected answer: $out"
echo "denied: $(grep -o 'denied the request.*' <<<"$out" | head -1 | cut -c1-160)"
kubectl -n acme apply -f examples/ >/dev/null
for _ in $(seq 1 300); do
  r=$(kubectl -n acme get members,apikeys -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}')
  [[ "$r" == "True True True True True " ]] && break
  sleep 1
done
[[ "$r" == "True True True True True " ]] || fail "examples/ not reconciled by the in-cluster operator (Ready: $r)"
echo "examples/ reconciled by the in-cluster operator"

step "delete the leader's pod: the other replica takes the Lease"
leader=$(kubectl -n "$ns" get lease "$release-controller" -o jsonpath='{.spec.holderIdentity}')
[[ -n "$leader" ]] || fail "no Lease holder"
kubectl -n "$ns" delete pod "$leader" --grace-period=0 --force >/dev/null 2>&1 || true
for _ in $(seq 1 120); do
  holder=$(kubectl -n "$ns" get lease "$release-controller" -o jsonpath='{.spec.holderIdentity}')
  [[ -n "$holder" && "$holder" != "$leader" ]] && break
  sleep 1
done
[[ -n "$holder" && "$holder" != "$leader" ]] || fail "the Lease stayed with ${holder:-nobody} after deleting $leader"
echo "Lease: $leader -> $holder"

step "helm upgrade to another tag rolls without a refused admission"
( for i in $(seq 1 60); do
    kubectl -n acme annotate group --all --overwrite "check/rolling=$i" >/dev/null 2>>"$work/refused" || echo "refused at $i" >>"$work/refused"
    sleep 1
  done ) &
writer=$!
helm upgrade "$release" charts/orgaccess --namespace "$ns" --reuse-values --set image.tag="$version-b" >/dev/null
kubectl -n "$ns" rollout status deployment/"$release" --timeout=300s >/dev/null || fail "the upgrade did not roll out"
kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true
# The old pods terminate (their grace period) after the new ones are ready.
want="docker.io/library/orgaccess:$version-b docker.io/library/orgaccess:$version-b "
for _ in $(seq 1 90); do
  images=$(kubectl -n "$ns" get pods -l app.kubernetes.io/instance="$release" -o jsonpath='{range .items[*]}{.spec.containers[0].image}{" "}{end}')
  [[ "$images" == "$want" ]] && break
  sleep 1
done
[[ "$images" == "$want" ]] || fail "pods after the upgrade: $images"
[[ ! -s "$work/refused" ]] || fail "changes were refused during the rollout: $(cat "$work/refused")"
echo "rolled to $version-b; no change refused during the rollout"

step "helm uninstall keeps the CRDs and the organization"
helm uninstall "$release" --namespace "$ns" >/dev/null
[[ $(kubectl get crd -o name | grep -c '\.orgaccess\.dev$') -eq 5 ]] || fail "helm uninstall deleted CRDs"
[[ -n "$(kubectl -n acme get organizations -o name)" ]] || fail "the organization went with the release"
echo "CRDs and the organization kept"

echo
echo "check-chart-pods: OK"
