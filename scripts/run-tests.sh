#!/usr/bin/env bash
# Runs every test of the workspace: nextest when installed, cargo test otherwise.
# The end-to-end tests use one prebuilt kapi binary (KAPI_BIN), copied aside so that the
# workspace test build cannot swap it for a differently-featured one mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p kapi -p kapi-perf
mkdir -p target/e2e
cp target/debug/kapi target/debug/kapi-perf target/e2e/
export KAPI_BIN="$PWD/target/e2e/kapi"
export KAPI_PERF_BIN="$PWD/target/e2e/kapi-perf"
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --no-fail-fast --test-threads 2
else
  exec cargo test --workspace --no-fail-fast -- --test-threads=2
fi
