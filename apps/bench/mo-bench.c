/*
 * mo-bench: where the time goes, operation by operation (issue 11).
 *
 * Usage: mo-bench --model BACKBONE [--cls] [--det HEAD] [--seg HEAD] [--os 8|16|32]
 *                 [--size HxW] [--image FILE] [--threads N] [--runs N] [--warmup N] [--json]
 *                 [--no-peak]
 *
 * Runs the backbone and the chosen heads on one input (a fixed pseudo-random one, or
 * --image resized to the input size and normalized with the ImageNet statistics) --runs
 * times after --warmup, with the session's profile on (mo_session_set_profile()), and
 * prints one row per operation: name, output shape, MFLOP (2 x multiply-adds), median ms
 * over the runs, share of the summed medians, GFLOP/s; then per model the totals, and the
 * median wall time of a whole run (the part no operation covers: the calls between them).
 *
 * Peak: unless --no-peak, a tiny loop of independent fused multiply-adds (x86-64 only), 16
 * wide where the kernels in use are AVX-512 (mo_get_cpu_flags(), mask included), else 8
 * wide (AVX2 + FMA), measures what one core reaches here, in ~30 ms, best of 5: a CPU whose
 * FMA units are 512 bits wide doubles its peak with AVX-512 (one whose units are 256 bits
 * wide splits a 16-wide FMA in two and measures the same either way); the table
 * then shows each model's GFLOP/s as a share of that peak times the threads used. It is a
 * measurement, not the datasheet number: on a loaded machine it is lower.
 *
 * --os: the segmentation head's output stride (default: the one its file names).
 * --json prints one JSON object instead of the table (for scripts).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mo/mo.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_FMA_PROBE 1
#endif

#define MAX_OPS 1024

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#ifdef HAVE_FMA_PROBE
/* 12 independent chains of 8-wide FMAs (enough in flight for two FMA units of latency
 * 4-5); returns GFLOP/s of one thread, best of 5 repetitions. */
__attribute__((target("avx2,fma"))) static double fma_peak_avx2(void)
{
    enum { ITERS = 200000, CHAINS = 12 };
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    double best = 0.0;
    float sink = 0.0f;
    for (int rep = 0; rep < 5; rep++) {
        for (int j = 0; j < CHAINS; j++)
            acc[j] = _mm256_set1_ps((float)j);
        const double t0 = now_ms();
        for (int i = 0; i < ITERS; i++)
            for (int j = 0; j < CHAINS; j++)
                acc[j] = _mm256_fmadd_ps(acc[j], a, b);
        const double ms = now_ms() - t0;
        for (int j = 0; j < CHAINS; j++)
            sink += _mm256_cvtss_f32(acc[j]); /* keeps the loop */
        const double gf = 2.0 * 8 * CHAINS * (double)ITERS / (ms * 1e6);
        best = gf > best ? gf : best;
    }
    return sink == -1.0f ? 0.0 : best;
}

/* The same with 16-wide AVX-512 FMAs. */
__attribute__((target("avx512f"))) static double fma_peak_avx512(void)
{
    enum { ITERS = 200000, CHAINS = 12 };
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    double best = 0.0;
    float sink = 0.0f;
    for (int rep = 0; rep < 5; rep++) {
        for (int j = 0; j < CHAINS; j++)
            acc[j] = _mm512_set1_ps((float)j);
        const double t0 = now_ms();
        for (int i = 0; i < ITERS; i++)
            for (int j = 0; j < CHAINS; j++)
                acc[j] = _mm512_fmadd_ps(acc[j], a, b);
        const double ms = now_ms() - t0;
        for (int j = 0; j < CHAINS; j++)
            sink += _mm512_cvtss_f32(acc[j]);
        const double gf = 2.0 * 16 * CHAINS * (double)ITERS / (ms * 1e6);
        best = gf > best ? gf : best;
    }
    return sink == -1.0f ? 0.0 : best;
}
#endif

typedef struct op_acc {
    mo_op_profile last; /* name, kind, shape, FLOPs of the latest run */
    double *ms;         /* one time per run */
} op_acc;

typedef struct model_sum {
    char model[12];
    double ms, flops;
} model_sum;

/* Exit codes: 2 for a model that cannot be opened (or a usage error), 1 for a failed run
 * or input image. */
static int die(const char *what, int ret, int code)
{
    fprintf(stderr, "mo-bench: %s: %s (%s)\n", what, mo_strerror(ret), mo_last_error());
    return code;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s --model BACKBONE [--cls] [--det HEAD] [--seg HEAD] [--os 8|16|32] "
                    "[--size HxW] "
                    "[--image FILE] [--threads N] [--runs N] [--warmup N] [--json] "
                    "[--no-peak]\n", argv0);
}

/* JSON string: the names here are ASCII identifiers, quotes and backslashes escaped anyway */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    const char *model = NULL, *det_path = NULL, *seg_path = NULL, *image = NULL;
    int h = 0, w = 0, threads = 1, runs = 20, warmup = 3, use_cls = 0, json = 0, peak = 1;
    int os_arg = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--det") && i + 1 < argc)
            det_path = argv[++i];
        else if (!strcmp(argv[i], "--seg") && i + 1 < argc)
            seg_path = argv[++i];
        else if (!strcmp(argv[i], "--os") && i + 1 < argc)
            os_arg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--image") && i + 1 < argc)
            image = argv[++i];
        else if (!strcmp(argv[i], "--cls"))
            use_cls = 1;
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (sscanf(argv[++i], "%dx%d", &h, &w) != 2) {
                usage(argv[0]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--no-peak"))
            peak = 0;
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!model || runs < 1 || runs > 100000 || warmup < 0 || threads < 0 ||
        threads > MO_MAX_THREADS || (os_arg && os_arg != 8 && os_arg != 16 && os_arg != 32)) {
        usage(argv[0]);
        return 2;
    }

    /* every resource, freed at `done` on every path */
    int ret, code = 0;
    mo_file *f = NULL, *fd = NULL, *fs = NULL;
    mo_backbone *bb = NULL;
    mo_cls *cls = NULL;
    mo_det *det = NULL;
    mo_seg *seg = NULL;
    mo_session *s = NULL;
    float *x = NULL, *logits = NULL;
    uint8_t *labels = NULL;
    double *wall = NULL, *opsum = NULL, *med = NULL, *gap = NULL;
    op_acc *ops = NULL;
    if ((ret = mo_file_open(&f, model)) != MO_OK) {
        code = die(model, ret, 2);
        goto done;
    }
    if ((ret = mo_backbone_open(&bb, f, NULL)) != MO_OK) {
        code = die("backbone", ret, 2);
        goto done;
    }
    if (use_cls && (ret = mo_cls_open(&cls, f, bb, NULL)) != MO_OK) {
        code = die("classifier (--cls)", ret, 2);
        goto done;
    }
    if (det_path && ((ret = mo_file_open(&fd, det_path)) != MO_OK ||
                     (ret = mo_det_open(&det, fd, bb, NULL)) != MO_OK)) {
        code = die(det_path, ret, 2);
        goto done;
    }
    if (seg_path && ((ret = mo_file_open(&fs, seg_path)) != MO_OK ||
                     (ret = mo_seg_open(&seg, fs, bb, NULL)) != MO_OK)) {
        code = die(seg_path, ret, 2);
        goto done;
    }
    if (det) {
        int dw, dh;
        mo_det_input_size(det, &dw, &dh);
        if (!h)
            h = dh, w = dw;
        else if (h != dh || w != dw) {
            fprintf(stderr, "mo-bench: the detection head runs on %dx%d inputs, not %dx%d "
                            "(leave --size out)\n", dh, dw, h, w);
            code = 2;
            goto done;
        }
    }
    if (!h)
        h = w = 224;
    if (h < 1 || w < 1 || h > MO_MAX_INPUT_SIDE || w > MO_MAX_INPUT_SIDE) {
        fprintf(stderr, "mo-bench: --size %dx%d outside 1..%d\n", h, w, MO_MAX_INPUT_SIDE);
        code = 2;
        goto done;
    }
    mo_seg_info si = {0};
    if (seg)
        mo_seg_get_info(seg, &si);
    const int seg_os = !seg ? 32 : os_arg ? os_arg : si.output_stride;
    /* the classifier and detection want stride 32; segmentation alone runs at its stride,
     * with them it recomputes the dilated stages (mo_backbone_run_from), as the pipeline */
    const int bb_os = cls || det ? 32 : seg_os;

    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = h;
    ss.max_width = w;
    ss.threads = threads;
    ss.min_output_stride = seg_os;
    size_t seg_ws = 0;
    if (seg && (ret = mo_seg_workspace_size(seg, h, w, seg_os, &seg_ws)) != MO_OK) {
        code = die("segmentation workspace", ret, 2);
        goto done;
    }
    const size_t det_ws = det ? mo_det_workspace_size(det) : 0;
    ss.workspace_bytes = det_ws > seg_ws ? det_ws : seg_ws;
    if ((ret = mo_session_open(&s, bb, &ss)) != MO_OK) {
        code = die("session", ret, 2);
        goto done;
    }
    if ((ret = mo_session_set_profile(s, 1)) != MO_OK) {
        code = die("profile", ret, 2);
        goto done;
    }

    /* the input: --image, or a fixed pseudo-random one in about [-2, 2] */
    x = malloc((size_t)h * w * 3 * sizeof(float));
    logits = cls ? malloc((size_t)mo_cls_num_classes(cls) * sizeof(float)) : NULL;
    labels = seg ? malloc((size_t)h * w) : NULL;
    mo_detection dets[100];
    wall = malloc((size_t)runs * sizeof(double));
    opsum = malloc((size_t)runs * sizeof(double)); /* recorded ms of each run */
    ops = calloc(MAX_OPS, sizeof(*ops));
    if (!x || (cls && !logits) || (seg && !labels) || !wall || !opsum || !ops) {
        fprintf(stderr, "mo-bench: out of memory\n");
        code = 1;
        goto done;
    }
    mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    if (image) {
        mo_image img;
        const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        if ((ret = mo_image_load(&img, image)) != MO_OK) {
            code = die(image, ret, 1);
            goto done;
        }
        ret = mo_preprocess_resize(&img, mean, std, &in);
        mo_image_free(&img);
        if (ret != MO_OK) {
            code = die(image, ret, 1);
            goto done;
        }
    } else {
        unsigned st = 12345u;
        for (size_t i = 0; i < (size_t)h * w * 3; i++) {
            st = st * 1103515245u + 12345u;
            x[i] = (float)((st >> 8) & 0xffff) / 16384.0f - 2.0f;
        }
    }

    int nops = -1;
    for (int r = -warmup; r < runs; r++) {
        mo_features feats;
        int nd = 0;
        const double t0 = now_ms();
        if ((ret = mo_backbone_run(s, &in, bb_os, &feats)) != MO_OK) {
            code = die("backbone run", ret, 1);
            goto done;
        }
        if (cls && (ret = mo_cls_run(cls, s, &feats, logits)) != MO_OK) {
            code = die("classifier run", ret, 1);
            goto done;
        }
        if (det && (ret = mo_det_run(det, s, &feats, NULL, w, h, dets, 100, &nd)) != MO_OK) {
            code = die("detection run", ret, 1);
            goto done;
        }
        if (seg) {
            if (seg_os != bb_os &&
                (ret = mo_backbone_run_from(s, &feats, seg_os == 16 ? 2 : 1, seg_os, &feats))) {
                code = die("backbone run at the segmentation stride", ret,
                          1);
                goto done;
            }
            if ((ret = mo_seg_run(seg, s, &feats, h, w, labels, w, NULL)) != MO_OK) {
                code = die("segmentation run", ret, 1);
                goto done;
            }
        }
        const double t1 = now_ms();
        const mo_op_profile *p;
        int n, dropped;
        mo_session_profile(s, &p, &n, &dropped);
        if (dropped || n > MAX_OPS) {
            fprintf(stderr, "mo-bench: %d operations not recorded\n", dropped + n - MAX_OPS);
            code = 1;
            goto done;
        }
        if (r < 0)
            continue;
        if (nops < 0) {
            nops = n;
            for (int i = 0; i < n; i++)
                if (!(ops[i].ms = malloc((size_t)runs * sizeof(double)))) {
                    fprintf(stderr, "mo-bench: out of memory\n");
                    code = 1;
                    goto done;
                }
        }
        if (n != nops) {
            fprintf(stderr, "mo-bench: run %d recorded %d operations, run 0 %d\n", r, n, nops);
            code = 1;
            goto done;
        }
        opsum[r] = 0.0;
        for (int i = 0; i < n; i++) {
            opsum[r] += p[i].ms;
            if (r && strcmp(ops[i].last.name, p[i].name)) {
                fprintf(stderr, "mo-bench: operation %d is %s, was %s\n", i, p[i].name,
                        ops[i].last.name);
                code = 1;
                goto done;
            }
            ops[i].last = p[i];
            ops[i].ms[r] = p[i].ms;
        }
        wall[r] = t1 - t0;
    }

    /* medians, totals per model */
    model_sum sums[8];
    int nsum = 0;
    double total_ms = 0.0, total_flops = 0.0;
    med = malloc((size_t)(nops > 0 ? nops : 1) * sizeof(double));
    if (!med) {
        code = 1;
        goto done;
    }
    for (int i = 0; i < nops; i++) {
        med[i] = median(ops[i].ms, runs);
        total_ms += med[i];
        total_flops += ops[i].last.flops;
        int k = 0;
        while (k < nsum && strcmp(sums[k].model, ops[i].last.model))
            k++;
        if (k == nsum && nsum < 8) {
            memset(&sums[k], 0, sizeof(sums[k]));
            snprintf(sums[k].model, sizeof(sums[k].model), "%s", ops[i].last.model);
            nsum++;
        }
        if (k < nsum) {
            sums[k].ms += med[i];
            sums[k].flops += ops[i].last.flops;
        }
    }
    /* the wall time against the recorded time of the same runs (medians of per-run sums:
     * the sum of per-op medians drops the runs the OS interrupted) */
    gap = malloc((size_t)runs * sizeof(double));
    if (!gap) {
        code = 1;
        goto done;
    }
    for (int r = 0; r < runs; r++)
        gap[r] = wall[r] - opsum[r];
    const double gap_ms = median(gap, runs), run_ops_ms = median(opsum, runs);
    const double wall_ms = median(wall, runs), wall_min = wall[0];

    const int used = mo_session_threads(s);
    double peak1 = 0.0;
#ifdef HAVE_FMA_PROBE
    if (peak && (mo_get_cpu_flags() & MO_CPU_FLAG_AVX512))
        peak1 = fma_peak_avx512();
    else if (peak && (mo_get_cpu_flags() & MO_CPU_FLAG_AVX2))
        peak1 = fma_peak_avx2();
#endif
    const double peak_all = peak1 * used;

    if (json) {
        printf("{\"size\":[%d,%d],\"threads\":%d,\"cpu_flags\":%u,\"runs\":%d,\"warmup\":%d,"
               "\"wall_median_ms\":%.4f,\"wall_min_ms\":%.4f,\"ops_median_sum_ms\":%.4f,"
               "\"run_ops_median_ms\":%.4f,\"outside_ops_median_ms\":%.4f,\"mflop\":%.3f,"
               "\"fma_peak_gflops_per_thread\":%.2f,\"models\":[", h, w, used,
               mo_get_cpu_flags(), runs, warmup, wall_ms, wall_min, total_ms, run_ops_ms, gap_ms,
               total_flops * 1e-6, peak1);
        for (int k = 0; k < nsum; k++) {
            printf("%s{\"model\":", k ? "," : "");
            json_str(sums[k].model);
            printf(",\"ms\":%.4f,\"mflop\":%.3f,\"gflops\":%.3f}", sums[k].ms,
                   sums[k].flops * 1e-6, sums[k].ms > 0 ? sums[k].flops / (sums[k].ms * 1e6) : 0);
        }
        printf("],\"ops\":[");
        for (int i = 0; i < nops; i++) {
            const mo_op_profile *o = &ops[i].last;
            printf("%s{\"model\":", i ? "," : "");
            json_str(o->model);
            printf(",\"name\":");
            json_str(o->name);
            printf(",\"kind\":");
            json_str(o->kind);
            printf(",\"shape\":[%d,%d,%d],\"mflop\":%.4f,\"median_ms\":%.4f,\"pct\":%.2f,"
                   "\"gflops\":%.3f}", o->h, o->w, o->c, o->flops * 1e-6, med[i],
                   total_ms > 0 ? 100.0 * med[i] / total_ms : 0.0,
                   med[i] > 0 ? o->flops / (med[i] * 1e6) : 0.0);
        }
        printf("]}\n");
    } else {
        printf("mo-bench: %s, input %dx%d, %d thread%s, median of %d runs (%d warm-up)\n",
               mo_backbone_variant(bb), h, w, used, used > 1 ? "s" : "", runs, warmup);
        printf("%-12s %-24s %-15s %-15s %9s %9s %6s %8s\n", "model", "op", "kind", "out HxWxC",
               "MFLOP", "ms", "%", "GFLOP/s");
        for (int i = 0; i < nops; i++) {
            const mo_op_profile *o = &ops[i].last;
            char shape[32];
            snprintf(shape, sizeof(shape), "%dx%dx%d", o->h, o->w, o->c);
            printf("%-12s %-24s %-15s %-15s %9.3f %9.4f %6.2f %8.2f\n", o->model, o->name,
                   o->kind, shape, o->flops * 1e-6, med[i],
                   total_ms > 0 ? 100.0 * med[i] / total_ms : 0.0,
                   med[i] > 0 ? o->flops / (med[i] * 1e6) : 0.0);
        }
        printf("\n%-12s %6s %9s %9s %6s %8s %s\n", "model", "ops", "MFLOP", "ms", "%", "GFLOP/s",
               peak_all > 0 ? "of peak" : "");
        for (int k = 0; k < nsum; k++) {
            int cnt = 0;
            for (int i = 0; i < nops; i++)
                cnt += !strcmp(ops[i].last.model, sums[k].model);
            const double gf = sums[k].ms > 0 ? sums[k].flops / (sums[k].ms * 1e6) : 0.0;
            printf("%-12s %6d %9.2f %9.3f %6.2f %8.2f", sums[k].model, cnt, sums[k].flops * 1e-6,
                   sums[k].ms, total_ms > 0 ? 100.0 * sums[k].ms / total_ms : 0.0, gf);
            if (peak_all > 0)
                printf(" %6.1f%%", 100.0 * gf / peak_all);
            printf("\n");
        }
        printf("%-12s %6d %9.2f %9.3f %6.2f %8.2f\n", "sum of ops", nops, total_flops * 1e-6,
               total_ms, 100.0, total_ms > 0 ? total_flops / (total_ms * 1e6) : 0.0);
        printf("whole run: median %.3f ms, min %.3f ms; per run, the recorded operations take "
               "%.3f ms (median) and the rest %.3f ms\n", wall_ms, wall_min, run_ops_ms, gap_ms);
        if (peak1 > 0)
            printf("fp32 FMA peak measured here: %.1f GFLOP/s per thread (%d-wide FMA loop, best "
                   "of 5), x %d thread%s = %.1f\n", peak1,
                   mo_get_cpu_flags() & MO_CPU_FLAG_AVX512 ? 16 : 8, used, used > 1 ? "s" : "",
                   peak_all);
        else
            printf("fp32 FMA peak: not measured (%s)\n",
                   peak ? "no AVX2+FMA on this CPU/build" : "--no-peak");
    }

done:
    for (int i = 0; ops && i < MAX_OPS; i++)
        free(ops[i].ms);
    free(gap);
    free(ops);
    free(med);
    free(wall);
    free(opsum);
    free(labels);
    free(logits);
    free(x);
    mo_session_close(&s);
    mo_seg_close(&seg);
    mo_det_close(&det);
    mo_cls_close(&cls);
    mo_backbone_close(&bb);
    mo_file_close(&fs);
    mo_file_close(&fd);
    mo_file_close(&f);
    return code;
}
