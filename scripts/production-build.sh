#!/usr/bin/env bash
# The production portal contains no fake IdP: `bash scripts/production-build.sh`.
#
# Builds `fctr-portal` as it ships (`--release --no-default-features`: no `demo` feature, so no fctr-testkit) and
# searches the binary for the fakes' fixture credentials and fixture user logins. The values are read from the
# testkit's sources at run time (every `const …TOKEN…`/`…SECRET…: &str` and every fixture user's login), never
# copied here, so the check follows the testkit when it changes. Any hit fails.
#
# PRODUCTION_BUILD_PROFILE=dev runs the same check on a dev build (cheaper; the default is release, what ships).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PRODUCTION_BUILD_PROFILE:-release}
start=$(date +%s)

# 1. What to look for, from the testkit's sources.
values=$(
  {
    # Fixed API tokens and client secrets: `pub const DEFAULT_API_TOKEN: &str = "…";` and the like.
    grep -rhoE 'const [A-Z0-9_]*(TOKEN|SECRET)[A-Z0-9_]*: &str = "[^"]+"' testkit/src | sed -E 's/.*= "(.*)"$/\1/'
    # Fixture user logins: `handle: "alice"` in the seed tables is `alice@example.com`; explicit `upn: Some("…")`.
    grep -rhoE 'handle: "[a-z0-9._-]+"' testkit/src/*/fixtures.rs | sed -E 's/handle: "(.*)"/\1@example.com/'
    grep -rhoE 'upn: Some\("[^"]+"\)' testkit/src/*/fixtures.rs | sed -E 's/upn: Some\("(.*)"\)/\1/'
  } | sort -u
)
count=$(grep -c . <<<"$values" || true)
credentials=$(grep -rhoE 'const [A-Z0-9_]*(TOKEN|SECRET)[A-Z0-9_]*: &str = "' testkit/src | wc -l)
if [ "$credentials" -lt 2 ] || [ "$count" -lt 5 ]; then
  echo "production build check: found only $credentials fixture credentials and $count values in testkit/src;" \
    "the patterns in $0 no longer match the testkit: fix them" >&2
  exit 1
fi

# 2. The production build.
cargo build --profile "$profile" --locked -p fctr-portal --no-default-features
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]+)".*/\1/')
dir=$profile
[ "$profile" = dev ] && dir=debug
bin="$target_dir/$dir/fctr-portal"
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }

# 3. The search. Values are not printed (they are test fixtures, but a log is no place for credentials either):
#    the constant's position in the list is enough to find it again.
found=0
i=0
while IFS= read -r v; do
  i=$((i + 1))
  [ -n "$v" ] || continue
  if grep -q -a -F -- "$v" "$bin"; then
    echo "FOUND fixture value #$i of $count (from testkit/src) in $bin"
    found=$((found + 1))
  fi
done <<<"$values"
echo "searched $bin ($(du -h "$bin" | cut -f1)) for $count fixture values ($credentials credentials):" \
  "$found found, $(( $(date +%s) - start ))s"
if [ "$found" -gt 0 ]; then
  echo "the production portal contains the fake IdPs' fixtures: something links fctr-testkit without the demo feature" >&2
  exit 1
fi
echo "production build: ok (no fake IdP)"
