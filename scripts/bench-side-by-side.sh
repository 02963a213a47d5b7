#!/bin/bash
# Kamailio + rtpengine and drawbridge under the same load, alternating, on this machine: one of the
# shared harness's steps for each, ROUNDS times, and the figure that step is judged by.
#
#   scripts/bench-side-by-side.sh [cps|media]          (default: cps)
#
#   cps    the cps step at RATE: SUT CPU per call (from the harness's report)
#   media  for each count in MEDIA_CALLS, a harness media run with that many concurrent calls (50 pps
#          each way, SRTP<->RTP, the harness's rtpload as the peer): loss, added latency and the
#          relay's CPU per relayed packet, the report's media row for each SUT. One count per
#          harness run: its ramp plays every step on the calls it set up at the start, from
#          sequence number 0 with the same SSRC and key, so a step replays what the steps before
#          it sent on those calls; drawbridge drops that as replayed SRTP (RFC 3711 §3.3.2) and
#          rtpengine relays it, so only a run's first step compares like with like
#
# Environment (defaults): RATE (800: a rate Kamailio sustains here), MEDIA_CALLS ("100 250 400 600
#   800"), ROUNDS (2), OUT (target/bench-side-by-side/<timestamp>). Don't run it beside other load
#   (tests, builds).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=$(cd "$ROOT/../shared/bench" && pwd)
MODE=${1:-cps}
case "$MODE" in cps|media) ;; *) echo "usage: $0 [cps|media]" >&2; exit 2 ;; esac
RATE=${RATE:-800}
MEDIA_CALLS=${MEDIA_CALLS:-"100 250 400 600 800"}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$ROOT/target/bench-side-by-side/$(date +%Y%m%d-%H%M%S)}
export RATES="$RATE"
mkdir -p "$OUT"
row() { # the media table's last row: the step of a one-step run
  sed -n '/^### (ii)+(iv) Media relay/,/^$/p' "$1" | grep '^| [0-9]' | tail -1 || echo "(no media row: see $1)"
}
if [ "$MODE" = media ]; then
  head_done=
  for n in $MEDIA_CALLS; do
    for ((i = 1; i <= ROUNDS; i++)); do
      (cd "$HARNESS" && RESULTS="$OUT/kamailio-$n-$i" MEDIA_CALLS="$n" timeout 1200 ./run.sh media >"$OUT/kamailio-$n-$i.log" 2>&1) || true
      (MEDIA_CALLS="$n" OUT="$OUT/drawbridge-$n-$i" timeout 1200 "$ROOT/scripts/bench-calls.sh" media >"$OUT/drawbridge-$n-$i.log" 2>&1) || true
      if [ -z "$head_done" ]; then
        for sut in kamailio drawbridge; do
          echo "$sut columns: $(sed -n '/^### (ii)+(iv) Media relay/{n;p;q}' "$OUT/$sut-$n-$i.log")"
        done
        head_done=1
      fi
      echo "kamailio+rtpengine $n calls, run $i: $(row "$OUT/kamailio-$n-$i.log")"
      echo "drawbridge         $n calls, run $i: $(row "$OUT/drawbridge-$n-$i.log")"
    done
  done
  exit 0
fi
for ((i = 1; i <= ROUNDS; i++)); do
  (cd "$HARNESS" && RESULTS="$OUT/kamailio-$i" timeout 900 ./run.sh cps >"$OUT/kamailio-$i.log" 2>&1) || true
  echo "kamailio+rtpengine $i: $(grep -m1 'SUT CPU per call' "$OUT/kamailio-$i.log" || echo "(no CPU figure: see $OUT/kamailio-$i.log)")"
  (OUT="$OUT/drawbridge-$i" timeout 900 "$ROOT/scripts/bench-calls.sh" cps >"$OUT/drawbridge-$i.log" 2>&1) || true
  echo "drawbridge $i: $(grep -m1 'SUT CPU per call' "$OUT/drawbridge-$i.log" || echo "(no CPU figure: see $OUT/drawbridge-$i.log)")"
done
