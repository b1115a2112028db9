/*
 * The C side of bench/bench.py: time backbone + classifier on one input.
 *
 * Usage: mo_bench --model FILE --input FILE --size HxW [--threads N] [--runs N]
 *                 [--warmup N] [--logits FILE] [--c]
 * --input holds H x W x 3 float32 (NHWC, preprocessed); --logits receives the logits as
 * float32. Prints one JSON line: {"threads":..,"runs":..,"min_ms":..,"median_ms":..,
 * "times_ms":[..]}; each time covers mo_backbone_run + mo_cls_logits (wall clock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mo/mo.h"

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

static int die(const char *what, int ret)
{
    fprintf(stderr, "mo_bench: %s: %s (%s)\n", what, mo_strerror(ret), mo_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *logits_path = NULL;
    int h = 224, w = 224, threads = 1, runs = 20, warmup = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc)
            input = argv[++i];
        else if (!strcmp(argv[i], "--size") && i + 1 < argc &&
                 sscanf(argv[++i], "%dx%d", &h, &w) == 2)
            ;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--logits") && i + 1 < argc)
            logits_path = argv[++i];
        else if (!strcmp(argv[i], "--c"))
            mo_set_cpu_flags_mask(0);
        else {
            fprintf(stderr, "usage: %s --model FILE --input FILE [--size HxW] [--threads N] "
                            "[--runs N] [--warmup N] [--logits FILE] [--c]\n", argv[0]);
            return 2;
        }
    }
    if (!model || !input || runs < 1 || warmup < 0 || h < 1 || w < 1 ||
        h > MO_MAX_INPUT_SIDE || w > MO_MAX_INPUT_SIDE)
        return 2;

    const size_t n = (size_t)h * w * 3;
    float *x = malloc(n * sizeof(float));
    double *t = malloc((size_t)runs * sizeof(double));
    FILE *fi = fopen(input, "rb");
    if (!x || !t || !fi || fread(x, sizeof(float), n, fi) != n) {
        fprintf(stderr, "mo_bench: cannot read %zu floats from %s\n", n, input);
        return 1;
    }
    fclose(fi);

    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    mo_cls *cls = NULL;
    mo_session *s = NULL;
    int ret;
    if ((ret = mo_file_open(&f, model)) != MO_OK)
        return die(model, ret);
    if ((ret = mo_backbone_open(&bb, f, NULL)) != MO_OK)
        return die("backbone", ret);
    if ((ret = mo_cls_open(&cls, f, bb, NULL)) != MO_OK)
        return die("classifier", ret);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = h;
    ss.max_width = w;
    ss.threads = threads;
    if ((ret = mo_session_open(&s, bb, &ss)) != MO_OK)
        return die("session", ret);
    const int nc = mo_cls_num_classes(cls);
    float *logits = malloc((size_t)nc * sizeof(float));
    if (!logits)
        return 1;

    const mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    mo_features feats;
    for (int r = -warmup; r < runs; r++) {
        const double t0 = now_ms();
        if ((ret = mo_backbone_run(s, &in, 32, &feats)) != MO_OK)
            return die("run", ret);
        if ((ret = mo_cls_logits(cls, &feats, logits)) != MO_OK)
            return die("logits", ret);
        if (r >= 0)
            t[r] = now_ms() - t0;
    }
    if (logits_path) {
        FILE *fo = fopen(logits_path, "wb");
        if (!fo || fwrite(logits, sizeof(float), (size_t)nc, fo) != (size_t)nc || fclose(fo)) {
            fprintf(stderr, "mo_bench: cannot write %s\n", logits_path);
            return 1;
        }
    }
    printf("{\"threads\":%d,\"cpu_flags\":%u,\"runs\":%d,\"times_ms\":[", mo_session_threads(s),
           mo_get_cpu_flags(), runs);
    for (int r = 0; r < runs; r++)
        printf("%s%.4f", r ? "," : "", t[r]);
    qsort(t, (size_t)runs, sizeof(double), cmp_double);
    printf("],\"min_ms\":%.4f,\"median_ms\":%.4f}\n", t[0], t[runs / 2]);

    free(logits);
    mo_session_close(&s);
    mo_cls_close(&cls);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    free(x);
    free(t);
    return 0;
}
