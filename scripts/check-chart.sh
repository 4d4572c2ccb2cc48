#!/usr/bin/env bash
# Checks the Helm chart in charts/orgaccess; exits non-zero on any failure.
#
#  1. charts/orgaccess/files/crds/ is identical to crds/ (the generated CRDs),
#     and there is no crds/ directory in the chart (Helm would never upgrade it);
#  2. `helm lint --strict` for the default values and each variant below, and
#     values.schema.json refusing a misspelt value;
#  3. `helm template | kubectl apply --dry-run=server` against a real
#     kube-apiserver, for:
#       - the default values (self-signed webhook certificate),
#       - certManager.enabled=true: the cert-manager.io kinds (Certificate,
#         Issuer) are left out of the server dry-run, because cert-manager's CRDs
#         are not installed on the local control plane; they are checked to be
#         rendered, and the webhook configuration to carry the CA-injection
#         annotation and no caBundle,
#       - webhook.enabled=false with one replica (no Secret, no webhook
#         configuration, no PodDisruptionBudget),
#       - operator.watchNamespace=default (a RoleBinding, the webhook limited
#         to that namespace),
#       - crds.install=false (no CRD rendered; the default renders the five,
#         annotated helm.sh/resource-policy: keep and, against Argo CD's
#         pruning, argocd.argoproj.io/sync-options: Prune=false,Delete=false),
#       - the decision service on (its port is not the webhook's: every
#         variant's container ports are distinct, and a clash is refused),
#       - global values of an umbrella chart (global.imageRegistry and
#         global.imagePullSecrets used, other global keys and `enabled`
#         accepted), and the common pass-through keys (commonLabels,
#         extraObjects, extraVolumes, extraVolumeMounts, deployment and pod
#         annotations and labels, webhook.annotations...), each checked in the
#         render,
#       - the chart as a dependency of an umbrella chart with
#         `condition: orgaccess.enabled` (rendered on and off);
#     and NOTES.txt names the Lease the Deployment uses, for a release not
#     named orgaccess; kubeVersion refuses 1.30 (the CRDs' CEL needs 1.31);
#     the release namespace is labelled pod-security.kubernetes.io/warn=restricted
#     so a pod template that breaks the restricted profile fails the check;
#  4. static checks of the render: no wildcard in RBAC rules, the webhook's
#     caBundle is the CA in the certificate Secret, the examples/ manifests pass
#     a server dry-run against the CRDs;
#  5. on the local control plane only: `helm install`, then `helm upgrade`
#     keeps the self-signed certificate (read back with `lookup`), and the
#     ValidatingAdmissionPolicy really denies deleting or editing the
#     Administrators group and creating built-in groups; then the operator
#     runs with only the chart's RBAC (its cluster-admin binding removed),
#     reconciles examples/ and is refused nothing; then `helm uninstall`, which
#     leaves the CRDs (and the objects) in place. The install takes over the
#     CRDs applied with kubectl for the dry runs (`--take-ownership`, the
#     documented way to move CRDs under the release). The upgrade from the
#     previous chart version is scripts/check-chart-upgrade.sh.
#
# Cluster: with KUBECONFIG set, that cluster is used for the dry runs only
# (nothing is created; the CRDs are dry-run too, and step 5 is skipped); the
# release namespace, ORGACCESS_CHART_NAMESPACE (default orgaccess-system), must
# exist there. Without KUBECONFIG a local control plane is started
# (`control-plane up` from crates/testenv, building it first if needed) and stopped at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { echo; echo "=== check-chart: $* ==="; }
fail() { echo "check-chart: FAILED: $*" >&2; exit 1; }

chart=charts/orgaccess
release=orgaccess
namespace=${ORGACCESS_CHART_NAMESPACE:-orgaccess-system}

step "tools (helm, kubectl)"
bash tools/build-helm.sh >/dev/null
bash tools/build-control-plane.sh >/dev/null
helm="$root/target/helm-bin/helm"
kubectl_bin="$root/target/k8s-bin/kubectl"
"$helm" version --short

work=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-check-chart.XXXXXX")
cp_pid=""
op_pid=""
# shellcheck source=scripts/lib/plane.sh
source "$root/scripts/lib/plane.sh"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  trap '' PIPE
  set +e
  stop_pid "$op_pid"
  stop_pid "$cp_pid"
  if [[ $rc -ne 0 ]]; then
    echo "check-chart: work files kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

step "chart CRDs are crds/orgaccess.yaml"
diff -u crds/orgaccess.yaml "$chart/files/crds/orgaccess.yaml" >/dev/null \
  || fail "$chart/files/crds/orgaccess.yaml differs from crds/orgaccess.yaml; run: bash scripts/generate.sh"
[[ ! -e "$chart/crds" ]] || fail "$chart/crds/ exists: Helm never upgrades it; the CRDs are templates (templates/crds.yaml)"
echo "identical"

# The common pass-through keys, each set to something the checks below find.
cat >"$work/pass-through.values.yaml" <<'YAML'
commonLabels: {team: platform}
deploymentAnnotations: {reloader.stakater.com/auto: "true"}
deploymentLabels: {tier: control}
podAnnotations: {example.com/pod: annotated}
podLabels: {example.com/pod: labelled}
revisionHistoryLimit: 3
webhook:
  annotations: {example.com/webhook: annotated}
service:
  labels: {example.com/service: labelled}
serviceAccount:
  labels: {example.com/sa: labelled}
crds:
  annotations: {example.com/crd: annotated}
operator:
  extraEnvFrom: [{configMapRef: {name: pass-through-env, optional: true}}]
extraVolumes: [{name: extra-ca, configMap: {name: pass-through-ca, optional: true}}]
extraVolumeMounts: [{name: extra-ca, mountPath: /etc/extra-ca, readOnly: true}]
hostAliases: [{ip: 10.0.0.10, hostnames: [idp.internal]}]
dnsConfig: {options: [{name: ndots, value: "2"}]}
extraObjects:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: '{{ include "orgaccess.fullname" . }}-extra', namespace: '{{ .Release.Namespace }}'}
    data: {from: extraObjects}
  - |
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}-extra-string
      namespace: {{ .Release.Namespace }}
    data: {from: a string}
YAML

# name|helm --set arguments
variants=(
  "default|"
  "cert-manager|--set certManager.enabled=true"
  "cert-manager-issuer|--set certManager.enabled=true --set certManager.issuerRef.kind=ClusterIssuer --set certManager.issuerRef.name=internal-ca"
  "no-webhook|--set webhook.enabled=false --set replicaCount=1"
  "watch-namespace|--set operator.watchNamespace=default"
  "client-auth|--set webhook.clientAuth.enabled=true --set webhook.clientAuth.caConfigMap=apiserver-client-ca --set activityFile.enabled=true"
  "subchart-global|--set global.imageRegistry=mirror.example.com:5000 --set global.imagePullSecrets[0]=mirror-pull --set imagePullSecrets[0].name=own-pull --set global.imagePullSecrets[1].name=own-pull --set global.anything.nested=true --set enabled=true"
  "pass-through|-f $work/pass-through.values.yaml"
  "service-monitor|--set serviceMonitor.enabled=true --set serviceMonitor.interval=30s --set serviceMonitor.labels.release=prometheus"
  "no-crds|--set crds.install=false"
  "no-admission-policy|--set admissionPolicy.enabled=false"
  "no-status-policy|--set admissionPolicy.status.enabled=false"
  "allow-from-aks|--set webhook.allowFrom.preset=aks --set networkPolicy.webhookFrom[0].ipBlock.cidr=10.1.0.0/16"
  "allow-from-gke|--set webhook.allowFrom.preset=gke --set webhook.allowFrom.cidrs={172.16.0.0/28}"
  "decision|--set decision.https.enabled=true --set decision.https.tlsSecretName=decision-tls --set decision.https.clientCASecretName=decision-client-ca --set decision.https.allow={gateway=default} --set decision.nginx.enabled=true --set decision.nginx.namespaces={default} --set decision.defaultNamespace=default"
  "decision-tokens|--set decision.https.enabled=true --set decision.https.tlsSecretName=decision-tls --set decision.https.tokenReview.enabled=true --set decision.https.tokenReview.audiences={orgaccess} --set decision.https.allow={system:serviceaccount:shop:frontend=shop}"
)

step "helm lint"
for v in "${variants[@]}"; do
  name=${v%%|*}; args=${v#*|}
  echo "--- $name"
  # shellcheck disable=SC2086
  "$helm" lint --strict "$chart" --namespace "$namespace" $args
done

step "a listener port clash is refused"
if "$helm" template "$release" "$chart" --set decision.https.enabled=true --set decision.https.tlsSecretName=t \
  --set decision.https.clientCASecretName=c --set decision.https.port=8443 >/dev/null 2>"$work/clash.err"; then
  fail "decision.https.port=8443 (the webhook's port) was accepted"
fi
grep -q "webhook.port and decision.https.port are both 8443" "$work/clash.err" || fail "unexpected error: $(cat "$work/clash.err")"
echo "refused: $(grep -o 'webhook.port and decision.https.port are both 8443[^"]*' "$work/clash.err" | head -1)"

step "kubeVersion: 1.31 or newer (the CRDs' CEL calls isCIDR/isIP)"
grep -q "isCIDR" crds/orgaccess.yaml || fail "the CRDs no longer use isCIDR: revisit kubeVersion in Chart.yaml"
if "$helm" template "$release" "$chart" --kube-version 1.30.9 >/dev/null 2>"$work/kube.err"; then
  fail "the chart renders for Kubernetes 1.30"
fi
grep -q "incompatible with Kubernetes v1.30.9" "$work/kube.err" || fail "unexpected error: $(cat "$work/kube.err")"
"$helm" template "$release" "$chart" --kube-version 1.31.0 >/dev/null || fail "the chart refuses Kubernetes 1.31.0"
echo "refused for 1.30.9, accepted for 1.31.0"

step "values.schema.json refuses a misspelt value and a bad choice"
for bad in "replicas=3" "webhook.failurePolicy=Never"; do
  if "$helm" template "$release" "$chart" --set "$bad" >/dev/null 2>"$work/schema.err"; then
    fail "--set $bad was accepted"
  fi
  echo "refused --set $bad: $(grep -m1 "at '" "$work/schema.err" | sed 's/^ *- //')"
done

step "cluster"
own_cluster=false
if [[ -n "${KUBECONFIG:-}" ]]; then
  echo "using KUBECONFIG=$KUBECONFIG (dry runs only)"
else
  own_cluster=true
  bin=${ORGACCESS_BIN:-$root/target/debug/orgaccess}
  if [[ ! -x "$bin" ]]; then
    echo "building the orgaccess binary (cargo build)"
    cargo build --quiet --bin orgaccess
  fi
  cargo build --quiet -p orgaccess-testenv --bin control-plane
  echo "starting a local control plane in $work/cp"
  "$root/target/debug/control-plane" up --work-dir "$work/cp" >"$work/control-plane.out" 2>&1 &
  cp_pid=$!
  for i in $(seq 1 1200); do
    grep -q "control plane ready" "$work/control-plane.out" 2>/dev/null && break
    kill -0 "$cp_pid" 2>/dev/null || { cat "$work/control-plane.out" >&2; fail "the control plane exited"; }
    [[ $i -lt 1200 ]] || { cat "$work/control-plane.out" >&2; fail "the control plane was not ready in 120 s"; }
    sleep 0.1
  done
  export KUBECONFIG="$work/cp/admin.kubeconfig"
fi
kubectl() { "$kubectl_bin" --cache-dir "$work/kubectl-cache" "$@"; }
version_json=$(kubectl version -o json)
server_version=$(sed -n '/"serverVersion"/,/}/s/.*"gitVersion": *"\([^"]*\)".*/\1/p' <<<"$version_json")
[[ -n "$server_version" ]] || fail "cannot read the server version"
echo "kube-apiserver $server_version"
kubectl get namespace "$namespace" >/dev/null \
  || fail "namespace $namespace does not exist (set ORGACCESS_CHART_NAMESPACE to an existing one)"

step "CRDs"
if $own_cluster; then
  kubectl apply --server-side --field-manager=check-chart -f crds/
  kubectl wait --for condition=established --timeout=60s -f crds/
  # Warnings name pod-template fields that break the restricted profile.
  kubectl label --overwrite namespace "$namespace" \
    pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/warn-version=latest >/dev/null
else
  kubectl apply --server-side --dry-run=server --field-manager=check-chart -f crds/
fi

# Splits a multi-document render into $2 (documents whose apiVersion matches
# the regex $3) and $4 (the others).
split_docs() {
  awk -v pat="$3" -v yes="$2" -v no="$4" '
    function flush() { if (has_kind) { printf "---\n%s", doc > (match_ ? yes : no) }; doc = ""; match_ = 0; has_kind = 0 }
    /^---/ { flush(); next }
    { doc = doc $0 "\n"; if ($0 ~ "^apiVersion: " pat) match_ = 1; if ($0 ~ /^kind: /) has_kind = 1 }
    END { flush() }' "$1"
  touch "$2" "$4"
}

# Prints the documents of kind $2 from the render $1.
docs_of_kind() {
  awk -v kind="$2" '
    function flush() { if (doc != "" && k == kind) printf "%s---\n", doc; doc = ""; k = "" }
    /^---/ { flush(); next }
    { doc = doc $0 "\n"; if ($0 ~ /^kind: /) { k = $2 } }
    END { flush() }' "$1"
}

dry_run() {
  local file=$1 label=$2
  if ! kubectl apply --dry-run=server --field-manager=check-chart -f "$file" >"$work/$label.dry-run.out" 2>&1; then
    cat "$work/$label.dry-run.out" >&2
    fail "server dry-run of $label"
  fi
  cat "$work/$label.dry-run.out"
  if grep -qi "would violate PodSecurity" "$work/$label.dry-run.out"; then
    fail "$label: the pod template breaks the restricted Pod Security profile"
  fi
}

step "helm template | kubectl apply --dry-run=server"
for v in "${variants[@]}"; do
  name=${v%%|*}; args=${v#*|}
  echo "--- $name"
  out="$work/$name.yaml"
  # shellcheck disable=SC2086
  "$helm" template "$release" "$chart" --namespace "$namespace" --kube-version "$server_version" $args >"$out"
  # Kinds of operators not installed here (cert-manager, Prometheus Operator)
  # are checked as rendered, not dry-run.
  split_docs "$out" "$work/$name.cert-manager.yaml" '(cert-manager\\.io|monitoring\\.coreos\\.com)/' "$work/$name.core.yaml"
  dry_run "$work/$name.core.yaml" "$name"

  # RBAC: no wildcard anywhere in the rules.
  for kind in ClusterRole Role; do
    if grep -E '^\s*(-\s*)?(verbs|resources|apiGroups|resourceNames):.*"\*"|^\s*-\s*"?\*"?\s*$' <<<"$(docs_of_kind "$work/$name.core.yaml" "$kind")"; then
      fail "$name: wildcard in a $kind"
    fi
  done
  grep -q "fieldPath: metadata.name" <<<"$(docs_of_kind "$out" Deployment)" || fail "$name: POD_NAME is not set from the downward API"
  # Every listener on its own port (a clash crash-loops the pod).
  ports=$(docs_of_kind "$out" Deployment | sed -n 's/^ *containerPort: //p')
  [[ -z "$(sort <<<"$ports" | uniq -d)" ]] || fail "$name: two listeners on one container port: $(tr '\n' ' ' <<<"$ports")"

  case "$name" in
    default)
      ca=$(docs_of_kind "$out" Secret | awk '/^---/ { p = 0 } /^  name: .*-webhook-tls$/ { p = 1 } p && /^  ca.crt: / { print $2 }')
      bundle=$(docs_of_kind "$out" ValidatingWebhookConfiguration | sed -n 's/^ *caBundle: //p')
      [[ -n "$ca" && "$ca" == "$bundle" ]] || fail "default: the webhook caBundle is not the CA in the certificate Secret"
      grep -q "minAvailable: 1" <<<"$(docs_of_kind "$out" PodDisruptionBudget)" || fail "default: no PodDisruptionBudget with minAvailable 1"
      [[ ! -s "$work/$name.cert-manager.yaml" ]] || fail "default: cert-manager objects rendered"
      echo "caBundle matches the Secret's ca.crt"
      # Client certificates asked of every caller, required of none; the
      # apiserver's certificate made by the chart.
      dep=$(docs_of_kind "$out" Deployment)
      grep -q -- "- --webhook-client-optional=true" <<<"$dep" || fail "default: client certificates are not asked for"
      grep -q "secretName: $release-webhook-client" <<<"$dep" || fail "default: the generated client CA is not mounted"
      client=$(docs_of_kind "$out" Secret | awk '/^---/ { p = 0 } /^  name: .*-webhook-client$/ { p = 1 } p && /^  tls.crt: / { print $2 }')
      [[ "$(base64 -d <<<"$client" | openssl x509 -noout -subject 2>/dev/null)" == *"CN = kube-apiserver"* ]] \
        || fail "default: no client certificate with CN kube-apiserver for the apiserver"
      echo "client certificate for the apiserver generated (CN kube-apiserver), asked of every caller"
      grep -q "sideEffects: NoneOnDryRun" <<<"$(docs_of_kind "$out" ValidatingWebhookConfiguration)" \
        || fail "default: the webhook does not declare sideEffects NoneOnDryRun (it records Events)"
      grep -q -- "- --lease-name=$release-controller" <<<"$(docs_of_kind "$out" Deployment)" \
        || fail "default: the Lease is not named after the release"
      grep -q -- "- --metrics-namespace-labels=false" <<<"$(docs_of_kind "$out" Deployment)" \
        || fail "default: /metrics would name the organizations' namespaces"
      grep -q "name: $release-status" <<<"$(docs_of_kind "$out" ValidatingAdmissionPolicy)" \
        || fail "default: no status policy"
      grep -q "\"$release-controller\"" <<<"$(docs_of_kind "$out" Role)" || fail "default: the Role does not name the release's Lease"
      crds=$(docs_of_kind "$out" CustomResourceDefinition)
      [[ $(grep -c "helm.sh/resource-policy: keep" <<<"$crds") -eq 5 ]] \
        || fail "default: the five CRDs are not rendered with helm.sh/resource-policy: keep"
      [[ $(grep -c "argocd.argoproj.io/sync-options: Prune=false,Delete=false" <<<"$crds") -eq 5 ]] \
        || fail "default: the five CRDs are not protected from Argo CD's pruning"
      echo "CRDs rendered as templates, kept on uninstall"
      ;;
    decision*)
      dep=$(docs_of_kind "$out" Deployment)
      grep -q -- "- --decision-addr=0.0.0.0:9443" <<<"$dep" || fail "$name: the decision service is not on 9443"
      grep -q -- "- --webhook-addr=0.0.0.0:8443" <<<"$dep" || fail "$name: the webhook is not on 8443"
      echo "decision service on 9443, webhook on 8443: container ports $(tr '\n' ' ' <<<"$ports")"
      ;;
    subchart-global)
      dep=$(docs_of_kind "$out" Deployment)
      grep -q 'image: "mirror.example.com:5000/orgaccess:' <<<"$dep" || fail "$name: global.imageRegistry not used: $(grep 'image:' <<<"$dep")"
      secrets=$(sed -n '/imagePullSecrets:/,/^      [a-z]/s/^ *- name: //p' <<<"$dep" | tr '\n' ' ')
      [[ "$secrets" == "mirror-pull own-pull " ]] || fail "$name: imagePullSecrets are '$secrets', not the global then the chart's, once each"
      echo "global.imageRegistry and global.imagePullSecrets used: image $(sed -n 's/^ *image: //p' <<<"$dep"), pull secrets $secrets"
      ;;
    pass-through)
      # Every object of the chart's own (the two extraObjects are the user's, as written).
      total=$(( $(grep -c '^kind: ' "$out") - 2 )); labelled=$(grep -c '^    team: platform$' "$out" || true)
      [[ "$labelled" -eq "$total" ]] || fail "$name: commonLabels on $labelled of $total objects"
      dep=$(docs_of_kind "$out" Deployment)
      for want in "reloader.stakater.com/auto: \"true\"" "tier: control" "example.com/pod: annotated" "example.com/pod: labelled" \
        "        team: platform" "revisionHistoryLimit: 3" "name: pass-through-env" "mountPath: /etc/extra-ca" \
        "name: pass-through-ca" "- idp.internal" "name: ndots"; do
        grep -qF -- "$want" <<<"$dep" || fail "$name: the Deployment lacks '$want'"
      done
      for kind in ValidatingWebhookConfiguration MutatingWebhookConfiguration; do
        grep -q "example.com/webhook: annotated" <<<"$(docs_of_kind "$out" "$kind")" || fail "$name: webhook.annotations not on the $kind"
      done
      grep -q "example.com/service: labelled" <<<"$(docs_of_kind "$out" Service)" || fail "$name: service.labels not used"
      grep -q "example.com/sa: labelled" <<<"$(docs_of_kind "$out" ServiceAccount)" || fail "$name: serviceAccount.labels not used"
      [[ $(grep -c "example.com/crd: annotated" <<<"$(docs_of_kind "$out" CustomResourceDefinition)") -eq 5 ]] || fail "$name: crds.annotations not used"
      cms=$(docs_of_kind "$out" ConfigMap)
      grep -Eq "name: '?$release-extra'?$" <<<"$cms" && grep -q "name: $release-extra-string$" <<<"$cms" \
        || fail "$name: extraObjects (an object and a string, through tpl) not rendered: $cms"
      echo "pass-through keys used: commonLabels on all $total objects, deployment and pod metadata, extra volumes, env, hosts, DNS, webhook, Service, ServiceAccount and CRD metadata, extraObjects"
      ;;
    no-crds)
      [[ -z "$(docs_of_kind "$out" CustomResourceDefinition)" ]] || fail "$name: CRDs rendered although crds.install=false"
      ;;
    no-admission-policy)
      # The invariants go; the status policy stays (its own switch).
      policies=$(docs_of_kind "$out" ValidatingAdmissionPolicy)
      ! grep -q "name: $release-invariants" <<<"$policies" || fail "$name: the invariants policy rendered"
      grep -q "name: $release-status" <<<"$policies" || fail "$name: the status policy is gone with admissionPolicy.enabled=false"
      grep -q "policyName: $release-status" <<<"$(docs_of_kind "$out" ValidatingAdmissionPolicyBinding)" \
        || fail "$name: the status policy's binding is gone"
      echo "status policy installed without admissionPolicy.enabled"
      ;;
    allow-from-aks)
      np=$(docs_of_kind "$out" NetworkPolicy)
      grep -q "app: konnectivity-agent" <<<"$np" && grep -q "cidr: 10.1.0.0/16" <<<"$np" \
        || fail "$name: the AKS preset or networkPolicy.webhookFrom is missing from the NetworkPolicy: $np"
      echo "webhook.allowFrom presets rendered into the NetworkPolicy"
      ;;
    allow-from-gke)
      grep -q "cidr: 172.16.0.0/28" <<<"$(docs_of_kind "$out" NetworkPolicy)" || fail "$name: the control plane's CIDR is missing"
      if "$helm" template "$release" "$chart" --set webhook.allowFrom.preset=eks >/dev/null 2>&1; then
        fail "webhook.allowFrom.preset=eks without cidrs was accepted"
      fi
      ;;
    no-status-policy)
      policies=$(docs_of_kind "$out" ValidatingAdmissionPolicy)
      ! grep -q "name: $release-status" <<<"$policies" || fail "$name: the status policy rendered although switched off"
      grep -q "name: $release-invariants" <<<"$policies" || fail "$name: the invariants policy is gone"
      ;;
    service-monitor)
      sm=$(docs_of_kind "$work/$name.cert-manager.yaml" ServiceMonitor)
      [[ -n "$sm" ]] || fail "$name: no ServiceMonitor rendered"
      grep -q "port: metrics" <<<"$sm" && grep -q "interval: 30s" <<<"$sm" && grep -q "release: prometheus" <<<"$sm" \
        || fail "$name: the ServiceMonitor lacks the port, interval or labels: $sm"
      echo "ServiceMonitor rendered (not dry-run: the Prometheus Operator's CRDs are not installed)"
      ;;
    cert-manager*)
      grep -q "^kind: Certificate" "$work/$name.cert-manager.yaml" || fail "$name: no Certificate rendered"
      if [[ "$name" == cert-manager ]]; then
        grep -q "^kind: Issuer" "$work/$name.cert-manager.yaml" || fail "$name: no Issuer rendered"
      else
        ! grep -q "^kind: Issuer" "$work/$name.cert-manager.yaml" || fail "$name: an Issuer rendered although issuerRef is set"
        grep -q "kind: ClusterIssuer" "$work/$name.cert-manager.yaml" || fail "$name: issuerRef not used"
      fi
      vwc=$(docs_of_kind "$out" ValidatingWebhookConfiguration)
      grep -q "cert-manager.io/inject-ca-from: $namespace/$release-webhook" <<<"$vwc" || fail "$name: no cainjector annotation"
      ! grep -q "caBundle" <<<"$vwc" || fail "$name: caBundle set although cainjector fills it"
      ! grep -q "name: $release-webhook-tls" <<<"$(docs_of_kind "$out" Secret)" || fail "$name: a self-signed serving Secret rendered"
      echo "cert-manager objects rendered (not dry-run: cert-manager's CRDs are not installed): $(grep -c '^kind:' "$work/$name.cert-manager.yaml")"
      ;;
    client-auth)
      dep=$(docs_of_kind "$out" Deployment)
      grep -q -- "- --webhook-client-ca-file=/etc/orgaccess/webhook-client-ca/ca.crt" <<<"$dep" \
        || fail "$name: --webhook-client-ca-file not passed"
      grep -q -- "- --webhook-client-name=kube-apiserver" <<<"$dep" || fail "$name: --webhook-client-name not passed"
      ! grep -q -- "- --webhook-client-optional" <<<"$dep" || fail "$name: client certificates optional although required"
      grep -q "name: apiserver-client-ca" <<<"$dep" || fail "$name: the client CA ConfigMap is not mounted"
      grep -q -- '- --activity-file=/var/lib/orgaccess/activity/$(POD_NAME).jsonl' <<<"$dep" || fail "$name: --activity-file not passed"
      echo "client certificates required (CA from ConfigMap apiserver-client-ca, CN kube-apiserver)"
      ;;
    watch-namespace)
      [[ -z "$(docs_of_kind "$out" ClusterRoleBinding)" ]] || fail "$name: a ClusterRoleBinding rendered"
      grep -q -- "- --watch-namespace=default" <<<"$(docs_of_kind "$out" Deployment)" || fail "$name: --watch-namespace not passed"
      grep -q "kubernetes.io/metadata.name: default" <<<"$(docs_of_kind "$out" ValidatingWebhookConfiguration)" \
        || fail "$name: the webhook is not limited to the watched namespace"
      ;;
    no-webhook)
      for kind in ValidatingWebhookConfiguration Secret PodDisruptionBudget; do
        [[ -z "$(docs_of_kind "$out" "$kind")" ]] || fail "$name: $kind rendered"
      done
      grep -q -- "- --no-webhook" <<<"$(docs_of_kind "$out" Deployment)" || fail "$name: --no-webhook not passed"
      ;;
  esac
done

step "NOTES.txt names the release's Lease"
"$helm" install acme-access "$chart" --namespace "$namespace" --dry-run=client --set crds.install=false >"$work/notes.out"
lease=$(sed -n 's/.*--lease-name=\(.*\)$/\1/p' "$work/notes.out" | head -1)
[[ "$lease" == acme-access-orgaccess-controller ]] || fail "release acme-access: the Deployment's Lease is ${lease:-none}"
grep -q "get lease $lease " "$work/notes.out" || fail "NOTES.txt does not name the Lease $lease: $(grep 'get lease' "$work/notes.out")"
echo "release acme-access: NOTES.txt names Lease $lease, as the Deployment does"

step "the chart as an umbrella chart's dependency (condition: orgaccess.enabled, global values)"
umbrella="$work/umbrella"
mkdir -p "$umbrella"
cat >"$umbrella/Chart.yaml" <<YAML
apiVersion: v2
name: platform
version: 1.0.0
dependencies:
  - name: orgaccess
    version: ">=0.0.0-0"
    repository: file://$root/$chart
    condition: orgaccess.enabled
YAML
cat >"$umbrella/values.yaml" <<'YAML'
global:
  imageRegistry: mirror.example.com
  imagePullSecrets: [{name: mirror-pull}]
  otherSubchart: {anything: true}
orgaccess:
  enabled: true
YAML
"$helm" dependency build "$umbrella" >/dev/null
"$helm" lint --strict "$umbrella" --namespace "$namespace" >/dev/null || fail "helm lint --strict of the umbrella chart"
"$helm" template "$release" "$umbrella" --namespace "$namespace" --kube-version "$server_version" >"$work/umbrella.yaml" \
  || fail "the umbrella chart with orgaccess.enabled=true does not render"
grep -q 'image: "mirror.example.com/orgaccess:' "$work/umbrella.yaml" || fail "umbrella: global.imageRegistry not used"
grep -q -- "- name: mirror-pull" "$work/umbrella.yaml" || fail "umbrella: global.imagePullSecrets not used"
dry_run "$work/umbrella.yaml" umbrella
"$helm" template "$release" "$umbrella" --namespace "$namespace" --set orgaccess.enabled=false >"$work/umbrella-off.yaml"
[[ $(grep -c '^kind: ' "$work/umbrella-off.yaml" || true) -eq 0 ]] || fail "umbrella: orgaccess.enabled=false still renders objects"
echo "umbrella chart: enabled renders and passes the dry run (mirror registry, global pull secret); disabled renders nothing"

if $own_cluster; then
  step "examples/ pass a server dry-run against the CRDs"
  kubectl create namespace chart-check-examples --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply --dry-run=server -n chart-check-examples -f examples/

  step "examples/install/ (Argo CD Application, Flux HelmRelease and sources) against their CRDs"
  # The CRDs come from the pinned argo-cd, source-controller and helm-controller
  # Go modules; the objects are created for real (strict field validation:
  # a misspelt field is refused), then the chart is rendered with the values
  # each one passes, for the chart version each one asks for.
  mapfile -t gitops_crds < <(bash tools/gitops-crds.sh)
  for f in "${gitops_crds[@]}"; do kubectl apply --server-side --field-manager=check-chart -f "$f" >/dev/null; done
  for f in "${gitops_crds[@]}"; do kubectl wait --for condition=established --timeout=60s -f "$f" >/dev/null; done
  for ns in argocd flux-system; do kubectl create namespace "$ns" >/dev/null; done
  kubectl apply --validate=strict -f examples/install/ | sed 's/^/  /'
  chart_version=$(sed -n 's/^version: //p' "$chart/Chart.yaml")
  app_version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$chart/Chart.yaml")
  [[ "$(kubectl -n argocd get application orgaccess -o jsonpath='{.spec.source.targetRevision}')" == "$chart_version" ]] \
    || fail "examples/install/argocd-application.yaml does not ask for chart $chart_version"
  for semver in "$(kubectl -n flux-system get ocirepository orgaccess -o jsonpath='{.spec.ref.semver}')" \
    "$(kubectl -n flux-system get helmrelease orgaccess-from-helmrepository -o jsonpath='{.spec.chart.spec.version}')"; do
    [[ "${chart_version%.*}.x" == "$semver" ]] || fail "examples/install/ asks for chart $semver, not ${chart_version%.*}.x"
  done
  kubectl -n argocd get application orgaccess -o jsonpath='{.spec.source.helm.valuesObject}' >"$work/values-argocd.json"
  kubectl -n flux-system get helmrelease orgaccess -o jsonpath='{.spec.values}' >"$work/values-flux.json"
  kubectl -n flux-system get helmrelease orgaccess-from-helmrepository -o jsonpath='{.spec.values}' >"$work/values-flux-repo.json"
  for values in argocd flux flux-repo; do
    "$helm" lint --strict "$chart" -f "$work/values-$values.json" >/dev/null || fail "examples/install/: the $values values fail helm lint"
    "$helm" template orgaccess "$chart" --namespace orgaccess-system --kube-version "$server_version" \
      -f "$work/values-$values.json" >"$work/install-$values.yaml"
    grep -q "image: \"registry.example.com/platform/orgaccess:$app_version\"" "$work/install-$values.yaml" \
      || fail "examples/install/: the $values values do not deploy image tag $app_version"
  done
  grep -q "^kind: Certificate" "$work/install-argocd.yaml" && ! grep -q "name: orgaccess-webhook-client$" "$work/install-argocd.yaml" \
    || fail "examples/install/argocd-application.yaml: the certificates would be made anew on every Argo CD sync"
  echo "examples/install/ accepted by the Argo CD and Flux CRDs; their values render chart $chart_version with image $app_version"

  step "helm install, then upgrade keeps the self-signed certificate"
  # The CRDs exist (applied above, as an install from crds/ would have): the
  # release takes them over.
  "$helm" install "$release" "$chart" --namespace "$namespace" --take-ownership >/dev/null
  owner=$(kubectl get crd groups.orgaccess.dev -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}')
  [[ "$owner" == "$release" ]] || fail "the release did not take over the CRDs (owner: ${owner:-none})"
  echo "the CRDs belong to release $release"
  secret="$release-webhook-tls"
  ca1=$(kubectl -n "$namespace" get secret "$secret" -o jsonpath='{.data.ca\.crt}')
  crt1=$(kubectl -n "$namespace" get secret "$secret" -o jsonpath='{.data.tls\.crt}')
  "$helm" upgrade "$release" "$chart" --namespace "$namespace" >/dev/null
  ca2=$(kubectl -n "$namespace" get secret "$secret" -o jsonpath='{.data.ca\.crt}')
  crt2=$(kubectl -n "$namespace" get secret "$secret" -o jsonpath='{.data.tls\.crt}')
  bundle=$(kubectl get validatingwebhookconfiguration "$release" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
  [[ -n "$ca1" && "$ca1" == "$ca2" && "$crt1" == "$crt2" ]] || fail "helm upgrade replaced the webhook certificate"
  [[ "$bundle" == "$ca2" ]] || fail "after upgrade the caBundle is not the Secret's CA"
  echo "certificate kept across the upgrade; caBundle matches"
  mkdir -p "$work/tls"
  kubectl -n "$namespace" get secret "$secret" -o jsonpath='{.data.tls\.crt}' | base64 -d >"$work/tls/tls.crt"
  kubectl -n "$namespace" get secret "$secret" -o jsonpath='{.data.tls\.key}' | base64 -d >"$work/tls/tls.key"

  step "the ValidatingAdmissionPolicy enforces the Administrators invariants"
  # Without the webhook configuration: nothing serves it here, and the policy
  # must hold on its own.
  "$helm" upgrade "$release" "$chart" --namespace "$namespace" --set webhook.enabled=false >/dev/null
  # (Type-checking results would appear in the policy's status, but that is
  # written by kube-controller-manager, which the local control plane does not
  # run. An expression that fails at run time denies with failurePolicy Fail,
  # so the "allowed" checks below catch it.)
  ns=chart-check-policy
  kubectl create namespace "$ns" >/dev/null
  operator_kc="$work/cp/kubeconfigs/system_serviceaccount_${namespace}_$release.kubeconfig"
  group() { # name builtIn template
    printf 'apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: %s, namespace: %s}\nspec: {builtIn: %s, template: %s}\n' "$1" "$ns" "$2" "$3"
  }
  # The policy is active once the apiserver has loaded it: wait for a denial.
  denied=""
  for _ in $(seq 1 100); do
    if ! out=$(group users Users Users | kubectl create -f - 2>&1); then denied=$out; break; fi
    kubectl -n "$ns" delete group users --wait=false >/dev/null 2>&1 || true
    sleep 0.3
  done
  grep -q "only the operator creates built-in groups" <<<"$denied" || fail "admin created a built-in group: ${denied:-allowed}"
  echo "denied: admin creating a built-in group"
  group administrators Administrators Administrators | kubectl --kubeconfig "$operator_kc" create -f - >/dev/null \
    || fail "the operator could not create the Administrators group"
  echo "allowed: the operator creating the Administrators group"
  out=$(kubectl -n "$ns" patch group administrators --type merge -p '{"spec":{"template":"Users"}}' 2>&1) \
    && fail "admin edited the Administrators group's privileges"
  grep -q "cannot be edited" <<<"$out" || fail "unexpected answer: $out"
  echo "denied: editing the Administrators group's privileges"
  kubectl -n "$ns" patch group administrators --type merge -p '{"spec":{"displayName":"Admins"}}' >/dev/null \
    || fail "admin could not rename the Administrators group"
  echo "allowed: renaming the Administrators group"
  out=$(kubectl -n "$ns" delete group administrators 2>&1) && fail "admin deleted the Administrators group"
  grep -q "cannot be deleted" <<<"$out" || fail "unexpected answer: $out"
  echo "denied: deleting the Administrators group"
  echo "  $out"
  kubectl -n "$ns" delete group administrators --as system:serviceaccount:kube-system:namespace-controller >/dev/null \
    || fail "the namespace controller could not delete the Administrators group"
  echo "allowed: the namespace controller deleting the Administrators group"
  group administrators Administrators Administrators | kubectl --kubeconfig "$operator_kc" create -f - >/dev/null
  kubectl delete namespace "$ns" --wait=false >/dev/null
  # No namespace controller runs here: the namespace stays Terminating with its
  # content, which anyone may now delete, Administrators included.
  deleted=false
  for _ in $(seq 1 50); do
    if kubectl -n "$ns" delete group administrators >/dev/null 2>&1; then deleted=true; break; fi
    sleep 0.2
  done
  $deleted || fail "the Administrators group could not be deleted from a namespace being deleted"
  echo "allowed: deleting the Administrators group while its namespace is being deleted"

  step "the operator works with only the chart's RBAC"
  # The local control plane binds the operator's identity (the chart's
  # ServiceAccount, $namespace/$release) to cluster-admin; take that away so
  # only the ClusterRole and Role of the release are left.
  kubectl delete clusterrolebinding orgaccess:operator-cluster-admin >/dev/null
  ns=chart-check-rbac
  kubectl create namespace "$ns" >/dev/null
  # With the webhook served too (when this build has it): its index watches
  # the five kinds with the same rights. Nothing calls it here (the chart's
  # certificate names the in-cluster Service).
  webhook_args=(--no-webhook)
  if grep -q -- "--webhook-cert-file" <<<"$("$bin" run --help)"; then
    webhook_args=(--webhook-addr 127.0.0.1:0 --webhook-cert-file "$work/tls/tls.crt"
      --webhook-key-file "$work/tls/tls.key" --operator-user "system:serviceaccount:$namespace:$release")
  else
    echo "(this orgaccess build has no --webhook-cert-file: running the controller only)"
  fi
  KUBECONFIG="$operator_kc" "$bin" run "${webhook_args[@]}" --admin-addr 127.0.0.1:0 \
    --lease-namespace "$namespace" --lease-name "$release-controller" --identity chart-check >"$work/operator.log" 2>&1 &
  op_pid=$!
  kubectl apply -n "$ns" -f examples/ >/dev/null
  settled=false
  for _ in $(seq 1 300); do
    kill -0 "$op_pid" 2>/dev/null || { tail -30 "$work/operator.log" >&2; fail "the operator exited"; }
    phases=$(kubectl -n "$ns" get members -o jsonpath='{range .items[*]}{.status.phase}{" "}{end}')
    refs=$(kubectl -n "$ns" get members -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="ResolvedRefs")].status}{" "}{end}')
    key=$(kubectl -n "$ns" get apikey public-search -o jsonpath='{.status.phase}')
    if [[ $(wc -w <<<"$phases") -eq 4 && "$refs" == "True True True True " && "$key" == Active ]]; then
      settled=true; break
    fi
    sleep 0.2
  done
  stop_pid "$op_pid"
  op_pid=""
  $settled || { tail -30 "$work/operator.log" >&2; fail "the organization did not settle (members: $phases; refs: $refs; key: $key)"; }
  echo "members: $phases; API key: $key"
  # It led through the release's Lease and, stopped, handed it back.
  grep -q "became leader" "$work/operator.log" || fail "the operator did not take the Lease"
  grep -q "released the lease" "$work/operator.log" || fail "the operator did not release the Lease on shutdown"
  holder=$(kubectl -n "$namespace" get lease "$release-controller" -o jsonpath='{.spec.holderIdentity}')
  [[ -z "$holder" ]] || fail "the Lease still names $holder after the operator stopped"
  echo "leader election: Lease $release-controller held, released on shutdown"
  if grep -i "forbidden" "$work/operator.log" >&2; then
    fail "the operator was refused something with the chart's RBAC (above)"
  fi
  echo "no request refused"
  if [[ "${webhook_args[0]}" != --no-webhook ]]; then
    grep -q "webhook caches synced" "$work/operator.log" \
      || { tail -30 "$work/operator.log" >&2; fail "the webhook's caches did not sync with the chart's RBAC"; }
    echo "the webhook's caches synced with the chart's RBAC"
  fi

  step "operator.watchNamespace: the operator and webhook reach ready with the namespaced RBAC alone"
  ns=chart-check-watched
  kubectl create namespace "$ns" >/dev/null
  # The webhook configuration stays off (nothing here serves the in-cluster
  # Service); the RBAC is the same with it, and the operator below serves the
  # webhook and fills its caches with these rights.
  "$helm" upgrade "$release" "$chart" --namespace "$namespace" --set operator.watchNamespace="$ns" \
    --set webhook.enabled=false >/dev/null
  [[ -z "$(kubectl get clusterrolebinding -l app.kubernetes.io/instance="$release" -o name)" ]] \
    || fail "watchNamespace: a ClusterRoleBinding is installed"
  KUBECONFIG="$operator_kc" "$bin" run "${webhook_args[@]}" --admin-addr 127.0.0.1:0 \
    --watch-namespace "$ns" --lease-namespace "$namespace" --lease-name "$release-controller" \
    --identity chart-check-watched >"$work/operator-watched.log" 2>&1 &
  op_pid=$!
  kubectl apply -n "$ns" -f examples/ >/dev/null
  settled=false
  for _ in $(seq 1 300); do
    kill -0 "$op_pid" 2>/dev/null || { tail -30 "$work/operator-watched.log" >&2; fail "the watchNamespace operator exited"; }
    ready=$(kubectl -n "$ns" get members,apikeys -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}')
    if [[ "$ready" == "True True True True True " ]]; then settled=true; break; fi
    sleep 0.2
  done
  sleep 1 # a refused watch would show up in the log by now
  stop_pid "$op_pid"
  op_pid=""
  $settled || { tail -30 "$work/operator-watched.log" >&2; fail "watchNamespace: the organization did not settle (Ready: $ready)"; }
  grep -q "caches synced" "$work/operator-watched.log" || fail "watchNamespace: the controller's caches did not sync"
  if [[ "${webhook_args[0]}" != --no-webhook ]]; then
    grep -q "webhook caches synced" "$work/operator-watched.log" \
      || { tail -30 "$work/operator-watched.log" >&2; fail "watchNamespace: the webhook's caches did not sync"; }
  fi
  if grep -i "forbidden" "$work/operator-watched.log" >&2; then
    fail "watchNamespace: the operator was refused something with the namespaced RBAC (above)"
  fi
  echo "watchNamespace: ready with only namespaced rights, nothing refused"

  "$helm" uninstall "$release" --namespace "$namespace" >/dev/null
  [[ $(kubectl get crd -o name | grep -c '\.orgaccess\.dev$') -eq 5 ]] || fail "helm uninstall deleted CRDs"
  [[ -n "$(kubectl -n chart-check-watched get members -o name)" ]] || fail "the organization's objects went with the release"
  echo "helm uninstall kept the CRDs and the objects"
fi

echo
echo "check-chart: OK"
