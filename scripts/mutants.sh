#!/usr/bin/env bash
# Mutation testing of the core and the ports (cargo-mutants): `bash scripts/mutants.sh [core|ports|all] [args…]`.
# MUTANTS_OUT sets the results folder (default target/mutants), MUTANTS_JOBS the parallel jobs (default 2).
# Extra arguments go to cargo-mutants (e.g. `--file 'core/src/engine/*.rs'`, `--jobs 1`). Results land in
# target/mutants/<part>/mutants.out (caught.txt, missed.txt, unviable.txt, timeout.txt). Not part of .ci/run: a full
# run takes hours on two cores. Surviving mutants are either killed by a test or listed, with the reason they are
# equivalent, in docs/mutation-testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
[ $# -gt 0 ] && shift
if ! command -v cargo-mutants >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi
out="${MUTANTS_OUT:-target/mutants}"
jobs="${MUTANTS_JOBS:-2}"
mkdir -p "$out/core" "$out/ports"
common=(--jobs "$jobs" --test-tool cargo --minimum-test-timeout 60 --baseline run)
if [ "$part" = core ] || [ "$part" = all ]; then
  cargo mutants -p fctr-core --output "$out/core" "${common[@]}" "$@" || true
fi
if [ "$part" = ports ] || [ "$part" = all ]; then
  # The ports are pinned by their own tests (ports/tests/it and the unit tests): a mutant the core's or the stores'
  # tests would notice but the ports' own tests do not is a gap in the contract's tests.
  cargo mutants -p fctr-ports --output "$out/ports" "${common[@]}" "$@" || true
fi
for d in "$out"/*/mutants.out; do
  [ -d "$d" ] || continue
  echo "== ${d%/mutants.out}: caught $(wc -l <"$d/caught.txt"), missed $(wc -l <"$d/missed.txt"), unviable $(wc -l <"$d/unviable.txt"), timeout $(wc -l <"$d/timeout.txt")"
done
