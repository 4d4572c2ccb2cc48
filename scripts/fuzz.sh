#!/usr/bin/env bash
# Coverage-guided fuzzing of the admission path (fuzz/fuzz_targets/admission.rs)
# with libFuzzer, on stable Rust.
#
#   scripts/fuzz.sh [RUNS] [MAX_SECONDS] [extra libFuzzer flags...]
#
# RUNS (default 100000) and MAX_SECONDS (default 120) bound the run; CI runs a
# short smoke (`scripts/fuzz.sh 20000 120`). fuzz/ is laid out for
# `cargo fuzz` (`cargo fuzz run admission -s none`, on nightly or with
# RUSTC_BOOTSTRAP=1); this script needs neither: it passes cargo the
# instrumentation flags cargo-fuzz passes (all stable -C options), and
# libfuzzer-sys, from crates.io, builds libFuzzer with the C++ compiler. No
# sanitizer: the target is safe Rust; panics, timeouts and out-of-memory are
# what it looks for. New inputs go to fuzz/corpus/admission
# only with FUZZ_GROW_CORPUS=1 (a scratch copy is used otherwise), crashes to
# fuzz/artifacts/admission/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs=${1:-100000}
secs=${2:-120}
shift $(( $# > 2 ? 2 : $# ))
target=$(rustc -vV | sed -n 's/^host: //p')
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
RUSTFLAGS="$flags" cargo build --release --target "$target" --bin admission
bin="target/$target/release/admission"
corpus=corpus/admission
if [ "${FUZZ_GROW_CORPUS:-0}" != 1 ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  cp -r "$corpus"/. "$scratch"/
  corpus=$scratch
fi
mkdir -p artifacts/admission
# -rss_limit_mb: the chart's memory limit; -timeout: the webhook's deadline.
"$bin" "$corpus" -runs="$runs" -max_total_time="$secs" -rss_limit_mb=256 -timeout=4 \
  -max_len=1048576 -artifact_prefix=artifacts/admission/ -print_final_stats=1 "$@"
