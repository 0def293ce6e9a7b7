#!/usr/bin/env bash
# The dependency rule (ARCHITECTURE section 2), checked: `bash scripts/dependency-rule.sh`.
# - fctr-core pulls in no runtime, HTTP, database or cache crate;
# - fctr-ports depends on no other workspace crate;
# - adapters depend on fctr-ports only among workspace crates (never core, never each other);
# - the shells (fctr-portal, fctr) never depend on each other, and fctr-wiring depends on no shell, no testkit and
#   no HTTP framework;
# - the production builds (`--no-default-features`) of both shells contain no fctr-testkit (no fake IdP).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
bad=$(cargo tree -p fctr-core -e normal --prefix none --locked | grep -E '^(tokio|reqwest|hyper|axum|sqlx|redis)( |$)' | sort -u || true)
if [ -n "$bad" ]; then echo "fctr-core depends on I/O crates:"; echo "$bad"; fail=1; fi
ws=$(cargo tree -p fctr-ports -e normal --prefix none --locked | grep -E '^fctr-' | grep -v '^fctr-ports ' | sort -u || true)
if [ -n "$ws" ]; then echo "fctr-ports depends on workspace crates:"; echo "$ws"; fail=1; fi
for a in fctr-memory fctr-okta fctr-entra fctr-sqlite fctr-redis fctr-postgres fctr-webhook fctr-tickets; do
  deps=$(cargo tree -p "$a" -e normal --depth 1 --prefix none --locked | grep -E '^fctr-' | grep -vE "^($a|fctr-ports) " | sort -u || true)
  if [ -n "$deps" ]; then echo "$a depends on:"; echo "$deps"; fail=1; fi
done
# `tree PKG ARGS…`: the crate names in PKG's dependency tree, one per line; a package that does not exist is a failure.
tree() {
  local pkg=$1; shift
  if ! cargo tree -p "$pkg" --prefix none --locked "$@" 2>/dev/null | awk '{print $1}' | sort -u; then
    echo "!missing"
  fi
}
# `refuse PKG DEP LABEL ARGS…`: fail when DEP is in PKG's tree (or PKG cannot be resolved).
refuse() {
  local pkg=$1 dep=$2 label=$3; shift 3
  local names
  names=$(tree "$pkg" "$@")
  if grep -qx '!missing' <<<"$names"; then
    echo "$pkg: cannot resolve its dependency tree (is it a workspace member?)"; fail=1
  elif grep -qx -- "$dep" <<<"$names"; then
    echo "$pkg $label depends on $dep"; fail=1
  fi
}
for pair in "fctr-portal fctr" "fctr fctr-portal"; do
  set -- $pair
  refuse "$1" "$2" "(normal, build or dev)" -e normal,build,dev
done
for dep in fctr-portal fctr fctr-testkit axum; do
  refuse fctr-wiring "$dep" "" -e normal,build
done
for shell in fctr-portal fctr; do
  refuse "$shell" fctr-testkit "--no-default-features (the production build)" --no-default-features -e normal,build
done
[ $fail = 0 ] && echo "dependency rule: ok"
exit $fail
