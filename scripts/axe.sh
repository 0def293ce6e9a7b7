#!/usr/bin/env bash
# Installs axe-core (npm, pinned below) into target/axe-core for the browser tests' accessibility checks
# (app-http/tests/browser/harness.rs, Browser::assert_accessible, reads target/axe-core/node_modules/axe-core/axe.min.js
# or $FCTR_AXE_JS). Idempotent: does nothing when this version is already there. Called by scripts/test before
# `cargo test`; docs/testing.md, "Browser tests: accessibility and small screens".
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.14.1
dir="$(pwd)/target/axe-core"
js="$dir/node_modules/axe-core/axe.min.js"
if [ "$(cat "$dir/.installed" 2>/dev/null)" = "$VERSION" ] && [ -s "$js" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing nodejs + npm"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "npm missing and cannot install (not root): the browser tests' accessibility checks will skip unless FCTR_REQUIRE_BROWSER=1" >&2
    exit 0
  fi
fi
echo "== installing axe-core@$VERSION into target/axe-core"
rm -rf "$dir" && mkdir -p "$dir"
printf '{"name":"fctr-axe-core","private":true}\n' >"$dir/package.json"
(cd "$dir" && npm install --silent --no-audit --no-fund --save-exact "axe-core@$VERSION" >/dev/null)
got=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/axe-core/package.json" 2>/dev/null || true)
if [ "$got" != "$VERSION" ] || [ ! -s "$js" ]; then
  echo "axe-core@$VERSION did not install into $dir (found version '${got}')" >&2
  exit 1
fi
echo "$VERSION" >"$dir/.installed"
