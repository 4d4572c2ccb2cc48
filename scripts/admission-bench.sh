#!/usr/bin/env bash
# The side-by-side admission benchmark (docs/performance.md "Side by side:
# none, CEL policy, webhook"). A measurement tool, not a test: it starts its
# own local control plane (crates/testenv) in a temporary work dir and the
# webhook alone (`orgaccess webhook`: no controller, so no status writes
# during the rounds; watching only its namespace, so the other two cost it
# nothing), then scripts/admission/bench.py creates Groups through
# the apiserver in three namespaces of one control plane, in interleaved
# rounds:
#
#   none     no admission of ours
#   cel      the product's ValidatingAdmissionPolicy (deploy/webhook/
#            validating-admission-policy.yaml), bound to this namespace only
#   webhook  the validating webhook, registered for this namespace only
#
# and reports p50/p99/mean per configuration as the client sees it, what each
# adds to `none`, the apiserver's own timing of the webhook call
# (apiserver_admission_webhook_admission_duration_seconds) and of the policy,
# the webhook's handler time, and the transport: TCP connections the apiserver
# opened to the webhook during its rounds (from `ss`, before and after each
# round), and the protocol the webhook's TLS negotiates with a client offering
# h2 (openssl s_client -alpn). Everything it started is stopped on exit.
#
# Usage: scripts/admission-bench.sh [--groups G] [--members M] [--rounds R]
#                                   [--per-round N] [--warmup W] [--idle-gap S] [--out FILE]
#                                   [--apiserver-profile FILE] [--keep]
#
# --groups/--members: the organization present in each of the three namespaces
# before the rounds (0 and 0: an Organization alone; default 0 / 0). The same
# generator as scripts/scale.sh.
# --rounds R (default 4) of --per-round N (default 50) creates per
# configuration, the order of the configurations rotating each round, after
# --warmup W (default 20) creates per configuration.
# --idle-gap S: S seconds without a request before each configuration's round
# (default 0): what a burst after a quiet spell meets, e.g. a connection the
# webhook closed meanwhile (the first create of each round is reported apart).
# --apiserver-profile FILE: the apiserver's CPU profile (Go pprof) over the
# first 6 s of the rounds, for `go tool pprof -top FILE` (where its time for
# a webhook call goes: validatingDispatcher.callHook).
#
# Besides latency it prints the CPU each process (etcd, the apiserver, the
# webhook, the client) spent per create during each configuration's rounds.
#
# Environment:
#   ORGACCESS_BIN                the orgaccess binary (default: cargo build --release, target/release/orgaccess)
#   ORGACCESS_CONTROL_PLANE_BIN  the control-plane binary (default: cargo build -p orgaccess-testenv, target/debug/control-plane)
#   ORGACCESS_BENCH_WEBHOOK_ARGS extra arguments for `orgaccess webhook` (space-separated)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '/^# Usage:/,/^# Environment:/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d'; }
die() { printf 'admission-bench: error: %s\n' "$*" >&2; exit 1; }
note() { printf '[admission-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

groups=0
members=0
rounds=4
per_round=50
warmup=20
idle_gap=0
out=""
profile=""
keep=false
while [[ $# -gt 0 ]]; do
  case $1 in
    --groups) groups=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --per-round) per_round=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --idle-gap) idle_gap=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --apiserver-profile) profile=$2; shift 2 ;;
    --keep) keep=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
for v in groups members rounds per_round warmup idle_gap; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v//_/-} must be a whole number (got '${!v}')"
done
(( rounds >= 1 && per_round >= 1 )) || die "--rounds and --per-round must be at least 1"
[[ -z "$out" ]] || out=$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$out")
[[ -z "$profile" ]] || profile=$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$profile")
for tool in python3 openssl ss; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# --- binaries -------------------------------------------------------------------
# shellcheck source=scripts/lib/plane.sh
source "$root/scripts/lib/plane.sh"
plane_binaries

# --- cleanup: stop what we started, newest first ---------------------------------
dir=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-admission-bench-XXXXXX")
webhook_pid=""
cp_pid=""
py_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  if [[ $rc -ne 0 && -f "$dir/webhook.log" ]]; then
    echo "--- last lines of the webhook's log ($dir/webhook.log):" >&2
    tail -n 20 "$dir/webhook.log" >&2
  fi
  stop_pid "$py_pid"
  stop_pid "$webhook_pid"
  stop_pid "$cp_pid"
  if $keep; then echo "admission-bench: work dir kept: $dir" >&2; else rm -rf "$dir"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- control plane ----------------------------------------------------------------
note "work dir $dir; starting the control plane"
start_plane "$dir"
kubectl() { "$kubectl_bin" --kubeconfig "$admin_kc" --cache-dir "$dir/kubectl-cache" "$@"; }

kubectl apply --server-side --field-manager=orgaccess-bench -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s -f crds/ >/dev/null
for config in none cel webhook; do kubectl create namespace "bench-$config" >/dev/null; done
kubectl label namespace bench-cel orgaccess-bench/policy=on >/dev/null
kubectl label namespace bench-webhook orgaccess-bench/webhook=on >/dev/null

# --- the webhook alone --------------------------------------------------------------
tls=$dir/tls
mkdir -p "$tls"
(
  cd "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout ca.key -out ca.crt -subj "/CN=orgaccess-bench-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout tls.key -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >tls.ext
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile tls.ext -out tls.crt 2>/dev/null
)
webhook_port=$(free_port)
admin_port=$(free_port)
args=(webhook --admin-addr "127.0.0.1:$admin_port" --webhook-addr "127.0.0.1:$webhook_port"
  --webhook-cert-file "$tls/tls.crt" --webhook-key-file "$tls/tls.key"
  --operator-user "$operator_user" --trusted-group system:masters --watch-namespace bench-webhook)
# shellcheck disable=SC2206 # word splitting of the extra arguments is the point
[[ -z "${ORGACCESS_BENCH_WEBHOOK_ARGS:-}" ]] || args+=($ORGACCESS_BENCH_WEBHOOK_ARGS)
note "$bin ${args[*]}"
KUBECONFIG=$operator_kc ORGACCESS_LOG_FORMAT=plain NO_COLOR=1 "$bin" "${args[@]}" >"$dir/webhook.log" 2>&1 &
webhook_pid=$!
for i in $(seq 1 600); do
  [[ "$(http_status "http://127.0.0.1:$admin_port/readyz")" == 200 ]] && break
  kill -0 "$webhook_pid" 2>/dev/null || { webhook_pid=""; die "the webhook exited"; }
  [[ $i -lt 600 ]] || die "the webhook was not ready in 60 s"
  sleep 0.1
done

# --- admission: the webhook and the policy, each for its namespace ----------------------
ca_bundle=$(base64 <"$tls/ca.crt" | tr -d '\n')
kubectl apply --server-side --field-manager=orgaccess-bench -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: orgaccess-bench
webhooks:
  - name: validate.orgaccess.dev
    clientConfig:
      url: https://127.0.0.1:$webhook_port/validate
      caBundle: $ca_bundle
    namespaceSelector:
      matchLabels: {orgaccess-bench/webhook: "on"}
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
kubectl apply --server-side --field-manager=orgaccess-bench \
  -f deploy/webhook/validating-admission-policy.yaml >/dev/null
kubectl apply --server-side --field-manager=orgaccess-bench -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: orgaccess-invariants-bench
spec:
  policyName: orgaccess-invariants
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {orgaccess-bench/policy: "on"}
EOF

# --- measure ----------------------------------------------------------------------------
py_args=(--kubeconfig "$admin_kc" --kubectl "$kubectl_bin" --kubectl-cache "$dir/kubectl-cache"
  --work-dir "$dir" --admin-port "$admin_port" --webhook-port "$webhook_port" --webhook-pid "$webhook_pid"
  --groups "$groups" --members "$members" --rounds "$rounds" --per-round "$per_round" --warmup "$warmup" --idle-gap "$idle_gap"
  --binary "$bin")
[[ -z "$out" ]] || py_args+=(--out "$out")
[[ -z "$profile" ]] || py_args+=(--apiserver-profile "$profile")
# Whose CPU is counted per configuration: the control plane's processes and the webhook.
for child in $(pgrep -P "$cp_pid"); do
  py_args+=(--cpu-pid "$(basename "$(readlink "/proc/$child/exe")")=$child")
done
py_args+=(--cpu-pid "webhook=$webhook_pid")
python3 scripts/admission/bench.py "${py_args[@]}" &
py_pid=$!
rc=0
wait "$py_pid" || rc=$?
py_pid=""
[[ $rc -eq 0 ]] || die "the measurement failed (exit $rc; see above)"
