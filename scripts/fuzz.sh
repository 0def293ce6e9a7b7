#!/usr/bin/env bash
# Fuzz the parsers: `bash scripts/fuzz.sh [seconds per target, default 60] [target...]`.
# Targets (fuzz/fuzz_targets/): policy_parse, portal_config, api_bodies. Needs the nightly toolchain (installed
# here) and cargo-fuzz (installed below, debug build). Corpora live in fuzz/corpus/<target> (gitignored, kept
# between runs); a crash lands in fuzz/artifacts/<target>/ and this script exits non-zero. Turn every crash into
# a regression test under plain `cargo test` (in the tests of the crate that owns the parser).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_FUZZ_VERSION=0.13.2
secs="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(policy_parse portal_config api_bodies)
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install --locked --debug --quiet "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
toolchain=+nightly
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "no nightly toolchain: using RUSTC_BOOTSTRAP=1 on stable"
  toolchain=""; export RUSTC_BOOTSTRAP=1
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
# Seed the corpora from the repository's own examples.
mkdir -p fuzz/corpus/policy_parse fuzz/corpus/portal_config fuzz/corpus/api_bodies
cp -n examples/*.toml docs/*.toml fuzz/corpus/policy_parse/ 2>/dev/null || true
find . -path ./target -prune -o -path ./fuzz -prune -o -name 'policy*.toml' -print 2>/dev/null |
  head -20 | while read -r f; do cp -n "$f" "fuzz/corpus/policy_parse/$(echo "$f" | tr / _)"; done
printf '[server]\nlisten = "0.0.0.0:8443"\nbehind_tls_proxy = true\n[network]\nallow = ["10.0.0.0/8", "2001:db8::/32"]\ntrusted_proxies = ["10.0.0.5"]\n[limits]\nsign_in_per_ip_per_minute = 30\n' \
  > fuzz/corpus/portal_config/seed.toml
printf '{"query":"alice@example.com"}' > fuzz/corpus/api_bodies/search.json
printf '{"code":"123456"}' > fuzz/corpus/api_bodies/code.json
printf '{"factor_id":"opfalice000000000000"}' > fuzz/corpus/api_bodies/factor.json
printf '198.51.100.1, 10.0.0.6, [2001:db8::1]:443' > fuzz/corpus/api_bodies/xff.txt
status=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${secs}s"
  (cd fuzz && cargo $toolchain fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=8192 \
      -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+\s+DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)" ) || status=1
  if ls "fuzz/artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "CRASH in $t: $(ls fuzz/artifacts/$t/crash-*)"; status=1
  fi
done
exit $status
