#!/bin/bash
# Kamailio + rtpengine and drawbridge under the same call load, alternating, on this machine:
# the shared harness's cps step at one rate for each, ROUNDS times. Prints each run's SUT CPU per
# call (from the harness's report) and leaves the full results under OUT.
#
# Environment (defaults): RATE (800: a rate Kamailio sustains here), ROUNDS (2),
#   OUT (target/bench-side-by-side/<timestamp>). Don't run it beside other load (tests, builds).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=$(cd "$ROOT/../shared/bench" && pwd)
RATE=${RATE:-800}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$ROOT/target/bench-side-by-side/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
summary() { grep -m1 'SUT CPU per call' "$1" || echo "(no CPU figure: see $1)"; }
for ((i = 1; i <= ROUNDS; i++)); do
  (cd "$HARNESS" && RESULTS="$OUT/kamailio-$i" RATES="$RATE" timeout 900 ./run.sh cps >"$OUT/kamailio-$i.log" 2>&1) || true
  echo "kamailio+rtpengine $i: $(summary "$OUT/kamailio-$i.log")"
  (RATES="$RATE" OUT="$OUT/drawbridge-$i" timeout 900 "$ROOT/scripts/bench-calls.sh" cps >"$OUT/drawbridge-$i.log" 2>&1) || true
  echo "drawbridge $i: $(summary "$OUT/drawbridge-$i.log")"
done
