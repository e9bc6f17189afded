#!/usr/bin/env bash
# A/B of kapi against upstream kube-apiserver (v1.21 from ../shared/upstream) on ONE etcd:
# upstream (A) is started by up.sh with its own fresh etcd, kapi (B) on that same etcd under
# the prefix /kapi (so the two data sets do not mix), and every kapi-perf workload runs as
# `kapi-perf compare` (rounds alternate A, B, A, B; B/A > 1 in throughput = kapi faster).
# Server CPU and RSS are sampled from /proc for both API servers (etcd's own CPU is in
# neither figure). Both servers authorize with AlwaysAllow (kapi has no RBAC yet). No
# controller manager runs, so upstream cannot finish deleting a namespace: every workload
# keeps its own namespace (`--keep --namespace ab-WORKLOAD`).
#
# Usage: scripts/ab-upstream.sh OUTDIR [KAPI_BIN] [KAPI_PERF_BIN]
#   QUICK=1 shortens every run (a smoke test of the script, not figures); ONLY="a b" runs
#   just the named workloads (create get list-json-consistent list-protobuf-rv0
#   watch-fanout memory cluster-sim mixed overload). SERVER_FLAGS="..." passes the same
#   extra flags to both servers (e.g. "--max-requests-inflight 40
#   --max-mutating-requests-inflight 20" to make the priority levels small).
# Writes OUTDIR/WORKLOAD.{txt,json,html}; prints each comparison's table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
KAPI=${2:-$ROOT/target/release/kapi}
PERF=${3:-$ROOT/target/release/kapi-perf}
UP=$ROOT/../shared/upstream
[ -x "$UP/up.sh" ] || { echo "ab-upstream: $UP is missing" >&2; exit 1; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

cleanup() {
  [ -n "${KAPI_PID:-}" ] && kill "$KAPI_PID" 2>/dev/null && wait "$KAPI_PID" 2>/dev/null
  "$UP/down.sh" "$OUT/upstream" >/dev/null 2>&1 || true
}
trap cleanup EXIT

AUTHZ=AlwaysAllow ADVERTISE_ADDRESS=127.0.0.1 "$UP/up.sh" "$OUT/upstream" "$(freeport)" ${SERVER_FLAGS:-} >/dev/null
# shellcheck disable=SC1091
. "$OUT/upstream/up.env"
UP_KC=$KUBECONFIG UP_PID=$APISERVER_PID

rm -rf "$OUT/kapi"; : > "$OUT/kapi.log"
KAPI_CMD="$KAPI --data-dir $OUT/kapi --secure-port $(freeport) --etcd-servers $ETCD_ENDPOINT --etcd-prefix /kapi --v 0 ${SERVER_FLAGS:-}"
$KAPI_CMD > "$OUT/kapi.log" 2>&1 &
KAPI_PID=$!
for _ in $(seq 1 100); do grep -q '^ready$' "$OUT/kapi.log" && break; sleep 0.1; done
grep -q '^ready$' "$OUT/kapi.log" || { cat "$OUT/kapi.log" >&2; exit 1; }
KAPI_KC=$OUT/kapi/admin.kubeconfig

if [ "${QUICK:-0}" = 1 ]; then D=2s; W=1s; PODS=500; NODES=50; SIM=10s; else D=8s; W=1s; PODS=10000; NODES=100; SIM=30s; fi
run() {
  local name=$1; shift
  # ONLY="create get ..." runs just those workloads.
  if [ -n "${ONLY:-}" ] && ! [[ " $ONLY " == *" $name "* ]]; then return; fi
  # Upstream's ServiceAccount admission needs the namespace's default ServiceAccount,
  # which only a controller manager would create.
  # (`mixed` puts its objects in ab-mixed-1, -2, ...).
  for kc in "$UP_KC" "$KAPI_KC"; do
    for ns in "ab-$name" "ab-$name-1" "ab-$name-2"; do
      kubectl --kubeconfig "$kc" create namespace "$ns" >/dev/null 2>&1 || true
      kubectl --kubeconfig "$kc" -n "$ns" create serviceaccount default >/dev/null 2>&1 || true
    done
  done
  echo "== $name: kapi-perf compare ... $*"
  "$PERF" compare --a-kubeconfig "$UP_KC" --b-kubeconfig "$KAPI_KC" \
    --a-server-pid "$UP_PID" --b-server-pid "$KAPI_PID" --rounds 2 \
    --compare-output "$OUT/$name.json" --compare-html "$OUT/$name.html" "$@" \
    --keep --namespace "ab-$name" 2> "$OUT/$name.err" | tee "$OUT/$name.txt"
}
run create create --duration "$D" --warmup "$W"
run get get --duration "$D" --warmup "$W"
run list-json-consistent list --pods "$PODS" --consistent --duration "$D" --warmup "$W"
run list-protobuf-rv0 list --pods "$PODS" --protobuf --duration "$D" --warmup "$W"
run watch-fanout watch-fanout --watchers 200 --updates-per-sec 50 --duration "$D" --warmup "$W"
run memory memory --pods "$PODS" --duration "$D"
run cluster-sim cluster-sim --nodes "$NODES" --duration "$SIM"
run mixed mixed --throughput 300 --qps 100 --nodes "$((NODES / 10))"
# Priority and fairness: 64 elephants LISTing the pods as one user while mice (same
# level, another user) and kubelets (the system level) keep their rates.
# ELEPHANTS and OVERLOAD_PODS size the elephant stream (default 64 LISTs of $PODS pods).
run overload overload --pods "${OVERLOAD_PODS:-$PODS}" --concurrency "${ELEPHANTS:-64}" \
  --mouse-rate 50 --lease-rate 100 \
  --nodes "$NODES" --duration "$D" --warmup "$W"

# startup: kapi-perf starts each server itself from its command line (upstream's as up.sh
# ran it), on the same etcd, once the other workloads are done.
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" startup "* ]]; then
  UP_CMD=$(tr '\0' ' ' < "/proc/$UP_PID/cmdline")
  kill "$UP_PID"; while kill -0 "$UP_PID" 2>/dev/null; do sleep 0.2; done
  kill "$KAPI_PID"; wait "$KAPI_PID" 2>/dev/null || true; KAPI_PID=
  for side in upstream kapi; do
    if [ $side = upstream ]; then cmd=$UP_CMD kc=$UP_KC; else cmd=$KAPI_CMD kc=$KAPI_KC; fi
    echo "== startup ($side): kapi-perf startup --server-cmd ... --rounds 3"
    "$PERF" startup --kubeconfig "$kc" --server-cmd "$cmd" --rounds 3 --idle-wait 5s \
      --output "$OUT/startup-$side.json" 2> "$OUT/startup-$side.err" | tee "$OUT/startup-$side.txt"
  done
fi
