#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets (fuzz/, cargo-fuzz: libFuzzer, coverage-guided,
# sanitizer "none" as the stable toolchain allows) and runs each for FUZZ_SECONDS (default
# 10) from the checked-in corpus (fuzz/corpus/TARGET, read only; new inputs go to
# target/fuzz/corpus/TARGET). A crash, a panic or a failed check fails the run and leaves
# the input in target/fuzz/artifacts/TARGET/. FUZZ_TARGETS picks targets.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-10}
targets=${FUZZ_TARGETS:-"http_head decode selectors patch continue_token resource_version bearer_token wal"}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
opts=(-s none --fuzz-dir fuzz --target-dir target/fuzz)
cargo fuzz build "${opts[@]}"
# Run the built binaries themselves: `cargo fuzz run` would rebuild whenever a source file
# changed since the build.
bin="target/fuzz/$(rustc -vV | sed -n 's/^host: //p')/release"
mkdir -p target/fuzz/logs
for t in $targets; do
  mkdir -p "target/fuzz/corpus/$t" "target/fuzz/artifacts/$t"
  log="target/fuzz/logs/$t.log"
  if ! "$bin/$t" "target/fuzz/corpus/$t" "fuzz/corpus/$t" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="target/fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t failed: the input is in target/fuzz/artifacts/$t/, the log in $log" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9/]+[a-zA-Z]*' || true)
  echo "fuzz $t: ${seconds}s, ${runs:-?} executions, ${cov}"
done
