#!/bin/sh
# Runs the fuzz targets built by fuzz/build.sh, one after another, each
# for the given number of seconds (default 600) in one process, on its
# corpus in fuzz/corpus/<target>/.  What a run finds new is then merged
# (-merge=1) back into that corpus, keeping only inputs that add coverage;
# crashes go to build/fuzz/artifacts/.  A summary of each run is printed
# at the end and kept in build/fuzz/summary.txt.
#
#   sh fuzz/run.sh [SECONDS] [TARGET...]
#
# FUZZ_BIN names another folder of built targets (default build/fuzz).

set -e

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/fuzz

SECONDS_EACH=${1:-600}
[ $# -gt 0 ] && shift
TARGETS=${*:-fuzz_retry_after fuzz_json_var fuzz_key fuzz_directives
             fuzz_callback_url}

BIN=${FUZZ_BIN:-$OUT}

UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/fuzz/ubsan.supp"
export UBSAN_OPTIONS

mkdir -p "$OUT/artifacts"
: > "$OUT/summary.txt"

for t in $TARGETS; do
    case $t in
    fuzz_retry_after)  opts="-max_len=512 -dict=fuzz/dict/retry_after.dict" ;;
    fuzz_json_var)     opts="-max_len=65536 -dict=fuzz/dict/json_var.dict" ;;
    fuzz_key)          opts="-max_len=65536" ;;
    fuzz_directives)   opts="-max_len=4096 -dict=fuzz/dict/directives.dict" ;;
    fuzz_callback_url) opts="-max_len=4096 -dict=fuzz/dict/callback_url.dict" ;;
    *)                 echo "unknown target $t" >&2; exit 1 ;;
    esac

    [ -x "$BIN/$t" ] || { echo "$BIN/$t: run fuzz/build.sh first" >&2; exit 1; }

    work=$OUT/work/$t
    rm -rf "$work" "$OUT/merged/$t"
    mkdir -p "$work" "$OUT/merged/$t"

    echo "== $t: $SECONDS_EACH s" | tee -a "$OUT/summary.txt"
    start=$(date +%s)

    # the exit status is that of the fuzzer: a crash stops the whole run
    "$BIN/$t" $opts -max_total_time="$SECONDS_EACH" -timeout=25 \
        -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t-" \
        "$work" "fuzz/corpus/$t" > "$OUT/$t.log" 2>&1 \
        || { tail -40 "$OUT/$t.log"; exit 1; }

    end=$(date +%s)

    # the corpus kept in the repository: the seeds, and what adds to them;
    # when that is more than 500 files, only what adds edges (hit counts
    # of an edge are features too, and make many more files)
    "$BIN/$t" $opts -merge=1 "$OUT/merged/$t" "fuzz/corpus/$t" "$work" \
        > "$OUT/$t.merge.log" 2>&1
    if [ "$(ls "$OUT/merged/$t" | wc -l)" -gt 500 ]; then
        rm -rf "$OUT/merged/$t.all"
        mv "$OUT/merged/$t" "$OUT/merged/$t.all"
        mkdir "$OUT/merged/$t"
        "$BIN/$t" $opts -merge=1 -use_counters=0 "$OUT/merged/$t" \
            "$OUT/merged/$t.all" >> "$OUT/$t.merge.log" 2>&1
    fi
    find "fuzz/corpus/$t" -type f ! -name 'seed-*' -delete
    for f in "$OUT/merged/$t"/*; do
        [ -f "$f" ] || continue
        sum=$(basename "$f")
        dup=0
        for s in "fuzz/corpus/$t"/seed-*; do
            [ "$(sha1sum < "$s" | cut -d' ' -f1)" = "$sum" ] && dup=1 && break
        done
        [ $dup = 1 ] || cp "$f" "fuzz/corpus/$t/$sum"
    done

    {
        echo "seconds: $((end - start))"
        grep -E '^#[0-9]+[[:space:]].*cov: ' "$OUT/$t.log" | tail -1
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$OUT/$t.log"
        echo "corpus kept: $(ls "fuzz/corpus/$t" | wc -l) files," \
             "$(cat "fuzz/corpus/$t"/* | wc -c) bytes"
        grep -E 'MERGE-OUTER: [0-9]+ new files' "$OUT/$t.merge.log" | tail -1
        echo "crashes: $(ls "$OUT/artifacts" | grep -c "^$t-" || true)"
    } | tee -a "$OUT/summary.txt"
done
