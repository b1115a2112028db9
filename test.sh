#!/bin/sh
# The whole test suite on a fresh Debian 12 machine: installs the packages, builds, regenerates
# the PyTorch golden vectors, runs every suite (unit, headers, golden), then the unit and golden
# suites again under AddressSanitizer + UndefinedBehaviorSanitizer; a clang build (unit, dsp,
# headers), a build with the C kernels only (-Dsimd=disabled: unit, dsp, and the kernels
# against PyTorch), an AArch64 cross-build tested under qemu-aarch64 (unit, dsp, golden
# vectors, ImageNet parity on 10 images; MO_TEST_QUICK=1), the threads suite under
# ThreadSanitizer (MO_TEST_QUICK=1); fuzzing; then installs the SDK
# to a temporary prefix and builds and runs programs against it with pkg-config alone.
# Each extra build runs only what it adds (see the comments); the whole run stays well
# under 25 minutes on 2 cores.
set -eu
cd "$(dirname "$0")"
SHARED=${MO_SHARED:-$(cd .. && pwd)/shared}
t0=$(date +%s)
log() { printf '\n=== [%d s] %s\n' $(( $(date +%s) - t0 )) "$*"; }

# A skipped test must have said why; with ../shared present nothing may be skipped.
no_skips() {
    skipped=$(grep -c '"result": "SKIP"' "$1/meson-logs/testlog.json" || true)
    if [ "$skipped" -gt 0 ]; then
        if [ -d "$SHARED" ]; then
            echo "FAIL: $skipped test(s) skipped although $SHARED exists" >&2
            exit 1
        fi
        echo "NOTE: $skipped test(s) skipped: $SHARED is absent (see README)"
    fi
}

log "dependencies"
tools/install-deps.sh

log "release build"
[ -d build ] || meson setup build --buildtype=release -Dshared_dir="$SHARED"
ninja -C build

log "API reference: doxygen docs/Doxyfile (fails on any warning, e.g. an undocumented parameter)"
mkdir -p build/docs
doxygen docs/Doxyfile

log "golden vectors from the PyTorch reference (tools/make_golden.py)"
/usr/bin/python3 tools/make_golden.py --out build/golden \
    --checkpoint "$SHARED/models/mobileone_s0.pth.tar" --image "$SHARED/data/images/tabby_cat.jpg"

log "tests (release; suite valgrind: every app under memcheck, tests/valgrind)"
meson test -C build --print-errorlogs --num-processes 2
no_skips build

log "tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
[ -d build-san ] || meson setup build-san --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=all \
    -Dshared_dir="$SHARED" -Dgolden_dir="$(pwd)/build/golden"
ninja -C build-san
# The ImageNet parity run is the same code on 1500 images, the video test FFmpeg's decode and
# encode loop around the pipeline, train-head torch training around the apps: the release
# run covers them (the pipeline, mo-demo's image path and the head metadata run here; the
# det.category_ids reader is also fuzzed).
meson test -C build-san --print-errorlogs --num-processes 2 --no-suite imagenet --no-suite video \
    --no-suite train
no_skips build-san

log "clang build: unit, dsp and header suites"
# What another compiler can break: warnings, GNU extensions, its intrinsics code generation
# (checkdsp). The golden suites are the same C code on more data: the GCC runs cover them.
[ -d build-clang ] || CC=clang meson setup build-clang --buildtype=release \
    -Dgolden_tests=false -Dshared_dir="$SHARED"
ninja -C build-clang
meson test -C build-clang --print-errorlogs --num-processes 2 --suite unit --suite dsp --suite headers
no_skips build-clang

log "C kernels only (-Dsimd=disabled): unit and dsp suites, then the kernels against PyTorch"
# Every kernel here is the C reference (the release build runs the SIMD ones). Against the
# PyTorch vectors: the backbone (golden), the shipped segmentation and detection heads;
# the larger parity sets with random heads, the apps and the evaluators do not depend on
# the kernels' ISA and run in the release build only.
[ -d build-c ] || meson setup build-c --buildtype=release -Dsimd=disabled \
    -Dshared_dir="$SHARED" -Dgolden_dir="$(pwd)/build/golden"
ninja -C build-c
meson test -C build-c --print-errorlogs --num-processes 2 --suite unit --suite dsp
no_skips build-c
meson test -C build-c --print-errorlogs --num-processes 2 golden seg-parity-shipped coco-parity-shipped
no_skips build-c

log "AArch64: cross-build (cross/aarch64-linux-gnu.ini), tests under qemu-aarch64"
# Debian's cross GCC and arm64 multiarch packages (tools/install-cross-deps.sh); meson runs
# each test binary through the cross file's exe_wrapper, the Python tests take it from
# MESON_EXE_WRAPPER. The NEON kernels where built, else the C ones (checkdsp says which).
# Under emulation every FP operation is a helper call (tens of times slower), so this runs
# what ARM can change: the unit and dsp suites except the threads suite (s0..s4 at 224x224
# for 4 thread counts: over 5 minutes emulated; and qemu on x86 gives the guest x86's
# stronger memory order, so it adds nothing to x86 + ThreadSanitizer), the backbone
# against the PyTorch vectors (build/golden), the shipped heads on a few images, and the
# real S0 on 10 images of imagenet-samples with a top-1 agreement of 100%.
# All in one `meson test` call (2 processes overlap) with MO_TEST_QUICK=1 (tests/quick.h,
# tests/quick.py): each test that reduces itself prints one "MO_TEST_QUICK:" line naming
# what it skipped. Here: golden runs 5 of the 13 cases (train-time loading s0_unfused, a
# 224 input, the widest variant with SE blocks s4_fused, an F16 file, the real S0; x86 runs
# all 13), seg-parity-shipped the 3 VOC samples resized to 256, coco-parity-shipped 2 COCO
# images (the same tolerances), imagenet-parity 10 images (all 200 by hand: README,
# "Building for ARM"; CI time is the bound), and the unit tests their quick sets.
tools/install-cross-deps.sh
arm_t0=$(date +%s)
[ -d build-arm ] || meson setup build-arm --cross-file cross/aarch64-linux-gnu.ini \
    --buildtype=release -Dvideo=disabled -Dshared_dir="$SHARED" -Dgolden_dir="$(pwd)/build/golden"
ninja -C build-arm
# Not the `backbone` unit test either: naive vs dispatched network on s0..s4 shapes (2.5 min
# emulated); checkdsp compares every NEON kernel with C on the edge-case shapes, and the
# golden vectors check the whole network against PyTorch. Timeouts x3: emulated.
arm_unit=$(meson test -C build-arm --list --suite unit --suite dsp --no-suite threads 2>/dev/null |
    grep ' / ' | sed 's|.* / ||' | grep -vx backbone)
MO_TEST_QUICK=1 meson test -C build-arm --print-errorlogs --timeout-multiplier 3 --num-processes 2 \
    $arm_unit golden seg-parity-shipped coco-parity-shipped imagenet-parity
no_skips build-arm
grep -h '^MO_TEST_QUICK:' build-arm/meson-logs/testlog.txt | sort -u || true
cat build-arm/tests/classify/parity/report.json
echo "AArch64 step: $(( $(date +%s) - arm_t0 )) s after the packages"

log "ThreadSanitizer: one model and one pipeline shared by 8 threads (suite threads)"
# GCC's TSan, only the thread tests: backbone sessions with worker threads (threads) and
# the backbone, every head and the pipeline shared by 8 threads (threads-shared), the op
# executor's ops on 2 and 3 threads (exec-threads).
# MO_TEST_QUICK=1 (tests/quick.h): `threads` checks s0 and s4 (not s1..s3) with 3 and 0
# threads (not 2) and 224x224 on s0 only, and says so in its output; the release run above
# and `meson test -C build-tsan --suite threads` by hand run the full set.
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
[ -d build-tsan ] || meson setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread \
    -Dapps=false -Dgolden_tests=false
ninja -C build-tsan tests/backbone/test_threads tests/pipeline/test_shared_threads tests/exec/test_exec
MO_TEST_QUICK=1 meson test -C build-tsan --no-rebuild --print-errorlogs --num-processes 2 --suite threads
no_skips build-tsan
grep -h '^MO_TEST_QUICK:' build-tsan/meson-logs/testlog.txt | sort -u || true

log "fuzzing: libFuzzer + ASan/UBSan, 6 s per target (fuzz/run_long.sh: longer runs)"
[ -d build-fuzz ] || CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dtests=disabled \
    -Dapps=false -Dfuzzing_engine=libfuzzer -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all
ninja -C build-fuzz
for t in model_file image eval_json head_meta voc_xml voc_det eval_state top1 labels; do
    mkdir -p build-fuzz/corpus/$t
    seeds=build-fuzz/fuzz/seeds/$t  # generated; committed seeds under fuzz/corpus/
    [ -d fuzz/corpus/$t ] && seeds=fuzz/corpus/$t
    build-fuzz/fuzz/fuzz_$t -max_total_time=6 -rss_limit_mb=2048 -artifact_prefix=build-fuzz/ -print_final_stats=1 \
        build-fuzz/corpus/$t $seeds 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY" || true
    [ -z "$(ls build-fuzz/crash-* build-fuzz/leak-* build-fuzz/oom-* build-fuzz/timeout-* 2>/dev/null)" ] || { echo "FAIL: fuzzer found a problem" >&2; exit 1; }
done

log "install to a temporary prefix and build against it with pkg-config"
prefix=$(mktemp -d)
meson install -C build --destdir "$prefix" --quiet
# Always run on a model: the one imagenet-parity converted, else converted here; the shipped
# heads were trained on that backbone. Without ../shared: a random backbone, no heads.
model=build/tests/classify/parity/mobileone_s0.mo.safetensors
heads="weights/ssdlite_s0.mo.safetensors weights/deeplab_s0.mo.safetensors"
if [ ! -f "$model" ]; then
    model=build/install-test/mobileone_s0.mo.safetensors
    mkdir -p build/install-test
    if [ -d "$SHARED" ]; then
        /usr/bin/python3 tools/convert_mobileone.py "$SHARED/models/mobileone_s0.pth.tar" "$model"
    else
        echo "NOTE: $SHARED is absent: the installed SDK runs a random backbone, without heads"
        /usr/bin/python3 tools/convert_mobileone.py --random s0 --fused "$model"
        heads=""
    fi
fi
tests/install/consumer.sh "$prefix" "$model"
tests/install/example.sh "$prefix" "$model" $heads    # examples/frame_demo.c, outside the tree
tests/install/python.sh "$prefix"             # the mo_eval Python package
rm -rf "$prefix"
log "all tests passed"
