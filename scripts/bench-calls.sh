#!/usr/bin/env bash
# Call load benchmark of drawbridge, run by the shared harness (../shared/bench/run.sh; its README
# explains the arrangement): SIPp "Teams" UAC over TCP -> stunnel (mutual TLS) -> drawbridge ->
# SIPp "contact center" UAS over UDP, rtpload for SRTP/RTP media. Builds the release binary first.
#
#   scripts/bench-calls.sh [smoke|cps|overload|memory|media|all]      (default: all)
#
# The load-benchmark issue's targets and the part that measures each:
#   cps       highest sustained calls/s with no failed call (RATES ramp, 1 s calls over one TLS
#             connection, STEP_S s per step, stops at the first failing step) and the daemon's
#             CPU ms per call at that rate (target <= 0.28 ms)
#   overload  2 x the sustained rate for STEP_S s: the daemon stays up and refuses the excess with
#             503 (counted from the UAC's error log; the harness counts those calls as failed)
#   memory    PSS per concurrent call with MEMORY_CALLS (4,999 ~ the issue's 5,000) calls established and idle, on a
#             fresh process (target <= 16 KiB); a short media step at that count follows
#   media     relayed pps, loss and added latency for MEDIA_CALLS concurrent calls, 50 pps each way
#             (one harness run per count: see the media part below)
# "all" = smoke, then cps, overload and memory only if the smoke call passed.
#
# Environment (defaults): RATES ("200 400 800 1200 1600 2000 2400 3200"), STEP_S (20),
#   SUSTAINED (the rate overload doubles; default: the best passing step of this run's cps ramp),
#   MEMORY_CALLS (4999: the most the harness's port plan allows), MEMORY_SETUP_CPS (500), MEDIA_CALLS ("100 250 400 600 800"),
#   OUT (results root; default target/bench-calls/<timestamp>),
#   DRAWBRIDGE_CONFIG_IN (config template; default: the harness's conf/drawbridge.toml.in, which
#   passes `drawbridge check-config`), DB_PORT_MIN/DB_PORT_MAX (media range, 30000-65000 here:
#   see below). Every other variable of run.sh (QUIET_MAX_PCT, TLS_MAX, ...) passes through.
#
# Sizing: each call holds two media port pairs (Teams leg with rtcp-mux, trunk leg RTP + RTCP:
# three sockets, four ports) and a released pair stays bound for [media] quarantine_s (5 s). So
# R calls/s of 1 s calls hold about R x 6 x 4 ports and R x 6 x 3 descriptors: the harness's
# 30000-49999 range runs out near 800 calls/s, hence 30000-65000 (rtpload owns 10000-29999;
# ports the kernel already gave out are skipped by the daemon), and the open-files limit is
# raised to the hard limit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=$(cd "$ROOT/../shared/bench" && pwd)
MODE=${1:-all}
case "$MODE" in smoke|cps|overload|memory|media|all) ;; *) echo "usage: $0 [smoke|cps|overload|memory|media|all]" >&2; exit 2 ;; esac

export SUT=drawbridge
export DRAWBRIDGE_DIR=$ROOT
export DRAWBRIDGE_BIN=${DRAWBRIDGE_BIN:-$ROOT/target/release/drawbridge}
export DRAWBRIDGE_CONFIG_IN=${DRAWBRIDGE_CONFIG_IN:-$HARNESS/conf/drawbridge.toml.in}
export DB_PORT_MIN=${DB_PORT_MIN:-30000}
export DB_PORT_MAX=${DB_PORT_MAX:-65000}
RATES=${RATES:-"200 400 800 1200 1600 2000 2400 3200"}
STEP_S=${STEP_S:-20}
MEMORY_CALLS=${MEMORY_CALLS:-4999}
MEMORY_SETUP_CPS=${MEMORY_SETUP_CPS:-500}
OUT=${OUT:-$ROOT/target/bench-calls/$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3
ulimit -n "$(ulimit -Hn)"

echo "== cargo build --release" >&2
(cd "$ROOT" && cargo build --release --bin drawbridge)
mkdir -p "$OUT"
# The harness's lab "Teams" (stunnel) connects from loopback; the daemon's default Teams source
# list is Microsoft's ranges (TDR-SIG-08), so the template gets loopback added where it has none.
if ! grep -q '^allow' <(sed -n '/^\[teams\]/,/^\[/p' "$DRAWBRIDGE_CONFIG_IN"); then
  sed '/^\[teams\]/a allow = ["127.0.0.0/8"]' "$DRAWBRIDGE_CONFIG_IN" >"$OUT/drawbridge.toml.in"
  export DRAWBRIDGE_CONFIG_IN=$OUT/drawbridge.toml.in
fi
REPORTS=()

run() { # part results-dir [VAR=value ...]  -> runs the harness; a failing part does not stop the others
  local part=$1 dir=$2; shift 2
  echo "== $part -> $dir" >&2
  if env RESULTS="$dir" STEP_S="$STEP_S" "$@" "$HARNESS/run.sh" "$part"; then :; else
    echo "== $part: run.sh exited non-zero (see $dir)" >&2
  fi
  [ -f "$dir/report.md" ] && REPORTS+=("$dir/report.md")
  return 0
}

# The highest rate whose step passed in a cps results folder (empty if none).
best_rate() {
  "$PY" - "$1" <<'EOF'
import glob, json, os, sys
ok = [json.load(open(p)) for p in glob.glob(os.path.join(sys.argv[1], "cps_*", "step.json"))]
ok = [s["rate"] for s in ok if s.get("pass")]
print(max(ok) if ok else "")
EOF
}

smoke_ok=1
if [ "$MODE" = smoke ] || [ "$MODE" = all ]; then
  run smoke "$OUT/smoke"
  "$PY" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["smoke_pass"] else 1)' "$OUT/smoke/smoke.json" \
    2>/dev/null || smoke_ok=0
  ((smoke_ok)) || echo "== smoke failed: see $OUT/smoke/smoke.json" >&2
fi
if ((smoke_ok)) && { [ "$MODE" = cps ] || [ "$MODE" = all ]; }; then
  run cps "$OUT/cps" RATES="$RATES"
fi
if ((smoke_ok)) && { [ "$MODE" = overload ] || [ "$MODE" = all ]; }; then
  sustained=${SUSTAINED:-$( [ -d "$OUT/cps" ] && best_rate "$OUT/cps" || true)}
  if [ -z "$sustained" ]; then
    echo "== overload: no sustained rate (set SUSTAINED=calls/s or run the cps part first)" >&2
  else
    over=$((2 * sustained))
    # COMPACT=0: the UAC's error log (each failed call: the response SIPp did not expect, or its
    # 10 s receive timeout) is counted below, then compacted. pass = up and only 503s.
    run cps "$OUT/overload" RATES="$over" COMPACT=0
    "$PY" - "$OUT/overload" "$over" > "$OUT/overload/overload.json" <<'EOF'
import json, os, re, sys
d, rate = sys.argv[1], int(sys.argv[2])
step = os.path.join(d, f"cps_{rate}")
text = open(os.path.join(step, "uac_err.log"), errors="replace").read() if os.path.exists(os.path.join(step, "uac_err.log")) else ""
statuses = {}
for m in re.finditer(r"received 'SIP/2\.0 (\d{3})", text):
    statuses[m.group(1)] = statuses.get(m.group(1), 0) + 1
s = json.load(open(os.path.join(step, "step.json"))) if os.path.exists(os.path.join(step, "step.json")) else {}
sipp = s.get("sipp", {})
crashed = os.path.exists(os.path.join(step, "crash.json"))
print(json.dumps({"rate": rate, "calls": s.get("calls"), "ok": sipp.get("uac_SuccessfulCall"),
                  "failed": sipp.get("uac_FailedCall"), "unexpected_responses_by_status": statuses, "receive_timeouts": text.count("receive timeout"),
                  "sut_crashed": crashed,
                  "pass": (not crashed) and statuses.get("503", 0) > 0 and set(statuses) <= {"503"}
                          and "receive timeout" not in text}, indent=1))
EOF
    "$HARNESS/run.sh" compact "$OUT/overload" >/dev/null 2>&1 || true
  fi
fi
if ((smoke_ok)) && { [ "$MODE" = memory ] || [ "$MODE" = all ]; }; then
  run media "$OUT/memory" MEDIA_CALLS="$MEMORY_CALLS" MEDIA_S=3 MEDIA_SETUP_CPS="$MEMORY_SETUP_CPS"
  # Computed here from the idle/loaded snapshots: with ~5,000 calls rtpload runs out of descriptors
  # (four sockets a call) and the harness stops before its report, after the snapshots.
  "$PY" - "$OUT/memory/media" "$MEMORY_CALLS" > "$OUT/memory/memory.json" <<'EOF' || true
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
idle, loaded = (json.load(open(os.path.join(d, f)))["comp"] for f in ("mem_idle.json", "mem_loaded.json"))
print(json.dumps({name: {"calls": n, "idle_pss_kib": idle[name]["pss_kb"], "loaded_pss_kib": loaded[name]["pss_kb"],
                         "pss_kib_per_call": round((loaded[name]["pss_kb"] - idle[name]["pss_kb"]) / n, 2),
                         "rss_kib_per_call": round((loaded[name]["rss_kb"] - idle[name]["rss_kb"]) / n, 2)}
                  for name in loaded}, indent=1))
EOF
fi
if [ "$MODE" = media ]; then
  # One harness run per count: its ramp plays every step on the calls set up at its start, from
  # sequence number 0 with the same SSRC and key, and the daemon drops what repeats the earlier
  # steps' packets as replayed SRTP (RFC 3711 §3.3.2), which would read as loss.
  for n in ${MEDIA_CALLS:-100 250 400 600 800}; do
    run media "$OUT/media-$n" MEDIA_CALLS="$n"
  done
fi

echo
echo "== drawbridge call benchmark: results in $OUT"
for r in "${REPORTS[@]:-}"; do
  [ -n "$r" ] || continue
  echo "-- $r"
  grep -E '^\- \*\*|smoke|Max sustained|CPU per call|per concurrent call' "$r" | head -12 || true
done
for f in "$OUT/overload/overload.json" "$OUT/memory/memory.json"; do
  [ -s "$f" ] && { echo "-- $f"; cat "$f"; }
done
echo "targets: max calls/s with 0 failures; CPU <= 0.28 ms/call; <= 16 KiB PSS per concurrent call at $MEMORY_CALLS calls;"
echo "         at 2 x sustained: daemon up, excess refused with 503 (overload.json pass)"
