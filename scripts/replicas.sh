#!/usr/bin/env bash
# A trial of the replicated topology on one machine (docs/deploy.md): three fctr-portal replicas behind haproxy
# (examples/haproxy.cfg: round robin, no stickiness), sharing the local Redis (short-lived state) and PostgreSQL
# (audit log and usage ledger), signing agents in against a fake Okta. Everything listens on loopback, and
# everything it starts or writes is under .fctr-replicas/ (gitignored).
#
#   bash scripts/replicas.sh up       build, start, wait until the load balancer answers; prints how to sign in
#   bash scripts/replicas.sh status   what runs, and which replica answers
#   bash scripts/replicas.sh down     stop exactly what `up` started (its pid files), drop the trial's PostgreSQL
#                                     schema, delete the trial's Redis keys, remove .fctr-replicas/
#
# Build. The portal is built as it ships: `cargo build --release -p fctr-portal --no-default-features` (no demo, no
# fake IdP inside; the same binary scripts/production-build.sh checks and CI builds, so a target/ that CI or that
# script warmed has it already, and the trial runs what you would deploy). A first release build takes 10 to 20
# minutes on two cores: FCTR_TRIAL_PROFILE=dev builds the same code without optimisation, sooner. The fake Okta
# (fctr-testkit's `fake-idp`) is always a dev build: it is a test double, and its speed is not on trial.
#
# Needs cargo, curl, psql, redis-cli and haproxy (installed with apt-get when missing and run as root);
# PostgreSQL on 127.0.0.1:5432 with a database "test" that user postgres reaches without a password (trust), and
# Redis 6.2 or newer on 127.0.0.1:6379: the services the test suite uses (scripts/services.sh starts them when
# they are installed). Ports: 8440 (the load balancer), 8441-8443 (the replicas), 8081 (the fake Okta): the
# addresses examples/replicated.toml names. The trial's data: PostgreSQL schema fctr_trial, Redis prefix
# fctr-trial; `up` drops what an earlier trial left there, `down` drops it too.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

STATE="$root/.fctr-replicas"
PROFILE=${FCTR_TRIAL_PROFILE:-release}
SCHEMA=fctr_trial
PREFIX=fctr-trial
PG_URL=postgres://postgres@127.0.0.1:5432/test
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
LB_PORT=8440
IDP_PORT=8081
REPLICAS=(r1 r2 r3)
declare -A PORT=([r1]=8441 [r2]=8442 [r3]=8443)
LB="http://127.0.0.1:$LB_PORT"
IDP="http://127.0.0.1:$IDP_PORT"
# What each pid file's process is called (/proc/PID/comm), so a pid reused by another program is never signalled.
declare -A COMM=([fake-okta]=fake-idp [r1]=fctr-portal [r2]=fctr-portal [r3]=fctr-portal [haproxy]=haproxy)
ALL=(haproxy r1 r2 r3 fake-okta) # stop order: the entry first, the fake last

say() { printf '== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
die() {
  printf 'replicas.sh: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- processes -------------------------------------------------------------------------------------------------

pid_of() { [ -f "$STATE/run/$1.pid" ] && cat "$STATE/run/$1.pid"; }

# Whether the process recorded for $1 runs (and is still the program we started, not a reused pid). A zombie (dead,
# not yet reaped by whoever adopted it) does not run.
alive() {
  local pid state
  pid=$(pid_of "$1") || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${COMM[$1]}" ] || return 1
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

any_alive() {
  local n
  for n in "${ALL[@]}"; do alive "$n" && return 0; done
  return 1
}

# Starts "$@" in its own session (no terminal signal reaches it), output to logs/$name.log, pid to run/$name.pid.
start() {
  local name=$1
  shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/run/$name.pid"
}

# Stops what run/$1.pid names: SIGTERM (a portal writes a last audit checkpoint and closes), SIGKILL after 20 s.
stop() {
  local name=$1 pid i
  if ! alive "$name"; then
    rm -f "$STATE/run/$name.pid"
    return 0
  fi
  pid=$(pid_of "$name")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do
    alive "$name" || break
    sleep 0.1
  done
  if alive "$name"; then
    note "$name (pid $pid) still runs 20 s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      alive "$name" || break
      sleep 0.1
    done
  fi
  alive "$name" && die "$name (pid $pid) does not stop"
  note "stopped $name (pid $pid)"
  rm -f "$STATE/run/$name.pid"
}

last_lines() {
  local f="$STATE/logs/$1.log"
  [ -f "$f" ] || return 0
  printf -- '--- last lines of %s\n' "${f#"$root"/}" >&2
  tail -n 20 "$f" >&2
}

# --- services --------------------------------------------------------------------------------------------------

pg() { PGCONNECT_TIMEOUT=5 PGOPTIONS='-c client_min_messages=warning' psql "$PG_URL" -v ON_ERROR_STOP=1 -Atq "$@"; }
rcli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }
pg_up() { pg -c 'SELECT 1' >/dev/null 2>&1; }
redis_up() { [ "$(rcli PING 2>/dev/null)" = PONG ]; }

# Drops the trial's schema and deletes its Redis keys (SCAN, never KEYS: a shared Redis is not blocked).
drop_data() {
  local n
  if pg_up; then
    pg -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" || die "could not drop schema $SCHEMA"
    note "PostgreSQL: schema $SCHEMA dropped"
  else
    note "PostgreSQL not reachable: schema $SCHEMA not dropped (run down again when it is up)"
  fi
  if redis_up; then
    n=$(rcli --scan --pattern "$PREFIX:*" | wc -l)
    rcli --scan --pattern "$PREFIX:*" | xargs -r -n 200 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" DEL >/dev/null
    note "Redis: $n key(s) under $PREFIX: deleted"
  else
    note "Redis not reachable: keys under $PREFIX: not deleted (they expire on their own)"
  fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 seconds for $1 to answer 200, while the process named $3 lives.
wait_200() {
  local url=$1 secs=$2 name=$3 i
  for i in $(seq 1 $((secs * 5))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ] && return 0
    if ! alive "$name"; then
      last_lines "$name"
      die "$name exited before $url answered"
    fi
    sleep 0.2
  done
  last_lines "$name"
  die "$url did not answer 200 within $secs s"
}

random_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# --- commands --------------------------------------------------------------------------------------------------

how_to_use() {
  cat <<EOF

The replicated portal is up: $LB  (load balancer; replicas on 127.0.0.1:${PORT[r1]}, :${PORT[r2]}, :${PORT[r3]})

Sign in:   open $LB and choose "Sign in". The fake Okta's login page lets you pick a user:
           agent3 is Tier 3 (everything, audit view), agent2 Tier 2, agent1 Tier 1 (verify only), agent0 no role.
Try:       search alice@example.com, open her card, send a push (Okta Verify), then approve it on the fake
           phone page with the number the portal shows:  $IDP/_fake/phone
           Then run an action (e.g. clear sessions) while the grant is fresh. Audit view: $LB/audit (agent3).
Replicas:  every response names the replica that served it (round robin, no stickiness):
             curl -sI $LB/healthz | grep -i x-fctr-replica
           Kill one (kill \$(cat .fctr-replicas/run/r2.pid)): the others carry on.
Data:      Redis keys under "$PREFIX:" (redis-cli --scan --pattern '$PREFIX:*'),
           PostgreSQL schema $SCHEMA (psql $PG_URL -c 'SET search_path=$SCHEMA' -c 'TABLE audit_heads').
Logs:      .fctr-replicas/logs/ (r1.log r2.log r3.log: JSON lines; haproxy.log; fake-okta.log)
Config:    .fctr-replicas/config.toml (from examples/replicated.toml), secrets in .fctr-replicas/secrets/
Stop:      bash scripts/replicas.sh down
EOF
}

status() {
  local n
  if [ ! -d "$STATE" ]; then
    echo "not up (no .fctr-replicas/)"
    return 0
  fi
  for n in fake-okta r1 r2 r3 haproxy; do
    if alive "$n"; then
      printf '  %-9s running (pid %s)\n' "$n" "$(pid_of "$n")"
    else
      printf '  %-9s not running\n' "$n"
    fi
  done
  if alive haproxy; then
    printf '  %s/healthz answered by:' "$LB"
    for n in 1 2 3 4 5 6; do
      printf ' %s' "$(curl -s -o /dev/null -D - --max-time 2 "$LB/healthz" | tr -d '\r' |
        sed -n 's/^[Xx]-[Ff]ctr-[Rr]eplica: //p')"
    done
    echo
  fi
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"; }

up() {
  if [ -d "$STATE" ]; then
    if any_alive; then
      echo "already up (bash scripts/replicas.sh down stops it):"
      status
      how_to_use
      return 0
    fi
    say "an earlier trial left .fctr-replicas/ behind and nothing of it runs: cleaning it up first"
    down_quietly
  fi

  say "checking tools"
  need cargo "install Rust (rustup)"
  need curl "apt-get install curl"
  need setsid "apt-get install util-linux"
  need psql "apt-get install postgresql-client"
  need redis-cli "apt-get install redis-tools"
  if ! command -v haproxy >/dev/null 2>&1 && [ -x /usr/sbin/haproxy ]; then PATH="$PATH:/usr/sbin"; fi
  if ! command -v haproxy >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      note "installing haproxy (apt-get)"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
    else
      die "haproxy is missing: install it (Debian: sudo apt-get install haproxy) and run up again"
    fi
  fi
  note "haproxy: $(haproxy -v | head -n 1)"

  say "checking PostgreSQL (127.0.0.1:5432) and Redis ($REDIS_HOST:$REDIS_PORT)"
  if ! pg_up || ! redis_up; then
    bash scripts/services.sh | sed 's/^/   /'
  fi
  pg_up || die "PostgreSQL does not answer at $PG_URL (needs database test, user postgres, trust auth on loopback)"
  redis_up || die "Redis does not answer PING on $REDIS_HOST:$REDIS_PORT"
  local v
  v=$(rcli INFO server | tr -d '\r' | sed -n 's/^redis_version://p')
  case "$v" in
    [0-5].* | 6.[01].*) die "Redis $v is too old: fctr needs 6.2 or newer (GETDEL)" ;;
  esac
  note "PostgreSQL: $(pg -c 'SHOW server_version')   Redis: $v"

  local port
  for port in "$LB_PORT" "${PORT[r1]}" "${PORT[r2]}" "${PORT[r3]}" "$IDP_PORT"; do
    if port_busy "$port"; then
      die "port $port on 127.0.0.1 is taken (by: $(ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -n 1)); stop that first"
    fi
  done

  local cargo_profile=$PROFILE dir
  case "$PROFILE" in
    release) dir=release ;;
    dev | debug) cargo_profile=dev dir=debug ;;
    *) die "FCTR_TRIAL_PROFILE must be release or dev, not $PROFILE" ;;
  esac
  say "building the portal (cargo build --profile $cargo_profile -p fctr-portal --no-default-features) and the fake Okta"
  cargo build --locked --profile "$cargo_profile" -p fctr-portal --no-default-features
  cargo build --locked -p fctr-testkit --bin fake-idp
  local target portal fake
  target=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]+)".*/\1/')
  portal="$target/$dir/fctr-portal"
  fake="$target/debug/fake-idp"
  [ -x "$portal" ] || die "no portal binary at $portal"
  [ -x "$fake" ] || die "no fake-idp binary at $fake"
  case "$STATE" in
    *\"* | *\\*) die "the repository path must not contain a quote or a backslash (it goes into TOML strings)" ;;
  esac

  umask 077
  mkdir -p "$STATE/run" "$STATE/logs" "$STATE/secrets"
  # From here on, a failure stops whatever started (the logs stay for a look).
  trap 'up_failed' EXIT

  say "fresh trial data: dropping what an earlier trial left"
  drop_data

  say "starting the fake Okta on $IDP"
  start fake-okta "$fake" okta --listen "127.0.0.1:$IDP_PORT" --redirect-uri "$LB/auth/callback" \
    --key-out "$STATE/secrets/fake-service-key.pem"
  local i out=$STATE/logs/fake-okta.log
  for i in $(seq 1 100); do
    grep -q '^users:' "$out" 2>/dev/null && break
    if ! alive fake-okta && [ "$i" -gt 5 ]; then
      last_lines fake-okta
      die "the fake Okta exited"
    fi
    sleep 0.1
  done
  grep -q '^users:' "$out" || {
    last_lines fake-okta
    die "the fake Okta printed no user list within 10 s"
  }
  field() { sed -n "s/^$1: *//p" "$out" | head -n 1; }
  local token secret client_id issuer base
  token=$(field ssws_token)
  secret=$(field oidc_client_secret)
  client_id=$(field oidc_client_id)
  issuer=$(field issuer)
  base=$(field base_url)
  if [ -z "$token" ] || [ -z "$secret" ] || [ -z "$client_id" ] || [ -z "$issuer" ] || [ -z "$base" ]; then
    die "could not read the token, the OIDC client or the issuer from the fake's output ($out)"
  fi

  say "writing secrets (random keys, the fake's credentials) and the configuration"
  local s="$STATE/secrets"
  printf '%s\n' "$token" >"$s/okta-token"
  printf '%s\n' "$secret" >"$s/oidc-secret"
  random_key >"$s/pseudo-key"
  random_key >"$s/checkpoint-key"
  printf 'redis://%s:%s\n' "$REDIS_HOST" "$REDIS_PORT" >"$s/redis-url"
  printf '%s\n' "$PG_URL" >"$s/postgres-url"
  # examples/replicated.toml with the same keys: secret files here, the trial's schema and prefix, the fake's
  # client id and URLs.
  local line cfg="$STATE/config.toml"
  {
    echo "# Written by scripts/replicas.sh up from examples/replicated.toml; removed by down."
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in
        'org_url = '*) line="org_url = \"$base\"" ;;
        'issuer = '*) line="issuer = \"$issuer\"" ;;
        'client_id = '*) line="client_id = \"$client_id\"" ;;
        'key_prefix = '*) line="key_prefix = \"$PREFIX\"" ;;
        'postgres_url_file = '*)
          printf '%s\n' "${line//\/run\/fctr\//$s/}"
          line="postgres_schema = \"$SCHEMA\""
          ;;
      esac
      printf '%s\n' "${line//\/run\/fctr\//$s/}"
    done <examples/replicated.toml
  } >"$cfg"
  for line in "key_prefix = \"$PREFIX\"" "postgres_schema = \"$SCHEMA\"" "client_id = \"$client_id\"" \
    "redis_url_file = \"$s/redis-url\"" "postgres_url_file = \"$s/postgres-url\"" "issuer = \"$issuer\""; do
    grep -qxF "$line" "$cfg" || die "examples/replicated.toml changed: could not set '$line' in $cfg"
  done
  ! grep -q '/run/fctr' "$cfg" || die "examples/replicated.toml names a /run/fctr file this script does not write"
  "$portal" --check-config "$cfg" | sed 's/^/   /'

  local r
  for r in "${REPLICAS[@]}"; do
    say "starting replica $r on 127.0.0.1:${PORT[$r]}"
    FCTR_SERVER_LISTEN="127.0.0.1:${PORT[$r]}" FCTR_LOG="${FCTR_LOG:-info}" start "$r" "$portal" --config "$cfg"
  done
  for r in "${REPLICAS[@]}"; do
    wait_200 "http://127.0.0.1:${PORT[$r]}/healthz" 60 "$r"
    wait_200 "http://127.0.0.1:${PORT[$r]}/readyz" 30 "$r"
    note "$r ready (IdP, audit store and state store answer)"
  done

  say "starting haproxy (examples/haproxy.cfg) on 127.0.0.1:$LB_PORT"
  export FCTR_LB_BIND="127.0.0.1:$LB_PORT" FCTR_R1="127.0.0.1:${PORT[r1]}" FCTR_R2="127.0.0.1:${PORT[r2]}" \
    FCTR_R3="127.0.0.1:${PORT[r3]}"
  haproxy -c -q -f examples/haproxy.cfg || die "haproxy refuses examples/haproxy.cfg"
  start haproxy "$(command -v haproxy)" -db -f "$root/examples/haproxy.cfg"
  wait_200 "$LB/healthz" 30 haproxy
  # Until haproxy's first health checks pass, round robin may skip a replica: wait until all three answer.
  local seen
  for i in $(seq 1 50); do
    seen=$(for _ in 1 2 3 4 5 6; do
      curl -s -o /dev/null -D - --max-time 2 "$LB/healthz" | tr -d '\r' | sed -n 's/^[Xx]-[Ff]ctr-[Rr]eplica: //p'
    done | sort -u | tr '\n' ' ')
    [ "$seen" = "r1 r2 r3 " ] && break
    sleep 0.2
  done
  [ "$seen" = "r1 r2 r3 " ] || {
    last_lines haproxy
    die "the load balancer did not reach all three replicas (answered by: ${seen:-none})"
  }
  note "$LB/healthz answered by r1, r2 and r3"
  trap - EXIT
  how_to_use
}

# Called on any exit of `up` before it finished: stop what started, drop the data, keep the logs.
up_failed() {
  local rc=$?
  trap - EXIT
  [ "$rc" = 0 ] && rc=1
  echo >&2
  echo "replicas.sh: up did not finish; stopping what it started (logs kept in .fctr-replicas/logs/)" >&2
  local n
  for n in "${ALL[@]}"; do stop "$n" || true; done
  drop_data || true
  rm -rf "$STATE/secrets" "$STATE/config.toml" "$STATE/run"
  echo "replicas.sh: bash scripts/replicas.sh down removes the logs; up starts afresh" >&2
  exit "$rc"
}

down_quietly() {
  local n
  for n in "${ALL[@]}"; do stop "$n"; done
  drop_data
  rm -rf "$STATE"
}

down() {
  if [ ! -d "$STATE" ]; then
    echo "not up (no .fctr-replicas/): nothing to stop"
    return 0
  fi
  say "stopping haproxy, the replicas and the fake Okta"
  local n
  for n in "${ALL[@]}"; do stop "$n"; done
  say "dropping the trial's data"
  drop_data
  rm -rf "$STATE"
  say "down: .fctr-replicas/ removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) usage ;;
esac
