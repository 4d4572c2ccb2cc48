#!/usr/bin/env bash
# The orgaccess demo (README): on a fresh machine, builds everything it needs,
# starts a local Kubernetes control plane, runs the operator and its admission
# webhook against it, applies examples/ and prints each member's effective
# privileges. Then keeps running until Ctrl-C, so you can try changes with
# kubectl (the commands to use are printed).
#
# Environment:
#   ORGACCESS_DEMO_ONCE=1          exit 0 after printing (tests, CI)
#   ORGACCESS_DEMO_DIR             work dir (default target/demo)
#   ORGACCESS_DEMO_WEBHOOK_PORT    webhook HTTPS port on 127.0.0.1 (default 8443)
#   ORGACCESS_DEMO_ADMIN_PORT      /healthz /readyz /metrics port (default 8080)
#   ORGACCESS_DEMO_API_PORT        kube-apiserver port (default: a free one)
#   ORGACCESS_DEMO_TIMEOUT         seconds to wait for the organization to settle (default 120)
#   ORGACCESS_DEMO_BIN             use this orgaccess binary instead of `cargo build`
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

once=${ORGACCESS_DEMO_ONCE:-0}
dir=${ORGACCESS_DEMO_DIR:-target/demo}
webhook_port=${ORGACCESS_DEMO_WEBHOOK_PORT:-8443}
admin_port=${ORGACCESS_DEMO_ADMIN_PORT:-8080}
api_port=${ORGACCESS_DEMO_API_PORT:-}
settle_timeout=${ORGACCESS_DEMO_TIMEOUT:-120}
namespace=acme
operator_user=system:serviceaccount:orgaccess-system:orgaccess

started=$SECONDS
step_no=0
step() { step_no=$((step_no + 1)); printf '\n==> [%d/8] %s\n' "$step_no" "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\ndemo: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# --- cleanup: stop what we started, newest first -----------------------------
operator_pid=""
cp_pid=""
# shellcheck source=scripts/lib/plane.sh
source "$root/scripts/lib/plane.sh"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  # Output may be gone (closed terminal, `| head`): keep going regardless.
  trap '' PIPE
  set +e
  if [[ -n "$operator_pid$cp_pid" ]]; then
    printf '\ndemo: stopping the operator and the control plane\n' 2>/dev/null
  fi
  stop_pid "$operator_pid"
  stop_pid "$cp_pid"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# A closed stdout (`scripts/demo.sh | head`) must not kill the script before
# it stops what it started.
trap 'exit 141' PIPE

# Prints the last lines of a log, indented, to stderr.
tail_log() { echo "--- last lines of $1:" >&2; tail -n "${2:-30}" "$1" >&2 || true; }

# One plain-HTTP GET with bash alone; prints the status code (or nothing).
port_http_status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    IFS= read -r -t 2 line <&3 || true
    line=${line#HTTP/* }
    printf '%s' "${line%% *}"
  ) 2>/dev/null || true
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

echo "orgaccess demo: work dir $dir"

# --- 1. build ---------------------------------------------------------------
if [[ -n "${ORGACCESS_DEMO_BIN:-}" ]]; then
  step "using the orgaccess binary $ORGACCESS_DEMO_BIN (ORGACCESS_DEMO_BIN)"
  bin=$ORGACCESS_DEMO_BIN
else
  step "building the orgaccess binary (cargo build; the first build takes a few minutes)"
  command -v cargo >/dev/null || die "cargo is required (install Rust 1.89+ with rustup)"
  cargo build --bin orgaccess
  bin=$root/target/debug/orgaccess
fi
# The local control plane's launcher is a development crate (crates/testenv),
# not part of the deployed binary.
cargo build --quiet -p orgaccess-testenv --bin control-plane
control_plane_bin=$root/target/debug/control-plane

step "the local control plane: etcd, kube-apiserver, kubectl (built once from Go modules, then cached)"
if [[ -x target/k8s-bin/kube-apiserver && -f target/k8s-bin/.complete ]]; then
  note "cached: $(readlink -f target/k8s-bin)"
else
  note "building from tools/etcd and tools/k8s, unless this machine's cache has them (the first build takes 10-20 minutes on two cores)"
fi
bash tools/build-control-plane.sh >/dev/null
kubectl_bin=$root/target/k8s-bin/kubectl

# --- 2. control plane --------------------------------------------------------
step "starting the control plane (control-plane up --work-dir $dir, from crates/testenv)"
for p in "$webhook_port" "$admin_port" ${api_port:+"$api_port"}; do
  port_in_use "$p" && die "port $p on 127.0.0.1 is in use (another demo running?); set ORGACCESS_DEMO_WEBHOOK_PORT / ORGACCESS_DEMO_ADMIN_PORT / ORGACCESS_DEMO_API_PORT"
done
"$control_plane_bin" up --work-dir "$dir" ${api_port:+--port "$api_port"} >"$dir/control-plane.out" 2>&1 &
cp_pid=$!
for i in $(seq 1 1800); do
  grep -q "control plane ready" "$dir/control-plane.out" 2>/dev/null && break
  kill -0 "$cp_pid" 2>/dev/null || { cp_pid=""; tail_log "$dir/control-plane.out"; die "the control plane exited"; }
  [[ $i -lt 1800 ]] || { tail_log "$dir/control-plane.out"; die "the control plane was not ready in 180 s"; }
  sleep 0.1
done
note "$(grep -m1 "control plane ready" "$dir/control-plane.out")"
admin_kc=$dir/admin.kubeconfig
operator_kc=$dir/kubeconfigs/${operator_user//:/_}.kubeconfig
[[ -f "$operator_kc" ]] || die "no kubeconfig for the operator identity at $operator_kc"
kubectl() { "$kubectl_bin" --kubeconfig "$admin_kc" --cache-dir "$dir/kubectl-cache" "$@"; }

# --- 3. CRDs, namespaces, webhook TLS ---------------------------------------
step "installing the CRDs and namespaces, making the webhook's TLS certificate"
kubectl apply --server-side --field-manager=orgaccess-demo -f crds/ | sed 's/^/    /'
kubectl wait --for condition=established --timeout=60s -f crds/ >/dev/null
for ns in orgaccess-system "$namespace"; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply --server-side --field-manager=orgaccess-demo -f - >/dev/null
done
note "namespaces orgaccess-system (the operator's) and $namespace (the organization's)"
# Kubernetes RBAC lets the organization's people change its objects at all;
# the webhook then decides, from their Member, what each may change.
kubectl apply --server-side --field-manager=orgaccess-demo -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: orgaccess-editor, namespace: $namespace}
rules:
  - apiGroups: ["orgaccess.dev"]
    resources: ["organizations", "groups", "members", "apikeys"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: orgaccess-editors, namespace: $namespace}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: orgaccess-editor}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: john}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: olivia}
EOF
note "RBAC: users john and olivia (subjects of Members john-smith and olivia-owner) may edit orgaccess objects in $namespace"

# Does this build serve the webhook? (Older builds only have --no-webhook.)
run_help=$("$bin" run --help)
webhook=false
if grep -q -- "--webhook-cert-file" <<<"$run_help"; then
  webhook=true
fi
tls=$dir/webhook
if $webhook; then
  command -v openssl >/dev/null || die "openssl is required to make the webhook's certificate (apt-get install openssl)"
  mkdir -p "$tls"
  if [[ ! -s "$tls/tls.crt" || ! -s "$tls/ca.crt" ]] \
     || ! openssl x509 -in "$tls/tls.crt" -noout -checkend 86400 >/dev/null 2>&1; then
    (
      cd "$tls"
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
        -keyout ca.key -out ca.crt -subj "/CN=orgaccess-demo-webhook-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout tls.key -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >tls.ext
      openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
        -extfile tls.ext -out tls.crt 2>/dev/null
      chmod 600 ca.key tls.key
      rm -f tls.csr tls.ext ca.srl
    )
    note "webhook certificate for 127.0.0.1 made in $tls (CA: ca.crt)"
  else
    note "webhook certificate for 127.0.0.1 reused from $tls"
  fi
else
  note "this orgaccess build has no webhook flags yet (--webhook-cert-file): running without admission"
fi

# --- 4. operator ---------------------------------------------------------------
step "running the operator as $operator_user"
operator_log=$dir/logs/operator.log
mkdir -p "$dir/logs"
run_args=(run --lease-namespace orgaccess-system --identity demo --admin-addr "127.0.0.1:$admin_port")
if $webhook; then
  # The admin (system:masters) applies examples/: trust it, as a platform team
  # trusts its GitOps controller. Everyone else is judged by their Member.
  run_args+=(--webhook-addr "127.0.0.1:$webhook_port" --webhook-cert-file "$tls/tls.crt"
    --webhook-key-file "$tls/tls.key" --operator-user "$operator_user" --trusted-group system:masters)
else
  run_args+=(--no-webhook)
fi
KUBECONFIG=$operator_kc ORGACCESS_LOG_FORMAT=plain NO_COLOR=1 "$bin" "${run_args[@]}" >"$operator_log" 2>&1 &
operator_pid=$!
note "orgaccess ${run_args[*]}"
note "log: $operator_log"
for i in $(seq 1 600); do
  [[ "$(port_http_status "$admin_port" /readyz)" == 200 ]] && break
  kill -0 "$operator_pid" 2>/dev/null || { operator_pid=""; tail_log "$operator_log"; die "the operator exited"; }
  [[ $i -lt 600 ]] || { tail_log "$operator_log"; die "the operator was not ready in 60 s (http://127.0.0.1:$admin_port/readyz)"; }
  sleep 0.1
done
note "ready: http://127.0.0.1:$admin_port/readyz"
if $webhook; then
  # The admin port's /readyz above includes the webhook's caches (it denies,
  # asking to retry, until they synced); its TLS port serves only /validate.
  note "webhook ready: https://127.0.0.1:$webhook_port/validate"
fi

if $webhook; then
  ca_bundle=$(base64 <"$tls/ca.crt" | tr -d '\n')
  kubectl apply --server-side --field-manager=orgaccess-demo -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: orgaccess-demo
webhooks:
  - name: validate.orgaccess.dev
    clientConfig:
      url: https://127.0.0.1:$webhook_port/validate
      caBundle: $ca_bundle
    rules:
      - apiGroups: ["orgaccess.dev"]
        apiVersions: ["v1alpha1"]
        resources: ["organizations", "groups", "members", "apikeys"]
        operations: ["CREATE", "UPDATE", "DELETE"]
        scope: Namespaced
    failurePolicy: Fail
    matchPolicy: Equivalent
    sideEffects: None
    timeoutSeconds: 5
    admissionReviewVersions: ["v1"]
EOF
  note "ValidatingWebhookConfiguration orgaccess-demo -> https://127.0.0.1:$webhook_port/validate"
  # The mutating half records who set each binding (docs/security.md, "Over two steps").
  kubectl apply --server-side --field-manager=orgaccess-demo -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: orgaccess-demo
webhooks:
  - name: bindings.orgaccess.dev
    clientConfig:
      url: https://127.0.0.1:$webhook_port/mutate
      caBundle: $ca_bundle
    rules:
      - apiGroups: ["orgaccess.dev"]
        apiVersions: ["v1alpha1"]
        resources: ["groups", "members", "apikeys"]
        operations: ["CREATE", "UPDATE"]
        scope: Namespaced
    failurePolicy: Fail
    matchPolicy: Equivalent
    sideEffects: None
    reinvocationPolicy: IfNeeded
    timeoutSeconds: 5
    admissionReviewVersions: ["v1"]
EOF
  note "MutatingWebhookConfiguration orgaccess-demo -> https://127.0.0.1:$webhook_port/mutate"
fi
# Status of the four kinds is written only by the operator (and system:masters).
kubectl apply --server-side --field-manager=orgaccess-demo \
  -f deploy/webhook/status-admission-policy.yaml >/dev/null
note "ValidatingAdmissionPolicy orgaccess-status: only $operator_user writes status"

# --- 5. examples -----------------------------------------------------------------
step "applying examples/ to namespace $namespace (as the cluster admin)"
applied=false
for attempt in 1 2 3 4 5; do
  if kubectl apply -n "$namespace" -f examples/ >"$dir/apply.out" 2>&1; then
    applied=true
    break
  fi
  sleep 2
done
sed 's/^/    /' "$dir/apply.out"
$applied || die "kubectl apply -f examples/ failed (above)"

# --- 6. wait -----------------------------------------------------------------------
step "waiting for the operator to reconcile every Member and ApiKey"
# Settled: every Member has a phase and all its groups exist (the built-in
# ones are seeded by the operator), and every ApiKey has a phase.
deadline=$((SECONDS + settle_timeout))
while :; do
  kill -0 "$operator_pid" 2>/dev/null || { operator_pid=""; tail_log "$operator_log"; die "the operator exited"; }
  members=$(kubectl -n "$namespace" get members -o go-template='{{range .items}}{{.metadata.name}}={{with .status}}{{.phase}}/{{range .conditions}}{{if eq .type "ResolvedRefs"}}{{.status}}{{end}}{{end}}{{end}} {{end}}')
  keys=$(kubectl -n "$namespace" get apikeys -o go-template='{{range .items}}{{.metadata.name}}={{with .status}}{{.phase}}{{end}} {{end}}')
  pending=$(tr ' ' '\n' <<<"$members $keys" | grep -E '=$|=/|/(False|)$' || true)
  [[ -z "$pending" ]] && break
  if (( SECONDS > deadline )); then
    tail_log "$operator_log"
    die "not settled after ${settle_timeout}s; waiting for: $(tr '\n' ' ' <<<"$pending")"
  fi
  sleep 0.3
done
note "settled: $members$keys"

# --- 7. print -----------------------------------------------------------------------
step "effective privileges in organization $namespace"
echo
kubectl get organization -n "$namespace" -o go-template='{{range .items}}ORGANIZATION {{.metadata.name}} ({{.spec.displayName}}){{with .status}}: {{.groups}} groups, {{.members}} members ({{.activeMembers}} active, {{.pendingMembers}} pending, {{.expiredMembers}} expired), {{.apiKeys}} API keys; administrators: {{range $i, $a := .administrators}}{{if $i}}, {{end}}{{$a}}{{end}}{{end}}
{{end}}'
echo
echo "GROUPS"
kubectl get groups -n "$namespace" -o go-template='{{printf "  %-28s %-28s %-18s %-8s %s" "NAME" "DISPLAY NAME" "BUILT-IN" "MEMBERS" "PRIVILEGES"}}
{{range .items}}{{printf "  %-28s %-28v %-18v %-8v %v" .metadata.name (or .status.displayName "-") (or .spec.builtIn "-") (or .status.memberCount 0) (or .status.privilegeCount 0)}}
{{end}}'
echo
echo "MEMBERS"
kubectl get members -n "$namespace" -o go-template='{{range .items}}
  {{.metadata.name}}  {{.spec.identity.provider}}:{{.spec.identity.username}}  phase: {{.status.phase}}
    groups: {{range $i, $g := .status.groups}}{{if $i}}, {{end}}{{$g.group}}{{if not $g.active}} (inactive){{end}}{{end}}
{{if .status.privileges}}{{printf "    %-16s %-26s %-22s %s" "SERVICE" "DOMAIN" "LEVEL" "GRANTED BY"}}
{{range .status.privileges}}{{$level := .level}}{{if .canCreate}}{{$level = printf "%s + Can Create" .level}}{{end}}{{printf "    %-16s %-26s %-22s " .service .domain $level}}{{range $i, $g := .grantedBy}}{{if $i}}, {{end}}{{$g}}{{end}}{{if .resources}}  [{{range $i, $r := .resources}}{{if $i}}, {{end}}{{$r.name}}: {{$r.level}}{{end}}]{{end}}
{{end}}{{else}}    (no effective privileges)
{{end}}{{end}}'
echo
echo "API KEYS (the value is only in the Secret named below; status holds a prefix)"
kubectl get apikeys -n "$namespace" -o go-template='{{printf "  %-16s %-10s %-10s %-24s %-11s %s" "NAME" "PHASE" "PREFIX" "EXPIRES" "PRIVILEGES" "SECRET"}}
{{range .items}}{{$n := 0}}{{with .status.privileges}}{{$n = len .}}{{end}}{{printf "  %-16s %-10v %-10v %-24v %-11v %v" .metadata.name .status.phase (or .status.prefix "-") (or .status.expiresAt "never") $n .status.secretName}}
{{end}}'

# A request the webhook refuses, as a person would see it.
if $webhook; then
  echo
  echo "ADMISSION: john (member john-smith, analytics privileges only) tries to create a group"
  denied=$(kubectl --as john -n "$namespace" apply -f - 2>&1 <<EOF || true
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata:
  name: johns-admins
spec:
  privileges:
    - {service: Organization, domain: Groups, level: Edit}
EOF
)
  sed 's/^/  /' <<<"$denied"
fi

elapsed=$((SECONDS - started))
echo
echo "demo ready in ${elapsed}s."
if [[ "$once" == 1 ]]; then
  exit 0
fi

cat <<EOF

Try it (another terminal):
  export KUBECONFIG=$admin_kc
  alias kubectl=$kubectl_bin
  kubectl -n $namespace get organizations,groups,members,apikeys
  kubectl -n $namespace get member john-smith -o yaml           # status.privileges, with grantedBy
  kubectl -n $namespace patch member vendor-dev --type merge -p '{"spec":{"accepted":true}}'
  kubectl -n $namespace delete group administrators             # refused: Administrators is protected
  kubectl --as john -n $namespace delete group limited-administrators   # refused: john lacks Edit on Groups
  kubectl get events.events.k8s.io -n $namespace                # what the operator did and decided

operator log: $operator_log
Ctrl-C stops the operator and the control plane.
EOF
wait "$operator_pid" || true
operator_pid=""
tail_log "$operator_log"
die "the operator stopped"
