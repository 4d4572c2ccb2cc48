#!/usr/bin/env bash
# The project's test command (README): builds the local control plane if it is
# missing, then runs every test: unit, property and integration. Integration
# tests start a real etcd + kube-apiserver and fail (never skip) if they cannot.
#
# The test binaries (a handful: tests/<group>/main.rs, ARCHITECTURE.md "Tests")
# run in two lanes at once, as cargo would run each one (from its package's
# directory): `cli`, the longest (the demo and the chart), then
# `apiserver_restart` in one lane, every other binary one after another in
# the second (about as long, measured in docs/ci.md). Most of a test's time is spent
# waiting on the apiserver and the processes it started, so two lanes fit two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build-control-plane.sh >/dev/null
bash tools/build-helm.sh >/dev/null
bash tools/build-crane.sh >/dev/null
# runc (tests/release.rs runs the image with it), containerd and the CNI plugins.
bash tools/install-node-runtime.sh
# kstatus + cel-go checker and lua5.1 for the readiness tests (tests/operations/readiness.rs).
bash tools/build-status.sh >/dev/null
bash tools/install-lua.sh
# headless Chromium and chromedriver for the access map's browser test (tests/cli/access_map.rs).
bash tools/install-chromium.sh
export ORGACCESS_K8S_BIN="$PWD/target/k8s-bin"
threads="${ORGACCESS_TEST_THREADS:-4}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Library, binary and integration tests of every workspace crate (no doc-tests; benches
# are measured with `cargo bench`, see docs/performance.md): build them all, and list
# each binary as "name<TAB>package directory<TAB>executable".
cargo test --workspace --no-run --lib --bins --tests --message-format json-render-diagnostics \
  | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        t = m["target"]
        name = t["name"] if "test" in t["kind"] else "%s (%s unit tests)" % (t["name"], t["kind"][0])
        print(name, os.path.dirname(m["manifest_path"]), m["executable"], sep="\t")
' >"$work/binaries"

# One binary: its output to its own log, its exit status beside it.
run() {
  local name=$1 dir=$2 exe=$3 log
  log=$(mktemp "$work/XXXXXX.log")
  local start=$SECONDS
  echo "=== $name: $exe" >"$log"
  set +e
  (cd "$dir" && "$exe" --test-threads "$threads") >>"$log" 2>&1
  echo $? >"$log.status"
  set -e
  echo "--- $name: $((SECONDS - start)) s" >>"$log"
  echo "$log" >>"$work/order"
}
lane() { while IFS=$'\t' read -r name dir exe; do run "$name" "$dir" "$exe"; done; }

# The first lane: cli, then apiserver_restart; the second: webhook, then the rest.
pick() { grep -P "^$1\t" "$work/binaries" || true; }
{ pick cli; pick apiserver_restart; } | lane &
first=$!
{ pick webhook; grep -vP '^(cli|apiserver_restart|webhook)\t' "$work/binaries"; } | lane
wait "$first"

# Every log, whole, in the order the binaries finished, and one closing line.
status=0
while read -r log; do
  cat "$log"
  [[ $(cat "$log.status") == 0 ]] || status=1
done <"$work/order"
cat "$work"/*.log | awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }'
exit "$status"
