/*
 * Timing of one backbone forward pass, random weights built in memory (or a model file
 * given with --model), per variant and output stride.
 *
 * Usage: bench_backbone [--variants s0,s1] [--size HxW] [--runs N] [--model FILE]
 *                       [--threads N] [--c]
 * Prints min and median wall time per forward in ms. --threads: session threads (default
 * 1); --c: the C reference kernels only (mo_set_cpu_flags_mask(0)).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mo/backbone.h"
#include "mo/cpu.h"
#include "modelgen.h"

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

static int threads = 1;

static int bench(mo_file *f, const char *label, int h, int w, int runs)
{
    mo_backbone *bb = NULL;
    int ret = mo_backbone_open(&bb, f, NULL);
    if (ret != MO_OK) {
        fprintf(stderr, "%s: %s (%s)\n", label, mo_strerror(ret), mo_last_error());
        return 1;
    }
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = h;
    ss.max_width = w;
    ss.min_output_stride = 8;
    ss.threads = threads;
    mo_session *s = NULL;
    if ((ret = mo_session_open(&s, bb, &ss)) != MO_OK) {
        fprintf(stderr, "%s: session: %s\n", label, mo_strerror(ret));
        mo_backbone_close(&bb);
        return 1;
    }
    float *x = malloc(sizeof(float) * (size_t)h * w * 3);
    double *t = malloc(sizeof(double) * (size_t)runs);
    if (!x || !t)
        return 1;
    for (size_t i = 0; i < (size_t)h * w * 3; i++)
        x[i] = frand() * 2.0f;
    mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    static const int strides[3] = {32, 16, 8};
    for (int si = 0; si < 3; si++) {
        mo_features out;
        mo_backbone_run(s, &in, strides[si], &out); /* warm up */
        for (int r = 0; r < runs; r++) {
            const double t0 = now_ms();
            mo_backbone_run(s, &in, strides[si], &out);
            t[r] = now_ms() - t0;
        }
        qsort(t, (size_t)runs, sizeof(double), cmp_double);
        printf("%-10s %dx%d os%-2d  min %8.2f ms  median %8.2f ms  (%d thread%s)\n", label, h,
               w, strides[si], t[0], t[runs / 2], mo_session_threads(s),
               mo_session_threads(s) > 1 ? "s" : "");
    }
    free(x);
    free(t);
    mo_session_close(&s);
    mo_backbone_close(&bb);
    return 0;
}

int main(int argc, char **argv)
{
    const char *variants = "s0", *model = NULL;
    int h = 224, w = 224, runs = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--variants") && i + 1 < argc)
            variants = argv[++i];
        else if (!strcmp(argv[i], "--size") && i + 1 < argc && sscanf(argv[++i], "%dx%d", &h, &w) == 2)
            ;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--c"))
            mo_set_cpu_flags_mask(0);
        else {
            fprintf(stderr, "usage: %s [--variants s0,s1] [--size HxW] [--runs N] "
                            "[--model FILE] [--threads N] [--c]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || h < 1 || w < 1 || h > MO_MAX_INPUT_SIDE || w > MO_MAX_INPUT_SIDE)
        return 2;
    if (model) {
        mo_file *f = NULL;
        int ret = mo_file_open(&f, model);
        if (ret != MO_OK) {
            fprintf(stderr, "%s: %s (%s)\n", model, mo_strerror(ret), mo_last_error());
            return 1;
        }
        ret = bench(f, mo_file_meta(f, "mo.variant") ? mo_file_meta(f, "mo.variant") : "?", h,
                    w, runs);
        mo_file_close(&f);
        return ret;
    }
    char list[64];
    snprintf(list, sizeof(list), "%s", variants);
    for (char *v = strtok(list, ","); v; v = strtok(NULL, ",")) {
        if (!mg_find_variant(v)) {
            fprintf(stderr, "unknown variant %s\n", v);
            return 2;
        }
        mg_model m;
        mg_build(&m, v, 1, "backbone.");
        uint8_t *buf;
        const size_t n = mg_serialize(&m, &buf);
        mg_free(&m);
        mo_file *f = NULL;
        if (mo_file_open_memory(&f, buf, n) != MO_OK)
            return 1;
        free(buf);
        char label[32];
        snprintf(label, sizeof(label), "%s fused", v);
        if (bench(f, label, h, w, runs))
            return 1;
        mo_file_close(&f);
    }
    return 0;
}
