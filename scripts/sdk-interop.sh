#!/usr/bin/env bash
# Vendor SDKs against the fakes: Okta's Python and Node.js management SDKs against the fake Okta, Microsoft's Graph
# SDK for Python against the fake Entra. Each SDK call is a named check printed as PASS, FAIL or KNOWN-SDK-DEFECT
# (a bug in the SDK itself, with its upstream reference; never counted as a pass). Exits non-zero on any FAIL.
#
#   bash scripts/sdk-interop.sh
#
# Installs what it needs into target/ (a Python venv in target/sdk-venv, a node_modules folder in target/sdk-node,
# both pinned by testkit/interop/requirements.txt and package.json, reinstalled only when those change), builds
# and starts the fake-idp binary on random loopback ports (one fake per SDK run, so no run sees another's
# changes), and stops them on exit. Credentials come from the fakes' own start-up output, never from the repo.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/.."
root=$PWD
interop=testkit/interop
venv=target/sdk-venv
node_dir=target/sdk-node

# -- tools ------------------------------------------------------------------------------------------------------
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing $*"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "sdk-interop: $* missing and cannot install (not root)" >&2
    exit 1
  fi
}
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm

mkdir -p target
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$interop/requirements.txt" "$venv/.installed-requirements"; then
  echo "== sdk-interop: Python SDKs into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$interop/requirements.txt"
  cp "$interop/requirements.txt" "$venv/.installed-requirements"
fi
if [ ! -d "$node_dir/node_modules/@okta/okta-sdk-nodejs" ] || ! cmp -s "$interop/package.json" "$node_dir/package.json"; then
  echo "== sdk-interop: Node SDK into $node_dir"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$interop/package.json" "$node_dir/package.json"
  (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error)
fi

echo "== sdk-interop: building fake-idp"
cargo build --locked -q -p fctr-testkit --bin fake-idp
fake_idp="${CARGO_TARGET_DIR:-target}/debug/fake-idp"

# -- fakes ------------------------------------------------------------------------------------------------------
work=$(mktemp -d)
chmod 700 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME KIND: starts one fake on a random loopback port; its output (with its credentials) stays in $work.
start() {
  local name=$1 kind=$2
  "$fake_idp" "$kind" --listen 127.0.0.1:0 --key-out "$work/$name-key.pem" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  local i
  for i in $(seq 1 150); do
    if grep -q '^users:' "$work/$name.out" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "sdk-interop: fake $name exited:" >&2
      cat "$work/$name.err" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "sdk-interop: fake $name did not start in 30 s" >&2
  exit 1
}
# value NAME KEY: the first word after "KEY:" in the fake's output.
value() {
  awk -v k="$2:" '$1 == k { print $2; exit }' "$work/$1.out"
}

start okta-python okta
start okta-node okta
start entra entra

status=0
run() {
  local label=$1
  shift
  echo "== sdk-interop: $label"
  if ! "$@"; then
    status=1
  fi
}

okta_env() {
  env FAKE_OKTA_BASE="$(value "$1" base_url)" FAKE_OKTA_TOKEN="$(value "$1" ssws_token)" \
    FAKE_OKTA_CLIENT_ID="$(value "$1" service_client_id)" FAKE_OKTA_KEY_ID="$(value "$1" service_key_id)" \
    FAKE_OKTA_KEY_PEM="$work/$1-key.pem" "${@:2}"
}

run "Okta Python SDK (okta)" okta_env okta-python "$venv/bin/python" "$interop/okta_python.py"
run "Okta Node.js SDK (@okta/okta-sdk-nodejs)" okta_env okta-node \
  env SDK_NODE_DIR="$root/$node_dir" node "$interop/okta_node.mjs"
run "Microsoft Graph SDK for Python (msgraph-sdk)" env \
  FAKE_ENTRA_BASE="$(value entra base_url)" FAKE_ENTRA_TOKEN_URL="$(value entra token_url)" \
  FAKE_ENTRA_CLIENT_ID="$(value entra client_id)" FAKE_ENTRA_CLIENT_SECRET="$(value entra client_secret)" \
  "$venv/bin/python" "$interop/graph_python.py"

if [ "$status" = 0 ]; then
  echo "sdk-interop: no FAIL"
else
  echo "sdk-interop: FAILED (see the FAIL lines above)" >&2
fi
exit "$status"
