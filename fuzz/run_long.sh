#!/bin/sh
# Long libFuzzer runs (not in CI, which gives each target 30 s): every target for SECONDS
# (default 300), one after the other, on a libFuzzer + ASan/UBSan build in build-fuzz/.
# Corpora grow in build-fuzz/corpus/<target>; a finding stops the script with its file.
#   fuzz/run_long.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-300}
[ $# -gt 0 ] && shift
targets=${*:-"model_file head_meta image labels eval_json voc_xml voc_det eval_state top1"}
[ -d build-fuzz ] || CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dtests=disabled \
    -Dapps=false -Dvideo=disabled -Dfuzzing_engine=libfuzzer -Db_sanitize=address,undefined \
    -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
ninja -C build-fuzz
for t in $targets; do
    mkdir -p build-fuzz/corpus/$t build-fuzz/findings/$t
    seeds=build-fuzz/fuzz/seeds/$t
    [ -d fuzz/corpus/$t ] && seeds=fuzz/corpus/$t  # a committed corpus
    build-fuzz/fuzz/fuzz_$t -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=build-fuzz/findings/$t/ build-fuzz/corpus/$t "$seeds" 2>&1 |
        grep -E "^stat::number_of_executed_units|ERROR|SUMMARY" | sed "s/^/$t: /" || true
    if [ -n "$(ls build-fuzz/findings/$t)" ]; then
        echo "FAIL: fuzz_$t found a problem: build-fuzz/findings/$t/" >&2
        exit 1
    fi
done
