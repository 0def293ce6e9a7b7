#!/usr/bin/env bash
# Dependency policy and advisories, offline: `bash scripts/deny.sh`.
# Installs cargo-deny if missing and unpacks the RustSec snapshot from ../shared/advisory-db as a git repository.
set -euo pipefail
cd "$(dirname "$0")/.."
DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$DENY_VERSION"; then
  echo "installing cargo-deny $DENY_VERSION (debug build, ~1-3 min)"
  cargo install --locked --debug --quiet "cargo-deny@$DENY_VERSION"
fi
snapshot="../shared/advisory-db/advisory-db.tar.gz"
db="target/advisory-db/advisory-db-3157b0e258782691"
if [ ! -d "$db/.git" ]; then
  if [ ! -f "$snapshot" ]; then
    echo "advisory snapshot $snapshot not found" >&2
    exit 1
  fi
  rm -rf "$db" && mkdir -p "$db"
  tar -xzf "$snapshot" -C "$db"
  # The tarball may hold one top-level folder; cargo-deny wants the database at the root.
  if [ ! -d "$db/crates" ] && [ "$(ls "$db" | wc -l)" = 1 ]; then
    inner="$db/$(ls "$db")"; mv "$inner"/* "$inner"/.[!.]* "$db"/ 2>/dev/null || true; rmdir "$inner" 2>/dev/null || true
  fi
  (cd "$db" && git init -q && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -qm snapshot)
fi
echo "advisory snapshot: $(cat ../shared/advisory-db/SNAPSHOT 2>/dev/null || echo unknown)"
# cargo-deny reads the metadata of every target platform's crates (windows-sys and the like), which a build on
# this host never downloads; fetch them first, then check with the advisory database offline.
cargo fetch --locked -q
cargo deny --offline check
