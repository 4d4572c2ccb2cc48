# shellcheck shell=bash
# What the scripts that start processes share (sourced, not run): stopping a
# process, a free port, an HTTP status, and for the measurement scripts
# (scale.sh, admission-bench.sh) the binaries and a local control plane.
# The sourcing script defines die MESSAGE and note MESSAGE, runs from the
# repository's root ($root) and stops $cp_pid in its cleanup.

# Stops process $1 (TERM, then KILL after 15 s) and reaps it; nothing if it is gone.
stop_pid() {
  local pid=$1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A TCP port free on 127.0.0.1 now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The HTTP status of GET $1 (empty when nothing answers).
http_status() {
  python3 - "$1" <<'PY' 2>/dev/null || true
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except Exception as e:
    print(getattr(e, "code", ""))
PY
}

# Sets bin (ORGACCESS_BIN, else the release build), control_plane_bin
# (ORGACCESS_CONTROL_PLANE_BIN, else the testenv's debug build) and
# kubectl_bin, builds the control plane's binaries if missing, and exports
# ORGACCESS_K8S_BIN, where the control plane finds etcd and kube-apiserver.
plane_binaries() {
  if [[ -n "${ORGACCESS_BIN:-}" ]]; then
    bin=$(readlink -f "$ORGACCESS_BIN")
    [[ -x "$bin" ]] || die "ORGACCESS_BIN=$ORGACCESS_BIN is not an executable"
  else
    note "building the release binary (cargo build --release --bin orgaccess)"
    cargo build --release --quiet --bin orgaccess
    bin=$root/target/release/orgaccess
  fi
  if [[ -n "${ORGACCESS_CONTROL_PLANE_BIN:-}" ]]; then
    control_plane_bin=$ORGACCESS_CONTROL_PLANE_BIN
  else
    cargo build --quiet -p orgaccess-testenv --bin control-plane
    control_plane_bin=$root/target/debug/control-plane
  fi
  [[ -x "$control_plane_bin" ]] || die "no control-plane binary at $control_plane_bin"
  bash tools/build-control-plane.sh >/dev/null
  kubectl_bin=$root/target/k8s-bin/kubectl
  export ORGACCESS_K8S_BIN=${ORGACCESS_K8S_BIN:-$root/target/k8s-bin}
}

# Starts the control plane in $1/cp (its output in $1/control-plane.out),
# waits until it is ready (180 s at most), and sets cp_pid, admin_kc,
# operator_user and operator_kc (the operator identity's kubeconfig).
start_plane() {
  local dir=$1 i
  "$control_plane_bin" up --work-dir "$dir/cp" >"$dir/control-plane.out" 2>&1 &
  cp_pid=$!
  for i in $(seq 1 1800); do
    grep -q "control plane ready" "$dir/control-plane.out" 2>/dev/null && break
    kill -0 "$cp_pid" 2>/dev/null || { cp_pid=""; tail -n 30 "$dir/control-plane.out" >&2; die "the control plane exited"; }
    [[ $i -lt 1800 ]] || { tail -n 30 "$dir/control-plane.out" >&2; die "the control plane was not ready in 180 s"; }
    sleep 0.1
  done
  note "$(grep -m1 "control plane ready" "$dir/control-plane.out")"
  admin_kc=$dir/cp/admin.kubeconfig
  operator_user=system:serviceaccount:orgaccess-system:orgaccess
  operator_kc=$dir/cp/kubeconfigs/${operator_user//:/_}.kubeconfig
  [[ -f "$operator_kc" ]] || die "no kubeconfig for the operator identity at $operator_kc"
}
