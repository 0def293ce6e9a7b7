#!/usr/bin/env bash
# Agent sign-in against an OpenID-certified provider nobody here wrote (npm `oidc-provider`, pinned below):
# client_secret_basic + RS256, client_secret_post + EdDSA, private_key_jwt + ES256, groups only at userinfo.
# Installs the package into target/oidc-interop (its own node_modules) and runs the ignored tests in
# app-http/tests/it/certified_provider.rs. Called by scripts/test.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=9.13.3
dir="$(pwd)/target/oidc-interop"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/npm missing: cannot run the certified-provider sign-in tests" >&2
  exit 1
fi
if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$VERSION" ]; then
  echo "== installing oidc-provider@$VERSION into target/oidc-interop"
  rm -rf "$dir" && mkdir -p "$dir"
  printf '{"name":"fctr-oidc-interop","private":true,"type":"module"}\n' >"$dir/package.json"
  (cd "$dir" && npm install --silent --no-audit --no-fund "oidc-provider@$VERSION" >/dev/null)
  echo "$VERSION" >"$dir/.installed"
fi
echo "== sign-in against oidc-provider@$VERSION (cargo test -p fctr-portal --test it certified_provider -- --ignored)"
FCTR_OIDC_PROVIDER_DIR="$dir" cargo test --locked -q -p fctr-portal --test it certified_provider -- --ignored
