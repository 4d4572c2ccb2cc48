#!/usr/bin/env bash
# A one-node cluster that runs pods, for tests: etcd, kube-apiserver, kubectl
# (tools/build-control-plane.sh), kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy (tools/build-node.sh, same k8s.io/kubernetes), containerd,
# runc and the CNI plugins (Debian, tools/install-node-runtime.sh), the pause
# image built from kubernetes' pause.c (no registry is reachable).
#
#   bash scripts/node-cluster.sh up WORK     starts it in the background; prints
#                                            `ready` when the node is Ready
#   bash scripts/node-cluster.sh down WORK   stops every process it started
#   bash scripts/node-cluster.sh run WORK CMD...   runs CMD inside the cluster's
#                                            network namespace, KUBECONFIG set
#   bash scripts/node-cluster.sh import WORK TAR NAME [NAME2...]   imports an image
#                                            tarball into containerd (and tags it NAME2)
#
# Everything runs in its own network namespace (orgaccess-<hash of WORK>), so
# the bridge, the routes and kube-proxy's rules never touch the machine's own:
# the apiserver, the pods' bridge (10.88.0.0/16) and the Services (10.96.0.0/24)
# are reachable only inside it (`run`). Needs root. The kubelet sets six kernel
# settings on start (vm.overcommit_memory=1, kernel.panic_on_oops=1, ...);
# `down` puts back the values `up` found.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cmd=${1:-}; work=${2:-}
[[ -n "$cmd" && -n "$work" ]] || { echo "usage: $0 up|down|run WORK [CMD...]" >&2; exit 2; }
mkdir -p "$work"; work=$(cd "$work" && pwd)
netns="orgaccess-$(echo -n "$work" | sha256sum | cut -c1-8)"
pids="$work/pids"
# nsenter, not `ip netns exec`: only the network namespace changes, so the
# kubelet's volume mounts (Secrets, projected tokens) are seen by containerd
# and runc, which run in the same (the machine's) mount namespace.
cgroup="orgaccess-node-$(echo -n "$work" | sha256sum | cut -c1-8)"
in_ns() { nsenter --net="/var/run/netns/$netns" "$@"; }
# The kernel settings the kubelet sets on start (setupKernelTunables): recorded
# by `up`, put back by `down`.
tunables=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

case "$cmd" in
  down)
    if [[ -f "$pids" ]]; then
      tac "$pids" | while read -r name pid; do
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      done
      rm -f "$pids"
    fi
    # Pods' containers (their shims were children of containerd, now gone).
    if [[ -d "$work/runc" ]]; then
      for id in $(runc --root "$work/runc/k8s.io" list -q 2>/dev/null); do
        runc --root "$work/runc/k8s.io" kill "$id" KILL 2>/dev/null || true
        runc --root "$work/runc/k8s.io" delete --force "$id" 2>/dev/null || true
      done
    fi
    if [[ -f "$work/sysctl.saved" ]]; then
      while read -r key value; do echo "$value" >"/proc/sys/$key" 2>/dev/null || true; done <"$work/sysctl.saved"
      rm -f "$work/sysctl.saved"
    fi
    for h in /sys/fs/cgroup/*/; do
      [[ -d "$h$cgroup" ]] && find "$h$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    # The pods' shims (children of containerd, reparented when it stopped) and
    # network namespaces.
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $work/containerd.sock" || true); do kill -KILL "$p" 2>/dev/null || true; done
    if [[ -d "$work/containerd/state" ]]; then
      for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ { print $1 }'); do
        grep -rqs "$ns" "$work/containerd" && ip netns del "$ns" 2>/dev/null || true
      done
    fi
    grep -o " $work/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    ip netns del "$netns" 2>/dev/null || true
    exit 0
    ;;
  import) # WORK TAR NAME [EXTRA-NAME...]: the image into containerd, also tagged EXTRA-NAME
    tar=$3 name=$4; shift 4
    c() { in_ns ctr --address "$work/containerd.sock" -n k8s.io "$@"; }
    c images import "$tar" >/dev/null
    for extra in "$@"; do c images tag --force "docker.io/library/$name" "docker.io/library/$extra" >/dev/null; done
    exit 0
    ;;
  run)
    shift 2
    KUBECONFIG="$work/admin.kubeconfig" in_ns "$@"
    exit $?
    ;;
  up) ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac

[[ $(id -u) == 0 ]] || { echo "error: the node cluster needs root" >&2; exit 1; }
bash tools/install-node-runtime.sh
k8s=$(bash tools/build-control-plane.sh | tail -1)
node=$(bash tools/build-node.sh | tail -1)
bash tools/build-crane.sh >/dev/null
log() { echo "node-cluster: $*" >&2; }
spawn() { # name cmd... (inside the namespace, logged, recorded)
  local name=$1; shift
  # nsenter execs the command: $! is the process itself.
  nsenter --net="/var/run/netns/$netns" "$@" >"$work/logs/$name.log" 2>&1 &
  echo "$name $!" >>"$pids"
}
mkdir -p "$work/logs" "$work/pki" "$work/cni" "$work/kubelet"
: >"$pids"

[[ -f "$work/sysctl.saved" ]] || for key in "${tunables[@]}"; do echo "$key $(cat "/proc/sys/$key")"; done >"$work/sysctl.saved"

log "network namespace $netns"
ip netns add "$netns" 2>/dev/null || true
in_ns ip link set lo up
in_ns sysctl -qw net.ipv4.ip_forward=1
# A veth pair (both ends in the namespace; no dummy driver here) holds the
# node's address: kubelet and kube-proxy want a non-loopback one.
in_ns ip link show node0 >/dev/null 2>&1 || in_ns ip link add node0 type veth peer name node0-peer
in_ns ip addr add 10.87.0.2/24 dev node0 2>/dev/null || true
in_ns ip link set node0-peer up
in_ns ip link set node0 up
in_ns ip route add default dev node0 2>/dev/null || true
node_ip=10.87.0.2

log "certificates"
pki="$work/pki"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 -subj "/CN=orgaccess-node-cluster-ca"
cert() { # name subject sans
  ossl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2"
  printf '%s' "${3:+subjectAltName=$3}" >"$pki/$1.ext"
  ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    ${3:+-extfile "$pki/$1.ext"} -out "$pki/$1.crt"
}
cert apiserver "/CN=kube-apiserver" "IP:127.0.0.1,IP:$node_ip,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=admin"
cert kubelet "/CN=orgaccess-node" "IP:$node_ip,IP:127.0.0.1,DNS:orgaccess-node"
ossl genrsa -out "$pki/sa.key" 2048
ossl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
port=6443
server="https://$node_ip:$port"
kubeconfig() { # name cert
  cat >"$work/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: node-cluster, cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}}]
users: [{name: $1, user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}}]
contexts: [{name: $1, context: {cluster: node-cluster, user: $1}}]
current-context: $1
EOF
}
kubeconfig admin admin

log "etcd, kube-apiserver"
spawn etcd "$k8s/etcd" --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 --unsafe-no-fsync
spawn kube-apiserver "$k8s/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
  --bind-address 0.0.0.0 --advertise-address "$node_ip" --secure-port "$port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc \
  --authorization-mode Node,RBAC --service-cluster-ip-range 10.96.0.0/24 --allow-privileged
for _ in $(seq 1 600); do
  in_ns "$k8s/kubectl" --kubeconfig "$work/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1 && break
  sleep 0.2
done
in_ns "$k8s/kubectl" --kubeconfig "$work/admin.kubeconfig" get --raw /readyz >/dev/null || { tail "$work/logs/kube-apiserver.log" >&2; exit 1; }

log "kube-controller-manager, kube-scheduler"
spawn kube-controller-manager "$node/kube-controller-manager" --kubeconfig "$work/admin.kubeconfig" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --use-service-account-credentials --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
  --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route'
spawn kube-scheduler "$node/kube-scheduler" --kubeconfig "$work/admin.kubeconfig" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port 0

log "pause image (kubernetes' build/pause/linux/pause.c)"
modroot=$(cd tools/k8s-node && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' k8s.io/kubernetes)
mkdir -p "$work/pause/rootfs"
gcc -Os -Wall -static -DVERSION=v3.10-orgaccess -o "$work/pause/rootfs/pause" "$modroot/build/pause/linux/pause.c"
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/pause/rootfs" -cf "$work/pause/layer.tar" pause

log "containerd"
cat >"$work/containerd.toml" <<EOF
version = 2
root = "$work/containerd/root"
state = "$work/containerd/state"
[grpc]
  address = "$work/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # This machine refuses a lower oom_score_adj than containerd's own
  # ("failed to update /proc/self/oom_score_adj: Permission denied" from runc's
  # nsexec for the sandbox's -998): keep each container's at least containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "$work/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/cni"
EOF
cat >"$work/cni/10-bridge.conflist" <<'EOF'
{"cniVersion": "1.0.0", "name": "orgaccess-pods", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
EOF
spawn containerd containerd --config "$work/containerd.toml"
for _ in $(seq 1 100); do [[ -S "$work/containerd.sock" ]] && break; sleep 0.1; done
ctrd() { in_ns ctr --address "$work/containerd.sock" -n k8s.io "$@"; }
# The pause image, imported as registry.k8s.io/pause:3.10 (crane writes the
# tarball; no registry is involved).
bash scripts/oci-from-layer.sh "$work/pause/layer.tar" registry.k8s.io/pause:3.10 "$work/pause/image.tar" \
  --entrypoint /pause --user 65535:65535 >/dev/null
ctrd images import "$work/pause/image.tar" >/dev/null

log "kubelet, kube-proxy"
cat >"$work/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: "$pki/ca.crt"}}
authorization: {mode: Webhook}
tlsCertFile: "$pki/kubelet.crt"
tlsPrivateKeyFile: "$pki/kubelet.key"
containerRuntimeEndpoint: "unix://$work/containerd.sock"
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: true
enforceNodeAllocatable: []
localStorageCapacityIsolation: false
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: ""
staticPodPath: ""
port: 10250
readOnlyPort: 0
healthzPort: 0
EOF
# The kubelet's cgroup root, in every hierarchy (cgroup v1 here: a cpuset
# needs its CPUs and memory nodes before it takes tasks).
for h in /sys/fs/cgroup/*/; do
  [[ -d "$h" && ! -L "${h%/}" ]] && mkdir -p "$h$cgroup"
  if [[ -f "${h}cpuset.cpus" ]]; then
    cat "${h}cpuset.cpus" >"$h$cgroup/cpuset.cpus"; cat "${h}cpuset.mems" >"$h$cgroup/cpuset.mems"
  fi
done
cert node-client "/O=system:nodes/CN=system:node:orgaccess-node"
kubeconfig kubelet node-client
spawn kubelet "$node/kubelet" --config "$work/kubelet/config.yaml" --kubeconfig "$work/kubelet.kubeconfig" \
  --root-dir "$work/kubelet/root" --hostname-override orgaccess-node --node-ip "$node_ip"
spawn kube-proxy "$node/kube-proxy" --kubeconfig "$work/admin.kubeconfig" --hostname-override orgaccess-node \
  --cluster-cidr 10.88.0.0/16 --proxy-mode iptables --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 \
  --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0

for _ in $(seq 1 600); do
  [[ "$(in_ns "$k8s/kubectl" --kubeconfig "$work/admin.kubeconfig" get node orgaccess-node \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]] && { echo ready; exit 0; }
  sleep 0.5
done
echo "node-cluster: the node was not Ready in 300 s" >&2
tail -20 "$work/logs/kubelet.log" >&2
exit 1
