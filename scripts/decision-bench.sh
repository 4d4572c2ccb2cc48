#!/usr/bin/env bash
# The decision service over HTTP against Open Policy Agent, side by side, in
# one run (docs/performance.md, "Decisions over HTTP"):
#
#   bash scripts/decision-bench.sh [--seconds S] [--connections C] [--out FILE]
#
# Same organization (the benchmarks' 1,000 groups / 5,000 members and one API
# key, benches/org), same four questions (a member check, a key check, a key
# verification, and 50 checks in one request: /v1/check/batch, and OPA's
# `batch` rule), each asked of:
#   - orgaccess: the decision service's router (benches/decision_http.rs serve),
#     plain HTTP/1.1;
#   - OPA (pinned, built from its Go module by tools/install-opa.sh), with the
#     organization as JSON data (benches/decision_http.rs export) and
#     scripts/decision-bench/policy.rego, plain HTTP/1.1 (`opa run --server`).
# Each server is pinned to CPU 0 (taskset; GOMAXPROCS=1 for OPA), the load
# generator (benches/decision_http.rs load: C keep-alive connections, one
# request in flight each) to CPU 1. Before loading, each answer is checked
# against the core's. Reported per question: decisions/s with the server on
# one core, and decisions per CPU-second the server used (/proc/PID/stat),
# which stays meaningful if the generator or other processes take the core.
#
# Options: --seconds S (5, per question and server), --connections C (16),
# --out FILE (the JSON lines). Nothing here runs in CI or scripts/test.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=5
connections=16
out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

command -v taskset >/dev/null || { echo "error: taskset (util-linux) is required" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || { echo "error: needs 2 CPUs (server on one, load on the other)" >&2; exit 1; }

echo "building the benchmark (release profile)" >&2
bench=$(cd "$root" && cargo bench --bench decision_http --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "decision_http" and m.get("executable"):
        print(m["executable"])')
[[ -x "$bench" ]] || { echo "error: the decision_http bench was not built" >&2; exit 1; }
opa=$(bash "$root/tools/install-opa.sh")
opa_version=$("$opa" version | sed -n 's/^Version: //p')

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# shellcheck source=scripts/lib/plane.sh
source "$root/scripts/lib/plane.sh"
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: nothing listens on port $1" >&2; exit 1
}

"$bench" export "$work"
cp "$root/scripts/decision-bench/policy.rego" "$work/"

oa_port=$(free_port)
taskset -c 0 "$bench" serve "127.0.0.1:$oa_port" >"$work/orgaccess.log" 2>&1 &
oa_pid=$!; pids+=("$oa_pid")
opa_port=$(free_port)
GOMAXPROCS=1 taskset -c 0 "$opa" run --server --addr "127.0.0.1:$opa_port" --log-level error \
  "$work/policy.rego" "$work/data.json" >"$work/opa.log" 2>&1 &
opa_pid=$!; pids+=("$opa_pid")
wait_port "$oa_port"
wait_port "$opa_port"

echo "load: $connections connections, ${seconds}s per question; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
results="$work/results.jsonl"
taskset -c 1 "$bench" load orgaccess "127.0.0.1:$oa_port" "$oa_pid" "$seconds" "$connections" >>"$results"
taskset -c 1 "$bench" load opa "127.0.0.1:$opa_port" "$opa_pid" "$seconds" "$connections" >>"$results"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
[[ -n "$out" ]] && cp "$results" "$out"

OPA_VERSION=$opa_version python3 - "$results" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["server"], r["question"]): r for r in rows}
questions = list(dict.fromkeys(r["question"] for r in rows))
print(f"OPA {os.environ['OPA_VERSION']}; each server pinned to one CPU")
print(f"{'question':<22} {'orgaccess /s':>13} {'OPA /s':>9} {'ratio':>6}   {'orgaccess /cpu-s':>16} {'OPA /cpu-s':>11} {'ratio':>6}   p50/p99 µs orgaccess | OPA")
for q in questions:
    a, o = by[("orgaccess", q)], by[("opa", q)]
    r1 = a["decisions_per_s"] / o["decisions_per_s"]
    r2 = a["decisions_per_cpu_s"] / o["decisions_per_cpu_s"] if o["decisions_per_cpu_s"] else float("nan")
    print(f"{q:<22} {a['decisions_per_s']:>13,.0f} {o['decisions_per_s']:>9,.0f} {r1:>5.1f}x   "
          f"{a['decisions_per_cpu_s']:>16,.0f} {o['decisions_per_cpu_s']:>11,.0f} {r2:>5.1f}x   "
          f"{a['p50_us']:.0f}/{a['p99_us']:.0f} | {o['p50_us']:.0f}/{o['p99_us']:.0f}")
PY
