/*
 * The C side of bench/bench.py: time one model of the SDK on one input, through the
 * public API only.
 *
 * Usage: mo_bench --model FILE [--task cls|det|det-post|seg|pipeline] [--head FILE]...
 *                 [--input FILE] [--size HxW] [--os N] [--score X] [--frame WxH]
 *                 [--threads N] [--runs N] [--warmup N] [--out PREFIX] [--c]
 *
 * Tasks (what one timed run covers, wall clock):
 *   cls       mo_backbone_run (stride 32) + mo_cls_logits           -> PREFIX.logits.f32
 *   det       mo_backbone_run (stride 32) + mo_det_run_raw: class logits and box codes
 *                                             -> PREFIX.logits.f32 (N x K), PREFIX.reg.f32
 *   det-post  det + mo_det_postprocess (softmax, --score threshold, top-k, decoding, NMS)
 *                                             -> PREFIX.dets.f32 (n x 6: x1 y1 x2 y2 score label)
 *   seg       mo_backbone_run (--os) + mo_seg_run: logits, bilinear upsampling to the input
 *             size and argmax -> PREFIX.labels.u8 (H x W), and, outside the timing,
 *             mo_seg_logits -> PREFIX.low.f32 (h x w x K, before the upsampling)
 *   pipeline  mo_pipeline_run on an NV12 frame of --frame WxH (--input: its bytes), with
 *             the classifier of --model and the --head files; no output file
 * --input holds H x W x 3 float32 (NHWC, preprocessed) except for the pipeline. The head
 * files go with --head (det: the detection head; seg: the segmentation head; pipeline: up
 * to three).
 *
 * Prints one JSON line: {"task":..,"threads":..,"runs":..,"times_ms":[..],"min_ms":..,
 * "median_ms":..,"mflop":..,"mflop_dense":..,"max_rss_kb":..}. "mflop" is the sum of the
 * per-operation FLOPs (mo_op_profile.flops) of one more, profiled, run after the timed
 * ones (for the pipeline: of the same passes run one by one, see pipeline_flops());
 * "mflop_dense" counts every tap of the segmentation head's dilated convs (see
 * profile_flops()); "max_rss_kb" is the peak resident set (VmHWM) read before that
 * profiled run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mo/mo.h"
#include "mo/pipeline.h"
#include "mo/segment.h"

enum { TASK_CLS, TASK_DET, TASK_DET_POST, TASK_SEG, TASK_PIPELINE };
static const char *const task_names[] = {"cls", "det", "det-post", "seg", "pipeline"};

#define MAX_DETS 300
#define MAX_HEADS 3

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

/* Peak resident set in KiB: VmHWM of /proc/self/status (Linux), which starts afresh at
 * exec; getrusage's ru_maxrss would keep the peak of the parent that forked us (Linux
 * carries it across execve), so it is only the fallback. */
static long max_rss_kb(void)
{
    long kb = -1;
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    struct rusage ru;
    if (kb < 0 && !getrusage(RUSAGE_SELF, &ru))
        kb = ru.ru_maxrss;
    return kb;
}

static int die(const char *what, int ret)
{
    fprintf(stderr, "mo_bench: %s: %s (%s)\n", what, mo_strerror(ret), mo_last_error());
    return 1;
}

static int write_file(const char *prefix, const char *suffix, const void *p, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s", prefix, suffix);
    FILE *fo = fopen(path, "wb");
    if (!fo || fwrite(p, 1, bytes, fo) != bytes || fclose(fo)) {
        fprintf(stderr, "mo_bench: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* Sum of the FLOPs the profile of @p s recorded; -1 when some were dropped. With
 * @p dense, the segmentation head's dilated 3x3 convs (which count only the taps that read
 * the image) are counted with all 9 taps over @p seg_cin input channels instead, as a
 * dense implementation (ONNX Runtime) runs them. */
static double profile_flops(const mo_session *s, double *dense, int seg_cin)
{
    const mo_op_profile *ops;
    int n = 0, dropped = 0;
    double sum = 0.0, full = 0.0;
    if (mo_session_profile(s, &ops, &n, &dropped) != MO_OK)
        return -1.0;
    for (int i = 0; i < n; i++) {
        sum += ops[i].flops;
        full += !strcmp(ops[i].model, "seg") && !strcmp(ops[i].kind, "conv3x3_dil")
                    ? 2.0 * 9 * seg_cin * ops[i].h * ops[i].w * ops[i].c
                    : ops[i].flops;
    }
    if (dense)
        *dense = full;
    return dropped ? -1.0 : sum;
}

/* Analytic FLOPs of one pipeline call: the passes mo_pipeline_run makes (pipeline.h),
 * run one by one on zero inputs with the profile on: the classifier's own 224 x 224 (its
 * crop) pass, the shared pass at the detection input size with the detection head, stage4
 * recomputed at the segmentation stride and the segmentation head sampled back to the
 * frame size. Conversion and preprocessing are not counted. -1 on failure. */
static double pipeline_flops(const char *model, const char **heads, int nh, int fw, int fh)
{
    mo_file *f = NULL, *hf[MAX_HEADS] = {NULL};
    mo_backbone *bb = NULL;
    mo_cls *cls = NULL;
    mo_det *det = NULL;
    mo_seg *seg = NULL;
    mo_session *s = NULL;
    float *x = NULL, *logits = NULL;
    uint8_t *labels = NULL;
    mo_detection dets[MAX_DETS];
    double total = -1.0, part;
    int crop = 224, resize = 256, h = 512, w = 512, nd;
    if (mo_file_open(&f, model) || mo_backbone_open(&bb, f, NULL))
        goto done;
    if (mo_cls_open(&cls, f, bb, NULL) != MO_OK)
        cls = NULL; /* a backbone file without a classifier: no classification pass */
    for (int i = 0; i < nh; i++) {
        if (mo_file_open(&hf[i], heads[i]))
            goto done;
        if (!det && mo_det_open(&det, hf[i], bb, NULL) == MO_OK)
            continue;
        if (!seg && mo_seg_open(&seg, hf[i], bb, NULL) == MO_OK)
            continue;
    }
    if (cls)
        mo_cls_preprocess(cls, &resize, &crop, NULL, NULL);
    if (det)
        mo_det_input_size(det, &w, &h);
    mo_seg_info si = {.output_stride = 32};
    if (seg)
        mo_seg_get_info(seg, &si);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = h > crop ? h : crop;
    ss.max_width = w > crop ? w : crop;
    ss.min_output_stride = si.output_stride;
    size_t ws = det ? mo_det_workspace_size(det) : 0, seg_ws = 0;
    if (seg && mo_seg_workspace_size(seg, h, w, si.output_stride, &seg_ws))
        goto done;
    ss.workspace_bytes = ws > seg_ws ? ws : seg_ws;
    if (mo_session_open(&s, bb, &ss) || mo_session_set_profile(s, 1))
        goto done;
    x = calloc((size_t)ss.max_height * ss.max_width * 3, sizeof(float));
    logits = malloc(sizeof(float) * (cls ? (size_t)mo_cls_num_classes(cls) : 1));
    labels = malloc((size_t)fw * fh);
    if (!x || !logits || !labels)
        goto done;
    mo_features feats;
    total = 0.0;
    if (cls) {
        const mo_tensor in = {x, crop, crop, 3, (ptrdiff_t)crop * 3};
        if (mo_backbone_run(s, &in, 32, &feats) || mo_cls_run(cls, s, &feats, logits) ||
            (part = profile_flops(s, NULL, 0)) < 0)
            goto fail;
        total += part;
    }
    if (det || seg) {
        const mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
        if (mo_backbone_run(s, &in, 32, &feats) ||
            (det && mo_det_run(det, s, &feats, NULL, fw, fh, dets, MAX_DETS, &nd)))
            goto fail;
        if (seg && ((si.output_stride != 32 &&
                     mo_backbone_run_from(s, &feats, si.output_stride == 16 ? 2 : 1,
                                          si.output_stride, &feats)) ||
                    mo_seg_run(seg, s, &feats, fh, fw, labels, fw, NULL)))
            goto fail;
        if ((part = profile_flops(s, NULL, 0)) < 0)
            goto fail;
        total += part;
    }
    goto done;
fail:
    total = -1.0;
done:
    free(x);
    free(logits);
    free(labels);
    mo_session_close(&s);
    mo_seg_close(&seg);
    mo_det_close(&det);
    mo_cls_close(&cls);
    mo_backbone_close(&bb);
    for (int i = 0; i < MAX_HEADS; i++)
        mo_file_close(&hf[i]);
    mo_file_close(&f);
    return total;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s --model FILE [--task cls|det|det-post|seg|pipeline] "
                    "[--head FILE]... [--input FILE] [--size HxW] [--os N] [--score X] "
                    "[--frame WxH] [--threads N] [--runs N] [--warmup N] [--out PREFIX] "
                    "[--c]\n", argv0);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *out = NULL, *heads[MAX_HEADS];
    int h = 224, w = 224, fw = 1280, fh = 720, threads = 1, runs = 20, warmup = 3;
    int task = TASK_CLS, os = 0, nh = 0;
    double score = 0.01;
    for (int i = 1; i < argc; i++) {
        const int has = i + 1 < argc;
        if (!strcmp(argv[i], "--model") && has)
            model = argv[++i];
        else if (!strcmp(argv[i], "--task") && has) {
            task = -1;
            for (int k = 0; k < 5; k++)
                if (!strcmp(argv[i + 1], task_names[k]))
                    task = k;
            i++;
            if (task < 0) {
                usage(argv[0]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--head") && has && nh < MAX_HEADS)
            heads[nh++] = argv[++i];
        else if (!strcmp(argv[i], "--input") && has)
            input = argv[++i];
        else if (!strcmp(argv[i], "--size") && has && sscanf(argv[i + 1], "%dx%d", &h, &w) == 2)
            i++;
        else if (!strcmp(argv[i], "--frame") && has &&
                 sscanf(argv[i + 1], "%dx%d", &fw, &fh) == 2)
            i++;
        else if (!strcmp(argv[i], "--os") && has)
            os = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--score") && has)
            score = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && has)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && has)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && has)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && has)
            out = argv[++i];
        else if (!strcmp(argv[i], "--c"))
            mo_set_cpu_flags_mask(0);
        else {
            usage(argv[0]);
            return 2;
        }
    }
    const int need_head = task == TASK_DET || task == TASK_DET_POST || task == TASK_SEG;
    if (!model || !input || runs < 1 || warmup < 0 || h < 1 || w < 1 ||
        h > MO_MAX_INPUT_SIDE || w > MO_MAX_INPUT_SIDE || fw < 1 || fh < 1 ||
        fw > MO_MAX_INPUT_SIDE || fh > MO_MAX_INPUT_SIDE || threads < 0 ||
        threads > MO_MAX_THREADS || (need_head && nh != 1) ||
        (os && os != 8 && os != 16 && os != 32)) {
        usage(argv[0]);
        return 2;
    }

    /* the input: preprocessed floats, or the NV12 bytes of a frame */
    const size_t n_nv12 = (size_t)fw * fh + (size_t)2 * ((fw + 1) / 2) * ((fh + 1) / 2);
    const size_t in_bytes = task == TASK_PIPELINE ? n_nv12 : (size_t)h * w * 3 * sizeof(float);
    void *x = malloc(in_bytes);
    double *t = malloc((size_t)runs * sizeof(double));
    FILE *fi = fopen(input, "rb");
    if (!x || !t || !fi || fread(x, 1, in_bytes, fi) != in_bytes) {
        fprintf(stderr, "mo_bench: cannot read %zu bytes from %s\n", in_bytes, input);
        return 1;
    }
    fclose(fi);

    int ret;
    double flops = -1.0, dense = -1.0;
    long rss;
    char extra[512] = "";
    if (task == TASK_PIPELINE) {
        mo_pipeline_settings ps;
        mo_pipeline_default_settings(&ps);
        ps.threads = threads;
        mo_pipeline *p = NULL;
        mo_pipeline_session *ps_s = NULL;
        if ((ret = mo_pipeline_open(&p, model, heads, nh, &ps)) != MO_OK)
            return die("pipeline", ret);
        if ((ret = mo_pipeline_session_open(&ps_s, p, NULL)) != MO_OK)
            return die("pipeline session", ret);
        const uint8_t *y = x;
        const mo_frame fr = {.format = MO_FRAME_NV12, .width = fw, .height = fh,
                             .data = {y, y + (size_t)fw * fh},
                             .stride = {fw, 2 * ((fw + 1) / 2)}};
        mo_detection *dets = malloc(sizeof(mo_detection) * MAX_DETS);
        uint8_t *labels = malloc((size_t)fw * fh);
        double *split = malloc(sizeof(double) * 4 * (size_t)runs); /* the result's parts */
        if (!dets || !labels || !split)
            return 1;
        mo_pipeline_result res;
        for (int r = -warmup; r < runs; r++) {
            res = (mo_pipeline_result){.size = sizeof(res), .detections = dets,
                                       .det_capacity = MAX_DETS, .labels = labels,
                                       .label_stride = fw};
            const double t0 = now_ms();
            if ((ret = mo_pipeline_run(ps_s, &fr, &res)) != MO_OK)
                return die("pipeline run", ret);
            if (r < 0)
                continue;
            t[r] = now_ms() - t0;
            split[r] = res.ms_convert;
            split[runs + r] = res.ms_preprocess;
            split[2 * runs + r] = res.ms_backbone;
            split[3 * runs + r] = res.ms_heads;
        }
        rss = max_rss_kb();
        for (int k = 0; k < 4; k++)
            qsort(split + k * runs, (size_t)runs, sizeof(double), cmp_double);
        snprintf(extra, sizeof(extra), ",\"detections\":%d,\"top1\":%d,\"has_labels\":%d,"
                 "\"median_split_ms\":{\"convert\":%.4f,\"preprocess\":%.4f,"
                 "\"backbone\":%.4f,\"heads\":%.4f}", res.num_detections,
                 res.num_top ? res.top[0].index : -1, res.has_labels, split[runs / 2],
                 split[runs + runs / 2], split[2 * runs + runs / 2], split[3 * runs + runs / 2]);
        free(split);
        mo_pipeline_session_close(&ps_s);
        mo_pipeline_close(&p);
        free(dets);
        free(labels);
        flops = pipeline_flops(model, heads, nh, fw, fh);
    } else {
        mo_file *f = NULL, *hf = NULL;
        mo_backbone *bb = NULL;
        mo_cls *cls = NULL;
        mo_det *det = NULL;
        mo_seg *seg = NULL;
        mo_session *s = NULL;
        mo_det_settings ds;
        mo_det_default_settings(&ds);
        ds.score_thresh = score;
        if ((ret = mo_file_open(&f, model)) != MO_OK)
            return die(model, ret);
        if ((ret = mo_backbone_open(&bb, f, NULL)) != MO_OK)
            return die("backbone", ret);
        if (task == TASK_CLS && (ret = mo_cls_open(&cls, f, bb, NULL)) != MO_OK)
            return die("classifier", ret);
        if (need_head && (ret = mo_file_open(&hf, heads[0])) != MO_OK)
            return die(heads[0], ret);
        if (task == TASK_SEG && (ret = mo_seg_open(&seg, hf, bb, NULL)) != MO_OK)
            return die("segmentation head", ret);
        if (task != TASK_SEG && need_head && (ret = mo_det_open(&det, hf, bb, &ds)) != MO_OK)
            return die("detection head", ret);
        mo_seg_info si = {0};
        if (seg) {
            mo_seg_get_info(seg, &si);
            if (!os)
                os = si.output_stride;
        }
        if (!os || task != TASK_SEG)
            os = 32;
        if (det) {
            int dw, dh;
            mo_det_input_size(det, &dw, &dh);
            if (dw != w || dh != h) {
                fprintf(stderr, "mo_bench: the detection head wants %dx%d, not %dx%d\n", dh,
                        dw, h, w);
                return 2;
            }
        }
        mo_session_settings ss;
        mo_session_default_settings(&ss);
        ss.max_height = h;
        ss.max_width = w;
        ss.threads = threads;
        ss.min_output_stride = os;
        if (det)
            ss.workspace_bytes = mo_det_workspace_size(det);
        if (seg && (ret = mo_seg_workspace_size(seg, h, w, os, &ss.workspace_bytes)) != MO_OK)
            return die("segmentation workspace", ret);
        if ((ret = mo_session_open(&s, bb, &ss)) != MO_OK)
            return die("session", ret);
        const int nc = cls ? mo_cls_num_classes(cls) : 1;
        float *logits = malloc((size_t)nc * sizeof(float));
        uint8_t *labels = seg ? malloc((size_t)h * w) : NULL;
        mo_detection *dets = malloc(sizeof(mo_detection) * MAX_DETS);
        if (!logits || (seg && !labels) || !dets)
            return 1;

        const mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
        mo_features feats;
        mo_det_raw raw = {0};
        int nd = 0;
        for (int r = -warmup; r < runs; r++) {
            const double t0 = now_ms();
            if ((ret = mo_backbone_run(s, &in, os, &feats)) != MO_OK)
                return die("run", ret);
            if (cls && (ret = mo_cls_logits(cls, &feats, logits)) != MO_OK)
                return die("logits", ret);
            if (det && (ret = mo_det_run_raw(det, s, &feats, &raw)) != MO_OK)
                return die("detection head", ret);
            if (task == TASK_DET_POST &&
                (ret = mo_det_postprocess(det, s, raw.logits, raw.regression, &ds, w, h, dets,
                                          MAX_DETS, &nd)) != MO_OK)
                return die("detection post-processing", ret);
            if (seg && (ret = mo_seg_run(seg, s, &feats, h, w, labels, w, NULL)) != MO_OK)
                return die("segmentation head", ret);
            if (r >= 0)
                t[r] = now_ms() - t0;
        }
        rss = max_rss_kb();
        snprintf(extra, sizeof(extra), ",\"output_stride\":%d,\"detections\":%d", os, nd);
        if (out) {
            int bad = 0;
            if (cls)
                bad |= write_file(out, ".logits.f32", logits, (size_t)nc * sizeof(float));
            if (task == TASK_DET) {
                bad |= write_file(out, ".logits.f32", raw.logits,
                                  sizeof(float) * raw.num_anchors * raw.num_classes);
                bad |= write_file(out, ".reg.f32", raw.regression,
                                  sizeof(float) * raw.num_anchors * 4);
            }
            if (task == TASK_DET_POST) {
                float *d6 = malloc(sizeof(float) * 6 * (nd ? nd : 1));
                for (int i = 0; d6 && i < nd; i++) {
                    const float v[6] = {dets[i].x1, dets[i].y1, dets[i].x2, dets[i].y2,
                                        dets[i].score, (float)dets[i].label};
                    memcpy(d6 + 6 * i, v, sizeof(v));
                }
                bad |= !d6 || write_file(out, ".dets.f32", d6, sizeof(float) * 6 * nd);
                free(d6);
            }
            if (seg) {
                mo_tensor low;
                bad |= write_file(out, ".labels.u8", labels, (size_t)h * w);
                if ((ret = mo_seg_logits(seg, s, &feats, &low)) != MO_OK)
                    return die("segmentation logits", ret);
                bad |= write_file(out, ".low.f32", low.data,
                                  sizeof(float) * low.h * low.w * low.c);
            }
            if (bad)
                return 1;
        }
        /* one more run with the profile on: the FLOPs of every operation it records */
        if ((ret = mo_session_set_profile(s, 1)) != MO_OK)
            return die("profile", ret);
        if ((ret = mo_backbone_run(s, &in, os, &feats)) != MO_OK ||
            (cls && (ret = mo_cls_run(cls, s, &feats, logits)) != MO_OK) ||
            (det && (ret = mo_det_run_raw(det, s, &feats, &raw)) != MO_OK) ||
            (task == TASK_DET_POST &&
             (ret = mo_det_postprocess(det, s, raw.logits, raw.regression, &ds, w, h, dets,
                                       MAX_DETS, &nd)) != MO_OK) ||
            (seg && (ret = mo_seg_run(seg, s, &feats, h, w, labels, w, NULL)) != MO_OK))
            return die("profiled run", ret);
        flops = profile_flops(s, &dense, si.in_channels);
        threads = mo_session_threads(s);
        free(logits);
        free(labels);
        free(dets);
        mo_session_close(&s);
        mo_seg_close(&seg);
        mo_det_close(&det);
        mo_cls_close(&cls);
        mo_backbone_close(&bb);
        mo_file_close(&hf);
        mo_file_close(&f);
    }

    printf("{\"task\":\"%s\",\"threads\":%d,\"cpu_flags\":%u,\"runs\":%d,\"times_ms\":[",
           task_names[task], threads, mo_get_cpu_flags(), runs);
    for (int r = 0; r < runs; r++)
        printf("%s%.4f", r ? "," : "", t[r]);
    qsort(t, (size_t)runs, sizeof(double), cmp_double);
    printf("],\"min_ms\":%.4f,\"median_ms\":%.4f,\"mflop\":%.3f,\"mflop_dense\":%.3f,"
           "\"max_rss_kb\":%ld%s}\n", t[0], t[runs / 2], flops * 1e-6,
           (dense < 0 ? flops : dense) * 1e-6, rss, extra);
    free(x);
    free(t);
    return flops < 0 ? 1 : 0;
}
