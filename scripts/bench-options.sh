#!/usr/bin/env bash
# How many OPTIONS per second the daemon answers over UDP without a failure, driven by SIPp.
# Ramps the rate; each step sends RATE x STEP_S requests and passes when SIPp reports no failed
# call, no retransmission and no timeout. Loopback only, bounded in count and time.
#   scripts/bench-options.sh                 (RATES="5000 10000 20000 30000 40000" STEP_S=10)
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-"5000 10000 20000 30000 40000 50000"}
STEP_S=${STEP_S:-10}
OUT=${OUT:-$(mktemp -d /tmp/drawbridge-bench-options.XXXXXX)}
command -v sipp >/dev/null || { echo "sipp not found: apt-get install -y sip-tester" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/drawbridge
mkdir -p "$OUT/certs"
cat > "$OUT/drawbridge.toml" <<TOML
[sbc]
base_domain = "sbc.example.test"
[listen]
teams_tls = "127.0.0.1:25061"
trunk_udp = "127.0.0.1:25060"
metrics = "127.0.0.1:29090"
[tls]
cert = "certs/dev/server.crt"
key = "certs/dev/server.key"
ca = "certs/dev/ca.crt"
peer_names = ["sip.pstnhub.microsoft.com"]
[teams]
allow = ["127.0.0.0/8"]
[[teams.proxy]]
host = "sip.pstnhub.microsoft.com"
address = "127.0.0.1:9"
[[tenant]]
fqdn = "customer1.sbc.example.test"
trunk = "cc1"
[[trunk]]
name = "cc1"
uri = "sip:127.0.0.1:25080"
allow = ["127.0.0.1/32"]
TOML
"$BIN" dev-certs "$OUT/certs/dev" --base-domain sbc.example.test
RUST_LOG=warn "$BIN" run --config "$OUT/drawbridge.toml" > "$OUT/drawbridge.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do ss -Hlnu "sport = :25060" | grep -q . && break; sleep 0.1; done
best=0
printf "%-8s %-10s %-8s %-8s %-10s\n" rate achieved failed retrans cpu_us/req
for rate in $RATES; do
  n=$((rate * STEP_S))
  t0=$(awk '{print $14+$15}' /proc/$PID/stat)
  set +e
  sipp -sf tests/sipp/options_uac.xml -t u1 -i 127.0.0.1 -p 25099 -key ruri_host 127.0.0.1 \
       -r "$rate" -rp 1000 -m "$n" -l 100000 -timeout $((STEP_S * 3))s -timeout_error -nostdin \
       -trace_stat -stf "$OUT/stat-$rate.csv" -fd 1 127.0.0.1:25060 > "$OUT/sipp-$rate.log" 2>&1
  rc=$?
  set -e
  t1=$(awk '{print $14+$15}' /proc/$PID/stat)
  # SIPp's stat CSV, cumulative columns: 5 ElapsedTime(C), 16 SuccessfulCall(C),
  # 18 FailedCall(C), 58 Retransmissions(C) (the first columns hold tab-separated dates).
  last=$(tail -1 "$OUT/stat-$rate.csv")
  elapsed=$(echo "$last" | awk -F';' '{print $5}' | awk -F: '{print $1*3600+$2*60+$3}')
  ok=$(echo "$last" | awk -F';' '{print $16}')
  failed=$(echo "$last" | awk -F';' '{print $18}')
  retrans=$(echo "$last" | awk -F';' '{print $58}')
  achieved=$(awk -v n="$ok" -v e="$elapsed" 'BEGIN{ if (e>0) printf "%.0f", n/e; else print 0 }')
  cpu=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (b-a)*1000000/hz/n}')
  printf "%-8s %-10s %-8s %-8s %-10s\n" "$rate" "$achieved" "$failed" "$retrans" "$cpu"
  if [ "$rc" -ne 0 ] || [ "${ok:-0}" != "$n" ] || [ "${failed:-1}" != "0" ] || [ "${retrans:-1}" != "0" ]; then break; fi
  best=$rate
done
echo "highest rate with no failure: $best OPTIONS/s (results in $OUT)"
