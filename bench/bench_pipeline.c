/*
 * bench_pipeline: the multi-task pipeline against the same heads run one by one.
 *
 *   bench_pipeline --model BACKBONE [--head FILE]... [--frame WxH] [--format nv12|rgb]
 *                  [--iters N]
 *
 * Times mo_pipeline_run() with one shared backbone pass (share_backbone = 1) and with one
 * full pass per head (share_backbone = 0: what separate apps do), on a synthetic frame
 * (default 1280x720 NV12), and checks that both give the same outputs. Prints the median
 * per call and the split (conversion, preprocessing, backbone, heads).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/pipeline.h"

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct timing {
    double total, convert, pre, backbone, heads;
} timing;

static int bench(const char *model, const char **heads, int nh, int share, const mo_frame *fr,
                 int iters, timing *t, mo_pipeline_result *res, mo_detection *det,
                 uint8_t *lab)
{
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    set.share_backbone = share;
    mo_pipeline *p = NULL;
    mo_pipeline_session *s = NULL;
    int r = mo_pipeline_open(&p, model, heads, nh, &set);
    if (!r)
        r = mo_pipeline_session_open(&s, p, NULL);
    double *tot = calloc((size_t)iters, sizeof(double));
    if (!r && !tot)
        r = MO_ENOMEM;
    memset(t, 0, sizeof(*t));
    for (int i = -1; !r && i < iters; i++) { /* i = -1: warm-up */
        *res = (mo_pipeline_result){.size = sizeof(*res), .detections = det,
                                    .det_capacity = 100, .labels = lab,
                                    .label_stride = fr->width};
        if ((r = mo_pipeline_run(s, fr, res)) || i < 0)
            continue;
        tot[i] = res->ms_total;
        t->convert += res->ms_convert / iters;
        t->pre += res->ms_preprocess / iters;
        t->backbone += res->ms_backbone / iters;
        t->heads += res->ms_heads / iters;
    }
    if (!r) {
        qsort(tot, (size_t)iters, sizeof(double), cmp_d);
        t->total = tot[iters / 2];
    } else {
        fprintf(stderr, "bench_pipeline: %s (%s)\n", mo_strerror(r), mo_last_error());
    }
    free(tot);
    mo_pipeline_session_close(&s);
    mo_pipeline_close(&p);
    return r;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *heads[3];
    int nh = 0, w = 1280, h = 720, iters = 10, nv12 = 1;
    for (int i = 1; i < argc; i++) {
        const int has = i + 1 < argc;
        if (!strcmp(argv[i], "--model") && has)
            model = argv[++i];
        else if (!strcmp(argv[i], "--head") && has && nh < 3)
            heads[nh++] = argv[++i];
        else if (!strcmp(argv[i], "--frame") && has && sscanf(argv[i + 1], "%dx%d", &w, &h) == 2)
            i++;
        else if (!strcmp(argv[i], "--iters") && has && (iters = atoi(argv[++i])) > 0)
            ;
        else if (!strcmp(argv[i], "--format") && has)
            nv12 = !strcmp(argv[++i], "nv12");
        else {
            fprintf(stderr, "usage: bench_pipeline --model BACKBONE [--head FILE]... "
                            "[--frame WxH] [--format nv12|rgb] [--iters N]\n");
            return 2;
        }
    }
    if (!model || w < 1 || h < 1 || w > MO_MAX_INPUT_SIDE || h > MO_MAX_INPUT_SIDE) {
        fprintf(stderr, "bench_pipeline: --model is required (and a frame within limits)\n");
        return 2;
    }
    /* a smooth synthetic frame */
    const size_t n0 = (size_t)w * h * (nv12 ? 1 : 3), n1 = nv12 ? (size_t)2 * ((w + 1) / 2) * ((h + 1) / 2) : 0;
    uint8_t *buf = malloc(n0 + n1), *lab = malloc((size_t)w * h), *lab2 = malloc((size_t)w * h);
    mo_detection *det = malloc(sizeof(mo_detection) * 200);
    if (!buf || !lab || !lab2 || !det)
        return 1;
    for (size_t i = 0; i < n0 + n1; i++)
        buf[i] = (uint8_t)(64 + (i * 7 / 5 + (i / (size_t)w) * 3) % 128);
    const mo_frame fr = {.format = nv12 ? MO_FRAME_NV12 : MO_FRAME_RGB, .width = w, .height = h,
                         .data = {buf, buf + n0},
                         .stride = {nv12 ? w : 3 * w, 2 * ((w + 1) / 2)}};
    timing ts, tp;
    mo_pipeline_result rs, rp;
    int r = bench(model, heads, nh, 1, &fr, iters, &ts, &rs, det, lab);
    if (!r)
        r = bench(model, heads, nh, 0, &fr, iters, &tp, &rp, det + 100, lab2);
    if (r)
        return 1;
    const int same = rs.num_top == rp.num_top &&
                     !memcmp(rs.top, rp.top, sizeof(mo_class_score) * (size_t)rs.num_top) &&
                     rs.num_detections == rp.num_detections &&
                     !memcmp(det, det + 100, sizeof(mo_detection) * (size_t)rs.num_detections) &&
                     rs.has_labels == rp.has_labels &&
                     (!rs.has_labels || !memcmp(lab, lab2, (size_t)w * h));
    printf("frame %dx%d %s, %d head file(s), median of %d runs (ms)\n", w, h,
           nv12 ? "NV12" : "RGB", nh, iters);
    printf("%-22s %8s %8s %8s %8s %8s\n", "", "total", "convert", "preproc", "backbone", "heads");
    printf("%-22s %8.2f %8.2f %8.2f %8.2f %8.2f\n", "pipeline (shared)", ts.total, ts.convert,
           ts.pre, ts.backbone, ts.heads);
    printf("%-22s %8.2f %8.2f %8.2f %8.2f %8.2f\n", "one pass per head", tp.total, tp.convert,
           tp.pre, tp.backbone, tp.heads);
    printf("saving: %.2f ms per frame (%.0f%%); outputs %s\n", tp.total - ts.total,
           100.0 * (tp.total - ts.total) / tp.total, same ? "identical" : "DIFFER");
    free(buf), free(lab), free(lab2), free(det);
    return same ? 0 : 1;
}
