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
# Every watch-cache hand-off of a write is checked against a decode of its value.
export KAPI_VERIFY_HANDOFFS=1
# First every test (end-to-end ones on the embedded store), then the end-to-end suite
# again with every server on its own etcd (the etcd-specific tests ran in the first pass).
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --test-threads 2
  KAPI_E2E_BACKEND=etcd cargo nextest run -p kapi-e2e --no-fail-fast --test-threads 2 \
    -E 'not binary(perf) and not binary(etcd_ha) and not binary(etcd_layout) and not binary(etcd_tls) and not binary(etcd_mixed)'
else
  cargo test --workspace --no-fail-fast -- --test-threads=2
  KAPI_E2E_BACKEND=etcd cargo test -p kapi-e2e --no-fail-fast \
    --test kubectl --test kube_rs --test patch --test tables --test wire --test crash \
    --test observability -- --test-threads=2
fi
# The fuzz crate is its own workspace, so the build above does not see it: run every
# checked-in seed through its target (plain, uninstrumented build sharing this target
# dir), so an API change cannot leave the fuzz targets unbuildable (it did once).
cargo test --manifest-path fuzz/Cargo.toml --target-dir target
