#!/usr/bin/env bash
# Installs what the tests need (Debian packages: real SIP peers and tools) and runs every check
# and test. Used by CI (.ci/run) and by developers; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

# SIPp (sip-tester) and baresip are the real SIP peers; stunnel4 puts TLS in front of SIPp,
# which Debian builds without TLS; dnsmasq serves the DNS test zone; openssl checks certificates.
PKGS=(sip-tester stunnel4 baresip-core dnsmasq-base openssl procps iproute2 ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Debian's packages may enable services on install; the tests start their own instances only.
for svc in stunnel4; do systemctl disable --now "$svc" >/dev/null 2>&1 || true; done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== benches compile"
cargo bench --no-run
echo "== cargo test"
# The integration tests run the built daemon and external peers on loopback; they pick free ports,
# so they may run in parallel, but two cores are all CI has: keep the test threads modest.
cargo test --all-features -- --test-threads="${TEST_THREADS:-2}"
