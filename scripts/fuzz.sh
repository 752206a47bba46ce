#!/usr/bin/env bash
# Fuzzes Limen's decoders and parsers (the targets in fuzz/fuzz_targets) with cargo-fuzz
# on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its unstable flags), one
# target after the other, and writes what it did to bench/results/fuzz-<UTC time>.md.
# Installs cargo-fuzz if it is missing.
#
#   scripts/fuzz.sh                        every target, 10,000,000 executions each
#   scripts/fuzz.sh --runs N               N executions per target
#   scripts/fuzz.sh --time S               S seconds per target instead
#   scripts/fuzz.sh --update-corpus        afterwards, minimise what the runs found into
#                                          fuzz/corpus/<target> (at most 200 files each)
#   scripts/fuzz.sh [options] TARGET...    only these targets
#
# New inputs go to fuzz/.work/corpus/<target> (not in git); the committed corpus
# fuzz/corpus/<target> is read, never written, unless --update-corpus. A crash (or an
# input that takes over 10 s) stops that target; the input is in fuzz/artifacts/<target>/
# and the results file names it. The normal tests replay fuzz/corpus through the same
# functions (`fuzzing` modules), so CI needs neither nightly nor cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10000000
seconds=""
update_corpus=false
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --time) seconds=$2; shift 2 ;;
        --update-corpus) update_corpus=true; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

export RUSTC_BOOTSTRAP=1
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

# No sanitizer (the code under test is safe Rust: a bug is a panic, which libFuzzer
# catches as a crash), with overflow checks and debug assertions on.
fuzz_flags=(--sanitizer none --debug-assertions)
if [ -n "$seconds" ]; then
    limit=(-max_total_time="$seconds")
    budget="$seconds s per target"
else
    limit=(-runs="$runs")
    budget="$runs executions per target"
fi

# What is fuzzed is what is built now: name it before the runs (HEAD may move during them).
built_from="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates fuzz || echo ' with local changes')"
(cd fuzz && cargo fuzz build "${fuzz_flags[@]}")

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results fuzz/.work
results=bench/results/fuzz-$stamp.md
rows=()
crashes=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/.work/corpus/$t"
    log=fuzz/.work/$t-$stamp.log
    echo "==> $t ($budget)"
    started=$SECONDS
    status=0
    (cd fuzz && cargo fuzz run "${fuzz_flags[@]}" "$t" ".work/corpus/$t" "corpus/$t" -- \
        "${limit[@]}" -timeout=10 -print_final_stats=1) >"$log" 2>&1 || status=$?
    elapsed=$((SECONDS - started))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    # libFuzzer says 0 for a run shorter than a second.
    if [ "${rate:-0}" -eq 0 ] && [ -n "$execs" ]; then
        rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    fi
    if [ "$status" -eq 0 ]; then
        outcome="no crash"
    else
        crashes=$((crashes + 1))
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //')
        outcome="**crash** (exit $status) ${artifact:+: \`fuzz/$artifact\`}"
    fi
    tail -n 5 "$log"
    rows+=("| $t | ${execs:-?} | ${rate:-?} | ${elapsed} s | $outcome |")
done

if $update_corpus; then
    for t in "${targets[@]}"; do
        cp -n "fuzz/.work/corpus/$t"/* "fuzz/corpus/$t"/ 2>/dev/null || true
        (cd fuzz && cargo fuzz cmin "${fuzz_flags[@]}" "$t" "corpus/$t")
        # Keep the corpus small for the tests that replay it: 200 files, the largest (in a
        # minimised corpus they carry the most features; the smallest cover little).
        ls -S "fuzz/corpus/$t" | tail -n +201 | sed "s|^|fuzz/corpus/$t/|" | xargs -r rm -f
    done
fi

{
    echo "# Fuzzing, $stamp"
    echo
    echo "\`scripts/fuzz.sh\` ($budget), built from commit $built_from,"
    echo "$(rustc --version), $(cargo fuzz --version), libFuzzer without a sanitizer, overflow"
    echo "checks and debug assertions on; $(nproc) cores, one target at a time, one process each."
    echo
    echo "| Target | Executions | Exec/s | Time | Result |"
    echo "| --- | ---: | ---: | ---: | --- |"
    printf '%s\n' "${rows[@]}"
} >"$results"
echo
cat "$results"
echo "written to $results"
[ "$crashes" -eq 0 ]
