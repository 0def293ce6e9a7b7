#!/usr/bin/env bash
# The dependency rule (ARCHITECTURE section 2), checked: `bash scripts/dependency-rule.sh`.
# - fctr-core pulls in no runtime, HTTP, database or cache crate;
# - fctr-ports depends on no other workspace crate;
# - adapters depend on fctr-ports only among workspace crates (never core, never each other).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
bad=$(cargo tree -p fctr-core -e normal --prefix none --locked | grep -E '^(tokio|reqwest|hyper|axum|sqlx|redis)( |$)' | sort -u || true)
if [ -n "$bad" ]; then echo "fctr-core depends on I/O crates:"; echo "$bad"; fail=1; fi
ws=$(cargo tree -p fctr-ports -e normal --prefix none --locked | grep -E '^fctr-' | grep -v '^fctr-ports ' | sort -u || true)
if [ -n "$ws" ]; then echo "fctr-ports depends on workspace crates:"; echo "$ws"; fail=1; fi
for a in fctr-memory fctr-okta fctr-entra fctr-sqlite; do
  deps=$(cargo tree -p "$a" -e normal --depth 1 --prefix none --locked | grep -E '^fctr-' | grep -vE "^($a|fctr-ports) " | sort -u || true)
  if [ -n "$deps" ]; then echo "$a depends on:"; echo "$deps"; fail=1; fi
done
[ $fail = 0 ] && echo "dependency rule: ok"
exit $fail
