#!/usr/bin/env bash
# The scale harness (docs/performance.md "Scale"). A measurement
# tool, not a test: it starts its own local control plane (crates/testenv) in
# a temporary work dir and one `orgaccess run` (webhook + controller, leader
# election off) as scripts/demo.sh does, then scripts/scale/scale.py generates
# and applies the organizations, measures, prints a table and writes JSON.
# Everything it started is stopped on exit, also on failure or Ctrl-C.
#
# Usage: scripts/scale.sh [--groups G] [--members M] [--apikeys K] [--namespaces N]
#                         [--chunk C] [--edit-members E] [--idle-seconds S]
#                         [--skip-webhook-baseline] [--freshness N] [--out FILE] [--keep]
#                         [--fault none|kill|failover|apiserver-restart]
#                         [--parallel P] [--write-floor C] [--write-cost N]
#
# --freshness N: after the other measurements, N trials each of disabling a key
# and of removing a member from a group, timed from the write to the first
# refused decision of the decision service; 0 skips it (default 30).
#
# --parallel P: the namespaces after the first are applied P at a time (as
# several GitOps applies at once); the first, and the baseline interleaved with
# it, stay sequential so the with/without webhook ratio is unchanged (default 1).
#
# --write-floor C: last, with the operator stopped (SIGSTOP), the group edit's
# member statuses written once more by C connections: the fastest this control
# plane takes the same writes, the floor under the group edit (0 skips it;
# default 8, the operator's --concurrency). The floor writes the group edit's
# change again in its cheapest form (a merge patch of status.privileges alone);
# the table gives the edit's p99 over the floor's, and the apiserver's own view
# of both (apiserver_request_duration_seconds, its process CPU per write).
#
# --write-cost N: last, what one Member status write costs the apiserver by the
# shape of its status, side by side: N members' statuses written as the operator
# sends them, under copies of the Member CRD (conditions a map list, as before;
# an atomic list, as now; privileges as strings, not adopted) and as a ConfigMap
# of the same size, in interleaved rounds (default 100; 0 skips it).
#
# --fault: one fault in the middle of convergence (docs/performance.md, "fault
# runs"): kill -9 the operator and start it again, once halfway through the
# apply and once halfway through the group edit (kill); a second replica on
# standby and the leader killed halfway through the group edit (failover);
# the apiserver killed and restarted halfway through the group edit, the
# operator left alone (apiserver-restart). The result's final state digest
# compares with a run without the fault.
#
# Environment:
#   ORGACCESS_BIN                  the orgaccess binary to measure (default: cargo build --release, target/release/orgaccess)
#   ORGACCESS_SCALE_CRDS           the CRDs to install (default: crds/ of this checkout), e.g. another branch's
#   ORGACCESS_CONTROL_PLANE_BIN    the control-plane binary (default: cargo build -p orgaccess-testenv, target/debug/control-plane)
#   ORGACCESS_SCALE_OPERATOR_ARGS  extra arguments for `orgaccess run` (space-separated)
#   ORGACCESS_SCALE_OPERATOR_WRAPPER  a command the operator runs under (space-separated), e.g.
#                                  `heaptrack -o /tmp/op`; memory and CPU are then the operator's own
#                                  process's, found under the wrapper
#   ORGACCESS_SCALE_RECONCILE_TIMEOUT  seconds to wait for convergence (default 600)
#   ORGACCESS_SCALE_EDIT_TIMEOUT       seconds to wait for the group edit to reach every member (default 300)
#   ORGACCESS_SCALE_WATCH_SECONDS      watch timeoutSeconds; the harness resumes from the last resourceVersion (default 1200)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '/^# Usage:/,/^# Environment:/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d'; }
die() { printf 'scale: error: %s\n' "$*" >&2; exit 1; }
note() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

groups=200
members=2000
apikeys=""
namespaces=1
chunk=250
edit_members=1000
idle_seconds=60
freshness=30
fault=none
parallel=1
write_floor=8
write_cost=100
skip_baseline=false
out=""
keep=false
while [[ $# -gt 0 ]]; do
  case $1 in
    --groups) groups=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    --apikeys) apikeys=$2; shift 2 ;;
    --namespaces) namespaces=$2; shift 2 ;;
    --chunk) chunk=$2; shift 2 ;;
    --edit-members) edit_members=$2; shift 2 ;;
    --idle-seconds) idle_seconds=$2; shift 2 ;;
    --skip-webhook-baseline) skip_baseline=true; shift ;;
    --freshness) freshness=$2; shift 2 ;;
    --fault) fault=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --write-floor) write_floor=$2; shift 2 ;;
    --write-cost) write_cost=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
for v in groups members namespaces chunk edit_members idle_seconds freshness parallel write_floor write_cost; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v//_/-} must be a whole number (got '${!v}')"
done
case $fault in none|kill|failover|apiserver-restart) ;; *) die "--fault must be none, kill, failover or apiserver-restart (got '$fault')" ;; esac
# API keys: one per 20 members unless given.
[[ -n "$apikeys" ]] || apikeys=$(( members / 20 > 0 ? members / 20 : 1 ))
[[ $apikeys =~ ^[0-9]+$ ]] || die "--apikeys must be a whole number"
(( groups >= 4 )) || die "--groups must be at least 4"
(( namespaces >= 1 )) || die "--namespaces must be at least 1"
[[ -z "$out" ]] || out=$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$out")

command -v python3 >/dev/null || die "python3 is required"
command -v openssl >/dev/null || die "openssl is required (the webhook's certificate)"

# --- binaries -------------------------------------------------------------------
# shellcheck source=scripts/lib/plane.sh
source "$root/scripts/lib/plane.sh"
plane_binaries
"$bin" run --help | grep -q -- "--webhook-cert-file" || die "$bin has no webhook (--webhook-cert-file): too old to measure"

# --- cleanup: stop what we started, newest first ---------------------------------
dir=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-scale-XXXXXX")
operator_pid=""
wrapper_pid=""
cp_pid=""
py_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  trap '' PIPE
  set +e
  if [[ $rc -ne 0 && -f "$dir/operator.log" ]]; then
    echo "--- last lines of the operator's log ($dir/operator.log):" >&2
    tail -n 20 "$dir/operator.log" >&2
  fi
  stop_pid "$py_pid"
  stop_pid "$operator_pid"
  stop_pid "$wrapper_pid"
  # Replicas the measurement started or restarted (--fault).
  if [[ -f "$dir/operator.pids" ]]; then
    while read -r pid; do stop_pid "$pid"; done <"$dir/operator.pids"
  fi
  stop_pid "$cp_pid"
  if $keep || [[ $rc -ne 0 && "${ORGACCESS_SCALE_KEEP_ON_FAILURE:-0}" == 1 ]]; then
    echo "scale: work dir kept: $dir" >&2
  else
    rm -rf "$dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# --- control plane -------------------------------------------------------------------
note "work dir $dir; starting the control plane"
start_plane "$dir"
kubectl() { "$kubectl_bin" --kubeconfig "$admin_kc" --cache-dir "$dir/kubectl-cache" "$@"; }

crds=${ORGACCESS_SCALE_CRDS:-crds/}
kubectl apply --server-side --field-manager=orgaccess-scale -f "$crds" >/dev/null
kubectl wait --for condition=established --timeout=60s -f "$crds" >/dev/null
# The webhook judges the namespaces labelled orgaccess-scale/webhook=on; the
# baseline namespace (scale-nowebhook) is left out by the namespaceSelector.
ns_list=()
for i in $(seq 1 "$namespaces"); do ns_list+=("scale-$i"); done
for ns in "${ns_list[@]}"; do
  kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" orgaccess-scale/webhook=on >/dev/null
done
$skip_baseline || kubectl create namespace scale-nowebhook >/dev/null

# --- webhook certificate and the operator ---------------------------------------------
tls=$dir/webhook
mkdir -p "$tls"
(
  cd "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout ca.key -out ca.crt -subj "/CN=orgaccess-scale-webhook-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout tls.key -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >tls.ext
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile tls.ext -out tls.crt 2>/dev/null
  # The harness's client certificate for the decision service.
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout client.key -out client.csr -subj "/CN=orgaccess-scale" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >client.ext
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile client.ext -out client.crt 2>/dev/null
)
webhook_port=$(free_port)
admin_port=$(free_port)
# Leader election only where a second replica takes part (--fault failover).
leader=false
[[ $fault == failover ]] && leader=true
run_args=(run --leader-election "$leader" --identity scale-a --admin-addr "127.0.0.1:$admin_port"
  --webhook-addr "127.0.0.1:$webhook_port" --webhook-cert-file "$tls/tls.crt"
  --webhook-key-file "$tls/tls.key" --operator-user "$operator_user" --trusted-group system:masters)
# The decision service as a deployment would serve it: HTTPS for clients with
# a certificate, plain HTTP on loopback for an NGINX beside it.
decision_port=$(free_port)
decision_nginx_port=$(free_port)
run_args+=(--decision-addr "127.0.0.1:$decision_port" --decision-cert-file "$tls/tls.crt"
  --decision-key-file "$tls/tls.key" --decision-client-ca-file "$tls/ca.crt" --decision-allow "orgaccess-scale=*"
  --decision-nginx-addr "127.0.0.1:$decision_nginx_port" --decision-default-namespace "${ns_list[0]}")
# shellcheck disable=SC2206 # word splitting of the extra arguments is the point
[[ -z "${ORGACCESS_SCALE_OPERATOR_ARGS:-}" ]] || run_args+=($ORGACCESS_SCALE_OPERATOR_ARGS)
note "$bin ${run_args[*]}"
# How to start it again, or a second replica (--fault): scale.py reads this.
python3 - "$dir/operator.json" "${MALLOC_ARENA_MAX:-2}" "$operator_kc" "$bin" "${run_args[@]}" <<'EOF'
import json, sys
out, arena, kubeconfig, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
env = {"MALLOC_ARENA_MAX": arena, "KUBECONFIG": kubeconfig, "ORGACCESS_LOG_FORMAT": "plain", "NO_COLOR": "1"}
with open(out, "w") as f:
    json.dump({"argv": argv, "env": env}, f)
EOF
# MALLOC_ARENA_MAX: as the chart ran builds before jemalloc (glibc's malloc), for
# comparisons with them ("Against another binary"); jemalloc ignores it.
wrapper=()
# shellcheck disable=SC2206 # word splitting of the wrapper command is the point
[[ -z "${ORGACCESS_SCALE_OPERATOR_WRAPPER:-}" ]] || wrapper=($ORGACCESS_SCALE_OPERATOR_WRAPPER)
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} KUBECONFIG=$operator_kc ORGACCESS_LOG_FORMAT=plain NO_COLOR=1 "${wrapper[@]}" "$bin" "${run_args[@]}" >"$dir/operator.log" 2>&1 &
operator_pid=$!
if [[ ${#wrapper[@]} -gt 0 ]]; then
  # Measure (and stop first) the operator itself: the process under the
  # wrapper running $bin. The wrapper is stopped after it (a profiler writes
  # its data once the operator has exited).
  wrapper_pid=$operator_pid
  operator_pid=""
  for _ in $(seq 1 100); do
    operator_pid=$(python3 scripts/scale/scale.py find-under "$wrapper_pid" "$bin")
    [[ -z "$operator_pid" ]] || break
    sleep 0.1
  done
  [[ -n "$operator_pid" ]] || die "no $bin process under the wrapper (${wrapper[*]})"
fi
for i in $(seq 1 600); do
  [[ "$(http_status "http://127.0.0.1:$admin_port/readyz")" == 200 ]] && break
  kill -0 "$operator_pid" 2>/dev/null || { operator_pid=""; die "the operator exited"; }
  [[ $i -lt 600 ]] || die "the operator was not ready in 60 s"
  sleep 0.1
done
ca_bundle=$(base64 <"$tls/ca.crt" | tr -d '\n')
kubectl apply --server-side --field-manager=orgaccess-scale -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: orgaccess-scale
webhooks:
  - name: validate.orgaccess.dev
    clientConfig:
      url: https://127.0.0.1:$webhook_port/validate
      caBundle: $ca_bundle
    namespaceSelector:
      matchLabels: {orgaccess-scale/webhook: "on"}
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
kubectl apply --server-side --field-manager=orgaccess-scale \
  -f deploy/webhook/status-admission-policy.yaml >/dev/null
# The apiserver picks up a new webhook configuration asynchronously: wait until
# it calls the webhook (a dry-run create in a judged namespace is judged).
probe=$(printf '{"apiVersion":"orgaccess.dev/v1alpha1","kind":"Group","metadata":{"name":"probe","namespace":"%s"},"spec":{"privileges":[{"service":"Search","domain":"ExecuteQueries","level":"Allowed"}]}}' "${ns_list[0]}")
decisions() { python3 - "$admin_port" <<'EOF'
import sys, urllib.request
t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(int(sum(float(l.split()[-1]) for l in t.splitlines() if l.startswith("orgaccess_webhook_decisions_total"))))
EOF
}
for i in $(seq 1 100); do
  kubectl create --dry-run=server -f - <<<"$probe" >/dev/null 2>&1 || true
  [[ "$(decisions)" -gt 0 ]] && break
  [[ $i -lt 100 ]] || die "the apiserver did not call the webhook within 20 s"
  sleep 0.2
done
note "operator ready (pid $operator_pid, admin port $admin_port), webhook called by the apiserver"

# --- measure ------------------------------------------------------------------------------
py_args=(run --kubeconfig "$admin_kc" --kubectl "$kubectl_bin" --kubectl-cache "$dir/kubectl-cache"
  --work-dir "$dir" --operator-pid "$operator_pid" --control-plane-pid "$cp_pid"
  --admin-port "$admin_port" --binary "$bin"
  --groups "$groups" --members "$members" --apikeys "$apikeys" --namespaces "$namespaces"
  --chunk "$chunk" --edit-members "$edit_members" --idle-seconds "$idle_seconds"
  --reconcile-timeout "${ORGACCESS_SCALE_RECONCILE_TIMEOUT:-600}"
  --edit-timeout "${ORGACCESS_SCALE_EDIT_TIMEOUT:-300}"
  --fault "$fault" --parallel "$parallel" --write-floor "$write_floor" --write-cost "$write_cost" --operator-json "$dir/operator.json"
  --freshness "$freshness" --decision-port "$decision_port" --decision-nginx-port "$decision_nginx_port" --tls-dir "$tls")
$skip_baseline && py_args+=(--skip-webhook-baseline)
[[ -z "$out" ]] || py_args+=(--out "$out")
python3 scripts/scale/scale.py "${py_args[@]}" &
py_pid=$!
rc=0
wait "$py_pid" || rc=$?
py_pid=""
[[ $rc -eq 0 ]] || die "the measurement failed (exit $rc; see above)"
