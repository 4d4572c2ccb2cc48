#!/usr/bin/env bash
# Runs the operator's image as the chart's pods run it, without a kubelet:
# the image scripts/build-image.sh builds, unpacked and started by runc (Debian's,
# tools/install-node-runtime.sh), two replicas against a local control plane.
#
# What a kubelet would give each pod, given here by hand:
#   - the container's arguments: the chart's Deployment's, rendered by helm
#     (default values but the listener ports: the containers share this host's
#     network, so each replica gets free ones);
#   - the user (65532:65532), a read-only root filesystem, no capabilities, no
#     new privileges, the chart's POD_NAME;
#   - the mounts: the webhook's serving certificate and client CA from the
#     chart's rendered Secrets (mode 0440, group 65532 as fsGroup does), and a
#     service-account directory (token, ca.crt, namespace) with
#     KUBERNETES_SERVICE_HOST/PORT, so the operator takes the in-cluster
#     configuration as in a pod.
# Then: both replicas ready (/readyz), one holds the Lease and reconciles
# examples/; the leader is killed (SIGKILL: no release), the other takes the
# Lease and reconciles a change; stopped with SIGTERM, it releases the Lease.
#
# Exits non-zero on any failure. ORGACCESS_BIN: the binary to put in the image
# (default target/debug/orgaccess).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
step() { echo; echo "=== check-image-runc: $* ==="; }
fail() { echo "check-image-runc: FAILED: $*" >&2; exit 1; }

bin=${ORGACCESS_BIN:-$root/target/debug/orgaccess}
[[ -x "$bin" ]] || fail "$bin is not built (cargo build --bin orgaccess)"
[[ $(id -u) == 0 ]] || fail "runc needs root here (rootless runc needs a user namespace setup this check does not do)"
bash tools/install-node-runtime.sh
bash tools/build-helm.sh >/dev/null
bash tools/build-control-plane.sh >/dev/null
helm="$root/target/helm-bin/helm"
kubectl_bin="$root/target/k8s-bin/kubectl"

work=$(mktemp -d "${TMPDIR:-/tmp}/orgaccess-runc.XXXXXX")
state="$work/runc"
cp_pid=""
declare -A ctr_pid=()
# shellcheck source=scripts/lib/plane.sh
source "$root/scripts/lib/plane.sh"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  for id in "${!ctr_pid[@]}"; do
    runc --root "$state" kill "$id" KILL >/dev/null 2>&1
    wait "${ctr_pid[$id]}" 2>/dev/null
    runc --root "$state" delete --force "$id" >/dev/null 2>&1
  done
  stop_pid "$cp_pid"
  if [[ $rc -ne 0 ]]; then echo "check-image-runc: work files kept in $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "image"
version=$("$bin" --version | awk '{ print $2 }')
bash scripts/build-image.sh "$bin" "$version" "$work/image" >/dev/null
image="$work/image/orgaccess-image-$version.tar"
layer=$(tar -xOf "$image" manifest.json | sed -n 's/.*"Layers":\["\([^"]*\)"\].*/\1/p')
[[ -n "$layer" ]] || fail "no single layer in $image"
mkdir -p "$work/rootfs"
tar -xOf "$image" "$layer" | tar -xz -C "$work/rootfs"
echo "unpacked $(du -sh "$work/rootfs" | cut -f1) from $(basename "$image")"

step "control plane"
cargo build --quiet -p orgaccess-testenv --bin control-plane
"$root/target/debug/control-plane" up --work-dir "$work/cp" >"$work/control-plane.out" 2>&1 &
cp_pid=$!
for i in $(seq 1 1200); do
  grep -q "control plane ready" "$work/control-plane.out" 2>/dev/null && break
  kill -0 "$cp_pid" 2>/dev/null || { cat "$work/control-plane.out" >&2; fail "the control plane exited"; }
  [[ $i -lt 1200 ]] || fail "the control plane was not ready in 120 s"
  sleep 0.1
done
export KUBECONFIG="$work/cp/admin.kubeconfig"
kubectl() { "$kubectl_bin" --cache-dir "$work/kubectl-cache" "$@"; }
server=$(sed -n 's/.*"server": "https:\/\/\(.*\)".*/\1/p' "$KUBECONFIG" | head -1)
host=${server%:*} port=${server##*:}
namespace=orgaccess-system release=orgaccess
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s -f crds/ >/dev/null

# The service account a pod would get: the harness's operator identity.
sa="$work/serviceaccount"
mkdir -p "$sa"
operator_kc="$work/cp/kubeconfigs/system_serviceaccount_${namespace}_$release.kubeconfig"
sed -n 's/.*"token": "\(.*\)".*/\1/p' "$operator_kc" | tr -d '\n' >"$sa/token"
sed -n 's/.*"certificate-authority-data": "\(.*\)".*/\1/p' "$operator_kc" | base64 -d >"$sa/ca.crt"
printf '%s' "$namespace" >"$sa/namespace"
[[ -s "$sa/token" && -s "$sa/ca.crt" ]] || fail "cannot read the operator's token and CA from $operator_kc"


# Renders the chart for replica $1 (ports $2 admin, $3 webhook) and prepares its bundle.
bundle() {
  local id=$1 admin=$2 webhook=$3 dir="$work/$1"
  mkdir -p "$dir/webhook" "$dir/webhook-client-ca"
  "$helm" template "$release" charts/orgaccess --namespace "$namespace" \
    --set admin.port="$admin" --set webhook.port="$webhook" >"$dir/chart.yaml"
  # The container's args, as the Deployment lists them.
  awk '/^kind: Deployment/ { d = 1 } d && /^ *args:$/ { a = 1; next } a && /^ *env:$/ { exit } a && /^ *- / { sub(/^ *- /, ""); gsub(/^"|"$/, ""); print }' \
    "$dir/chart.yaml" >"$dir/args"
  grep -q -- "--webhook-cert-file=/etc/orgaccess/webhook/tls.crt" "$dir/args" || fail "unexpected args: $(cat "$dir/args")"
  # The Secrets' files, as the kubelet mounts them (0440, group 65532 from fsGroup).
  secret_field() { awk -v name="$1" -v key="$2" '/^---/ { p = 0 } $0 ~ "^  name: " name "$" { p = 1 } p && $1 == key":" { print $2 }' "$dir/chart.yaml" | base64 -d; }
  secret_field "$release-webhook-tls" tls.crt >"$dir/webhook/tls.crt"
  secret_field "$release-webhook-tls" tls.key >"$dir/webhook/tls.key"
  secret_field "$release-webhook-client" ca.crt >"$dir/webhook-client-ca/ca.crt"
  chgrp -R 65532 "$dir/webhook" "$dir/webhook-client-ca" "$sa"
  chmod 0440 "$dir"/webhook/* "$dir"/webhook-client-ca/* "$sa"/*
  chmod 0750 "$dir/webhook" "$dir/webhook-client-ca" "$sa"
  python3 - "$dir" "$work/rootfs" "$sa" "$id" "$host" "$port" <<'PY'
import json, sys
d, rootfs, sa, pod, host, port = sys.argv[1:]
args = [l.rstrip("\n") for l in open(f"{d}/args")]
def bind(src, dst):
    return {"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}
config = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 65532, "gid": 65532, "additionalGids": [65532]},
        "args": ["/usr/local/bin/orgaccess"] + args,
        "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                f"POD_NAME={pod}", f"KUBERNETES_SERVICE_HOST={host}", f"KUBERNETES_SERVICE_PORT={port}"],
        "cwd": "/",
        "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
        "noNewPrivileges": True,
    },
    "root": {"path": rootfs, "readonly": True},
    "hostname": pod,
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        bind(f"{d}/webhook", "/etc/orgaccess/webhook"),
        bind(f"{d}/webhook-client-ca", "/etc/orgaccess/webhook-client-ca"),
        bind(sa, "/var/run/secrets/kubernetes.io/serviceaccount"),
    ],
    "linux": {
        # The host's network (the containers reach the apiserver on loopback);
        # their own pid, ipc, uts and mount namespaces.
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}
json.dump(config, open(f"{d}/config.json", "w"), indent=1)
PY
}

start() { # id
  runc --root "$state" run --bundle "$work/$1" "$1" >"$work/$1.log" 2>&1 &
  ctr_pid[$1]=$!
}

ready() { # id admin-port
  for _ in $(seq 1 300); do
    kill -0 "${ctr_pid[$1]}" 2>/dev/null || { tail -20 "$work/$1.log" >&2; fail "$1 exited"; }
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/readyz")" == 200 ]] && return 0
    sleep 0.2
  done
  tail -20 "$work/$1.log" >&2; fail "$1 was not ready in 60 s"
}

holder() { kubectl -n "$namespace" get lease "$release-controller" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true; }

wait_holder() { # expected holder, seconds
  for _ in $(seq 1 $(( $2 * 5 ))); do [[ "$(holder)" == "$1" ]] && return 0; sleep 0.2; done
  fail "the Lease is held by '$(holder)', not '$1'"
}

step "two replicas of the image under runc (read-only root, uid 65532, no capabilities)"
a_admin=$(free_port) a_webhook=$(free_port) b_admin=$(free_port) b_webhook=$(free_port)
bundle orgaccess-runc-a "$a_admin" "$a_webhook"
bundle orgaccess-runc-b "$b_admin" "$b_webhook"
start orgaccess-runc-a
ready orgaccess-runc-a "$a_admin"
wait_holder orgaccess-runc-a 30
start orgaccess-runc-b
ready orgaccess-runc-b "$b_admin"
runc --root "$state" state orgaccess-runc-a | grep -q '"status": "running"' || fail "runc does not report replica a running"
echo "both replicas ready (/readyz 200); orgaccess-runc-a holds the Lease $release-controller"
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$(runc --root "$state" state orgaccess-runc-a | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')/status")
[[ "$uid" == 65532 ]] || fail "replica a runs as uid $uid"
echo "the operator process runs as uid $uid"
# The webhook serves TLS with the chart's certificate (what the apiserver would call).
subject=$(openssl s_client -connect "127.0.0.1:$a_webhook" -servername "$release-webhook.$namespace.svc" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null || true)
[[ "$subject" == *"$release-webhook.$namespace.svc"* ]] || fail "the webhook port does not serve the chart's certificate: ${subject:-nothing}"
echo "the webhook serves the chart's certificate ($subject)"

step "the leader reconciles examples/"
ns=runc-examples
kubectl create namespace "$ns" >/dev/null
kubectl apply -n "$ns" -f examples/ >/dev/null
settled() {
  local want=$1
  for _ in $(seq 1 300); do
    ready=$(kubectl -n "$ns" get members,apikeys -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}')
    [[ "$ready" == "$want" ]] && return 0
    sleep 0.2
  done
  fail "the organization did not settle (Ready: $ready)"
}
settled "True True True True True "
echo "members and the API key Ready"

step "kill the leader (SIGKILL): the other replica takes the Lease and reconciles"
runc --root "$state" kill orgaccess-runc-a KILL
wait "${ctr_pid[orgaccess-runc-a]}" 2>/dev/null || true
runc --root "$state" delete --force orgaccess-runc-a >/dev/null 2>&1 || true
unset 'ctr_pid[orgaccess-runc-a]'
wait_holder orgaccess-runc-b 40
echo "orgaccess-runc-b took the Lease"
kubectl -n "$ns" delete member "$(kubectl -n "$ns" get members -o jsonpath='{.items[0].metadata.name}')" >/dev/null
kubectl apply -n "$ns" -f examples/ >/dev/null
settled "True True True True True "
gen=$(kubectl -n "$ns" get members -o jsonpath='{range .items[*]}{.status.observedGeneration}{" "}{end}')
echo "a re-created member reconciled by the new leader (observedGeneration: $gen)"

step "SIGTERM: the replica stops and releases the Lease"
runc --root "$state" kill orgaccess-runc-b TERM
for _ in $(seq 1 150); do kill -0 "${ctr_pid[orgaccess-runc-b]}" 2>/dev/null || break; sleep 0.2; done
kill -0 "${ctr_pid[orgaccess-runc-b]}" 2>/dev/null && fail "replica b did not stop within 30 s of SIGTERM"
[[ -z "$(holder)" ]] || fail "the Lease still names $(holder)"
grep -q "released the lease" "$work/orgaccess-runc-b.log" || fail "replica b did not log the release"
echo "stopped; the Lease released"
if grep -i "forbidden\|read-only file system" "$work"/orgaccess-runc-*.log >&2; then
  fail "a replica was refused something or tried to write its root filesystem (above)"
fi

echo
echo "check-image-runc: OK"
