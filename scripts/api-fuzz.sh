#!/usr/bin/env bash
# API fuzzing: schemathesis, driven by the portal's own /api/v1/openapi.json, against a portal on a fake Okta.
#
#   bash scripts/api-fuzz.sh                      routine run: every check, 100 examples per operation
#   FCTR_API_FUZZ_EXAMPLES=1000 bash scripts/api-fuzz.sh     release run (docs/testing.md)
#
# What it does, all on loopback, everything under target/api-fuzz/ (the venv is kept between runs; run/ holds the
# run's configuration, keys and logs, removed on success and kept on failure; report/ the last run's JUnit and
# NDJSON reports):
#   1. a Python venv with schemathesis pinned (SCHEMATHESIS_VERSION), installed with pip from PyPI;
#   2. builds (dev profile) and starts the fake Okta (fctr-testkit's `fake-idp`, its own rate limit raised);
#   3. writes a portal configuration for it: SQLite audit, random keys, and a fuzz policy and [limits] with the
#      per-agent limits raised (a fuzzer is one agent sending thousands of requests: the defaults would answer
#      429 to most of them and hide the rest of the API). The defaults are not touched;
#   4. starts fctr-portal --config on it, signs agent3 (Tier 3: every operation) in through the fake's OIDC code
#      flow with PKCE, exactly as an integration does, and keeps the ID token as the bearer token;
#   5. runs `schemathesis run --checks all` with that token; any failure fails the script.
#
# Knobs: FCTR_API_FUZZ_EXAMPLES (100; at least 100), FCTR_API_FUZZ_SEED (a fixed seed for a reproducible run;
# default random, printed), FCTR_API_FUZZ_WORKERS (1), FCTR_API_FUZZ_PROFILE (dev; release times an optimised
# portal, after a long first build), FCTR_API_FUZZ_KEEP (set: keep run/ after a green run too, e.g. to read the
# audit database), FCTR_API_FUZZ_DIR (target/api-fuzz).
# At the end it prints, per operation and method, the requests sent, p50, p99 and max response time and the
# statuses seen (from schemathesis' NDJSON report).
# Needs cargo, curl and python3 (with venv); pip reaches PyPI (or a mirror set in PIP_INDEX_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${FCTR_API_FUZZ_EXAMPLES:-100}
WORKERS=${FCTR_API_FUZZ_WORKERS:-1}
PROFILE=${FCTR_API_FUZZ_PROFILE:-dev}
DIR=${FCTR_API_FUZZ_DIR:-$root/target/api-fuzz}
RUN="$DIR/run"
REPORT="$DIR/report"
VENV="$DIR/venv-$SCHEMATHESIS_VERSION"

say() { printf '== api-fuzz: %s\n' "$*"; }
die() {
  printf 'api-fuzz.sh: %s\n' "$*" >&2
  exit 1
}
[ "$EXAMPLES" -ge 100 ] 2>/dev/null || die "FCTR_API_FUZZ_EXAMPLES must be a number of at least 100, not $EXAMPLES"

# --- schemathesis in a venv of its own ---------------------------------------------------------------------------
if [ ! -x "$VENV/bin/schemathesis" ]; then
  say "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/schemathesis" --version

# --- build -------------------------------------------------------------------------------------------------------
say "building fake-idp (dev) and fctr-portal ($PROFILE)"
cargo build --locked -q -p fctr-testkit --bin fake-idp
case "$PROFILE" in
  dev) cargo build --locked -q -p fctr-portal --bin fctr-portal ;;
  release) cargo build --locked -q --release -p fctr-portal --bin fctr-portal ;;
  *) die "FCTR_API_FUZZ_PROFILE must be dev or release, not $PROFILE" ;;
esac
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
fake="$target/debug/fake-idp"
portal="$target/$([ "$PROFILE" = dev ] && echo debug || echo release)/fctr-portal"

# --- processes: started here, stopped here by their pids ----------------------------------------------------------
rm -rf "$RUN" "$REPORT"
mkdir -p "$RUN" "$REPORT"
chmod 700 "$RUN"
pids=()
ok=0
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$ok" = 1 ] && [ -z "${FCTR_API_FUZZ_KEEP:-}" ]; then
    rm -rf "$RUN"
  else
    echo "api-fuzz.sh: logs and report kept in $RUN" >&2
  fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
IDP_PORT=$(free_port)
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"

wait_200() { # url seconds what
  local i
  for i in $(seq 1 $(($2 * 10))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)" = 200 ] && return 0
    sleep 0.1
  done
  tail -n 20 "$RUN"/*.log >&2 || true
  die "$3 did not answer 200 at $1 within $2 s"
}

say "starting the fake Okta on 127.0.0.1:$IDP_PORT"
"$fake" okta --listen "127.0.0.1:$IDP_PORT" --redirect-uri "$BASE/auth/callback" --rate-limit 1000000 \
  --key-out "$RUN/fake-service-key.pem" >"$RUN/fake-okta.log" 2>&1 </dev/null &
pids+=($!)
for _ in $(seq 1 300); do
  grep -q '^users:' "$RUN/fake-okta.log" 2>/dev/null && break
  sleep 0.1
done
grep -q '^users:' "$RUN/fake-okta.log" || die "the fake Okta printed no user list (see $RUN/fake-okta.log)"
field() { sed -n "s/^$1: *//p" "$RUN/fake-okta.log" | head -n 1; }
user_id() { awk -v h="$1" '$1 == h { print $2; exit }' "$RUN/fake-okta.log"; }
ISSUER=$(field issuer)
ORG=$(field base_url)
CLIENT_ID=$(field oidc_client_id)
AGENT=$(user_id agent3)
[ -n "$ISSUER" ] && [ -n "$ORG" ] && [ -n "$CLIENT_ID" ] && [ -n "$AGENT" ] ||
  die "could not read the issuer, the OIDC client or agent3 from $RUN/fake-okta.log"
(umask 077 && field ssws_token >"$RUN/okta-token" && field oidc_client_secret >"$RUN/oidc-secret" &&
  python3 -c 'import secrets; print(secrets.token_hex(32))' >"$RUN/pseudo-key" &&
  python3 -c 'import secrets; print(secrets.token_hex(32))' >"$RUN/checkpoint-key")

say "writing the fuzz configuration (limits raised for one busy agent)"
cat >"$RUN/policy.toml" <<'EOF'
# The fuzz run's policy: the default, with the per-agent and per-caller limits at their maxima, so thousands of
# generated requests from one agent reach the handlers instead of stopping at 429. Not for production.
version = 1
[limits]
challenges_per_target_per_hour = 100
challenges_per_agent_per_hour = 10000
wrong_codes_before_lockout = 100
lookups_per_agent_per_hour = 100000
EOF
cat >"$RUN/config.toml" <<EOF
# Written by scripts/api-fuzz.sh; removed after a green run.
[server]
listen = "127.0.0.1:$PORT"
public_url = "$BASE"
tenant = "api-fuzz"

[limits]
api_per_agent_per_minute = 1000000

[okta]
org_url = "$ORG"
api_token_file = "$RUN/okta-token"

[sign_in]
issuer = "$ISSUER"
client_id = "$CLIENT_ID"
client_secret_file = "$RUN/oidc-secret"

[policy]
file = "$RUN/policy.toml"

[pseudonymization]
key_id = "k1"
key_file = "$RUN/pseudo-key"

[audit]
sqlite_path = "$RUN/audit.sqlite"
checkpoint_key_file = "$RUN/checkpoint-key"
EOF
"$portal" --check-config "$RUN/config.toml" >/dev/null

say "starting fctr-portal on $BASE"
FCTR_LOG=${FCTR_LOG:-warn} "$portal" --config "$RUN/config.toml" >"$RUN/portal.log" 2>&1 </dev/null &
pids+=($!)
wait_200 "$BASE/readyz" 60 "fctr-portal"

say "signing agent3 in at the fake issuer (authorization code + PKCE) for a bearer ID token"
VERIFIER=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
CHALLENGE=$(printf '%s' "$VERIFIER" | python3 -c 'import sys,hashlib,base64; print(base64.urlsafe_b64encode(hashlib.sha256(sys.stdin.buffer.read()).digest()).rstrip(b"=").decode())')
REDIRECT="$BASE/auth/callback"
AUTHZ="$ISSUER/oauth2/v1/authorize"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$ISSUER/.well-known/openid-configuration")" = 200 ] ||
  AUTHZ="$ORG/oauth2/v1/authorize"
page=$(curl -sS -G "$AUTHZ" --data-urlencode "client_id=$CLIENT_ID" --data-urlencode response_type=code \
  --data-urlencode "scope=openid groups" --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode state=fuzz \
  --data-urlencode nonce=fuzz --data-urlencode "code_challenge=$CHALLENGE" \
  --data-urlencode code_challenge_method=S256)
REQUEST_ID=$(printf '%s' "$page" | sed -n 's/.*name="request_id" value="\([^"]*\)".*/\1/p' | head -n 1)
[ -n "$REQUEST_ID" ] || die "the fake's sign-in page had no request_id"
location=$(curl -sS -o /dev/null -w '%{redirect_url}' --data-urlencode "request_id=$REQUEST_ID" \
  --data-urlencode "user=$AGENT" "$AUTHZ")
CODE=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)["code"][0])' "$location")
# The client secret goes to curl on stdin (a config line), not on its command line.
TOKEN=$(printf 'user = "%s:%s"\n' "$CLIENT_ID" "$(cat "$RUN/oidc-secret")" |
  curl -sS -K - --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE" \
    --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode "code_verifier=$VERIFIER" \
    "${AUTHZ%/authorize}/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id_token"])')
[ -n "$TOKEN" ] || die "no ID token from the fake issuer"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d '{"query":"alice@example.com"}' "$BASE/api/v1/users/search")" = 200 ] ||
  die "the bearer token does not work for a search"

SEED=${FCTR_API_FUZZ_SEED:-$(python3 -c 'import secrets; print(secrets.randbelow(2**31))')}
say "schemathesis run --checks all --max-examples $EXAMPLES --seed $SEED --workers $WORKERS"
start=$(date +%s)
set +e
# The token reaches schemathesis through its environment (its config file names the variable), not its argv.
# One status is let through `not_a_server_error`: 502 `idp_error`, the documented answer when the identity
# provider refuses or fails a call (the fake Okta refuses a push to its locked-out caller erin with E0000069, as
# Okta does). The portal's own 5xx (500 a panic, 503 a store down) still fail the run, and so does a 502 with any
# other body (checked below from the report).
# The stateful phase follows the document's own links (search and lookup results to the caller operations,
# verifications to theirs) and Location headers, but not schemathesis' dependency analysis: it feeds values seen
# in responses into path parameters regardless of their enum, so it sent `POST /users/{id}/actions/{action}` with
# `action = remove_factor` (a card's `actions[].kind`), which that operation's enum excludes because
# `remove_factor` has its own operation with a required body, and then called the 422 a valid request refused
# (seed 703752817).
cat >"$RUN/schemathesis.toml" <<'EOF'
[headers]
Authorization = "Bearer ${FCTR_API_FUZZ_TOKEN}"

[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "502"]

[phases.stateful.inference]
algorithms = ["location-headers"]
EOF
(cd "$RUN" && FCTR_API_FUZZ_TOKEN="$TOKEN" "$VENV/bin/schemathesis" --config-file "$RUN/schemathesis.toml" run \
  "$BASE/api/v1/openapi.json" --checks all --max-examples "$EXAMPLES" --seed "$SEED" --workers "$WORKERS" \
  --request-timeout 10 --report junit,ndjson --report-dir "$REPORT" --no-color)
status=$?
set -e
say "schemathesis exited $status after $(($(date +%s) - start)) s; response times ($PROFILE portal):"
for report in "$REPORT"/ndjson-*.ndjson; do
  python3 - "$report" <<'PY' || true
import json, sys, collections, glob
times = collections.defaultdict(list)
statuses = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    d = json.loads(line)
    f = d.get("ScenarioFinished")
    if not f:
        continue
    rec = f["recorder"]
    cases = rec.get("cases", {})
    for cid, inter in rec.get("interactions", {}).items():
        resp = inter.get("response")
        case = cases.get(cid, {}).get("value", {})
        if not resp or not case:
            continue
        op = f'{case["method"]} {case["path"]}'
        times[op].append(resp["elapsed"] * 1000)
        statuses[op][resp["status_code"]] += 1
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f'{"operation":<48} {"requests":>8} {"p50 ms":>7} {"p99 ms":>7} {"max ms":>7}  statuses')
other = []
for op in sorted(times):
    v = times[op]
    if set(statuses[op]) == {405}:
        other += v  # the unsupported_method probes: one per undocumented method and path
        continue
    st = " ".join(f"{k}:{n}" for k, n in sorted(statuses[op].items()))
    print(f"{op:<48} {len(v):>8} {pct(v,50):>7.1f} {pct(v,99):>7.1f} {max(v):>7.1f}  {st}")
if other:
    print(f'{"(other methods: 405)":<48} {len(other):>8} {pct(other,50):>7.1f} {pct(other,99):>7.1f} {max(other):>7.1f}')
print(f'{"all":<48} {sum(len(v) for v in times.values()):>8}')
PY
done
# The portal's log: no panic, and no error but the trace layer's note of a 502 (each one an IdP refusal above).
if grep -E '"level":"ERROR"|panicked' "$RUN/portal.log" | grep -vq '"classification":"Status code: 502 Bad Gateway"'; then
  grep -E '"level":"ERROR"|panicked' "$RUN/portal.log" | grep -v '"classification":"Status code: 502 Bad Gateway"' |
    head -n 20 >&2
  die "the portal logged errors during the run ($RUN/portal.log)"
fi
for report in "$REPORT"/ndjson-*.ndjson; do
  python3 - "$report" <<'PY' || die "a 502 that is not the idp_error envelope (report: $report)"
import base64, json, sys
bad = 0
for line in open(sys.argv[1]):
    f = json.loads(line).get("ScenarioFinished")
    for inter in (f or {}).get("recorder", {}).get("interactions", {}).values():
        resp = inter.get("response") or {}
        if resp.get("status_code", 0) >= 500:
            content = resp.get("content") or {}
            body = base64.b64decode(content["$base64"]).decode("utf-8", "replace") if "$base64" in content else str(content)
            try:
                code = json.loads(body)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = None
            if resp["status_code"] != 502 or code != "idp_error":
                bad += 1
                print("server error:", resp["status_code"], str(body)[:200], file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done
[ "$status" = 0 ] || die "schemathesis found failures (seed $SEED; report in $REPORT)"
ok=1
say "green: every check, $EXAMPLES examples per operation, seed $SEED"
