#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (AddressSanitizer; -O, which keeps Swift's bounds
# and overflow checks, in fuzz/.build-opt) and runs each for SECONDS, seeded from the test
# fixtures.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]     # default: 60 s, every harness
#
# Harnesses: fuzz-fits-header, fuzz-fits-image, fuzz-fits-table, fuzz-fits-compressed
# (seeds: Tests/*/Fixtures/*.fits*, fuzz/regressions/fits/*), fuzz-pipeline (seeds:
# pipelines/*.yaml, fuzz/regressions/pipeline/*). The committed regressions are replayed
# first. A crash, sanitizer report, hang (-timeout) or memory blow-up (-rss_limit_mb)
# fails the run; its input lands in fuzz/.build/findings/. The corpus grows in
# fuzz/.build/corpus/HARNESS and is reused by the next run. One summary line per harness
# (executions, exec/s, corpus size, seconds) is printed and appended to
# fuzz/.build/fuzz-summary.txt. FUZZ_JOBS=N runs N harnesses at once (default 1);
# FUZZ_RUNS=N stops each harness after N executions (or SECONDS, whichever comes first);
# FUZZ_NICE sets the harnesses' niceness (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(fuzz-fits-header fuzz-fits-image fuzz-fits-table fuzz-fits-compressed fuzz-pipeline)

scripts/setup.sh
start=$(date +%s)
# -O instead of the debug build's -Onone: 1.6x the executions per second, checks kept
# (only -Ounchecked drops them).
build=(swift build --scratch-path .build-opt -Xswiftc -O -Xswiftc -sanitize=fuzzer,address)
(cd fuzz && "${build[@]}" 2>&1 | grep -v "Cannot export local symbol" >&2)
echo "fuzz: build took $(( $(date +%s) - start )) s" >&2
bin=$(cd fuzz && "${build[@]}" --show-bin-path)

mkdir -p fuzz/.build/findings
failed=0
run_one() {
    local harness=$1 seeds=() regressions
    local corpus=fuzz/.build/corpus/$harness
    mkdir -p "$corpus"
    if [ "$harness" = fuzz-pipeline ]; then
        regressions=fuzz/regressions/pipeline
        seeds=(pipelines)
    else
        regressions=fuzz/regressions/fits
        local seed=fuzz/.build/seeds/fits
        mkdir -p "$seed"
        cp -f Tests/*/Fixtures/*.fits Tests/*/Fixtures/*.fits.gz "$seed"/ 2>/dev/null || true
        seeds=("$seed")
    fi
    # detect_leaks=0: cfitsio 4.2 leaks a tile buffer when a damaged tile fails to
    # decode (imcomp_decompress_tile); a leak per failed read is not what this hunts.
    # malloc_context_size=0 while fuzzing: ASan records no stack per allocation (a third of
    # the time went there); a finding is replayed with full stacks (the regression step
    # above, or the harness run on the input by hand).
    export ASAN_OPTIONS=detect_leaks=0
    # -malloc_limit_mb above 4 GiB: cfitsio reserves ISIZE + 4 GiB to inflate a .gz file
    # larger than 10 kB that compresses less than 3:1 (it assumes a > 4 GiB original);
    # that memory is never touched, and -rss_limit_mb still catches real blow-ups.
    local options=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=8192 -max_len=65536 -print_final_stats=1
                   "-artifact_prefix=fuzz/.build/findings/$harness-")
    local log=fuzz/.build/$harness.log
    if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
        if ! nice -n "${FUZZ_NICE:-10}" "$bin/$harness" "${options[@]}" "$regressions"/* > "$log.regressions" 2>&1; then
            echo "fuzz: $harness fails on a committed regression input; see $log.regressions" >&2
            tail -30 "$log.regressions" >&2
            return 1
        fi
    fi
    local status=0
    local limits=(-max_total_time="$seconds") began=$(date +%s)
    [ -z "${FUZZ_RUNS:-}" ] || limits+=(-runs="$FUZZ_RUNS")
    ASAN_OPTIONS=$ASAN_OPTIONS:malloc_context_size=0 nice -n "${FUZZ_NICE:-10}" \
        "$bin/$harness" "${options[@]}" "${limits[@]}" "$corpus" "${seeds[@]}" > "$log" 2>&1 || status=$?
    local execs rate
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    local line
    line="$(date -u +%FT%TZ) $harness status=$status execs=$execs exec_per_s=$rate corpus=$(ls "$corpus" | wc -l) seconds=$(( $(date +%s) - began ))/$seconds${FUZZ_RUNS:+ runs=$FUZZ_RUNS}"
    echo "$line" | tee -a fuzz/.build/fuzz-summary.txt
    if [ $status -ne 0 ]; then
        echo "fuzz: $harness found a problem (exit $status); input in fuzz/.build/findings/" >&2
        grep -E "ERROR|SUMMARY|Fatal error|timeout|out-of-memory|==[0-9]+==" "$log" | head -20 >&2 || true
        return 1
    fi
}

jobs=${FUZZ_JOBS:-1}
pids=()
for harness in "${harnesses[@]}"; do
    if [ "$jobs" -gt 1 ]; then
        run_one "$harness" & pids+=($!)
        if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
    else
        run_one "$harness" || failed=1
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
