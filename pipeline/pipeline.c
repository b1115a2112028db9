/*
 * The multi-task pipeline: one backbone, its heads, one call per frame
 * (include/mo/pipeline.h says what is shared and what is recomputed).
 *
 * Placed in its own library (libmo_pipeline) rather than under heads/: it is not a head
 * but a client of every head library and of libmo_io (frame conversion, preprocessing),
 * and an app that needs one head keeps linking that head alone.
 */
#include "mo/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mo_internal/backbone.h"
#include "mo_internal/errors.h"
#include "mo_internal/exec.h"
#include "mo_internal/loader.h"
#include "mo_internal/meta.h"
#include "mo_internal/settings.h"
#include "head.h"
#include "pipeline_internal.h"
#ifdef MO_PIPELINE_HAVE_SEG
#include "mo/segment.h"
#endif

/* The head kinds the pipeline can hold, in the order their heads are listed. Adding a
 * kind: its mo_head_ops in pipeline/head_<kind>.c (pipeline/head.h) and one line here. */
static const mo_head_ops *const head_kinds[] = {
    &mo_head_cls_ops,
    &mo_head_det_ops,
#ifdef MO_PIPELINE_HAVE_SEG
    &mo_head_seg_ops,
#endif
};
#define NUM_KINDS ((int)(sizeof(head_kinds) / sizeof(head_kinds[0])))
#define MAX_HEADS 8

typedef struct head_slot {
    const mo_head_ops *ops;
    void *h;             /* the head (mo_cls, mo_det, mo_seg) */
    mo_head_needs needs; /* under the pipeline's settings */
} head_slot;

struct mo_pipeline {
    mo_pipeline_settings set;
    mo_file *bb_file;
    mo_backbone *bb;
    mo_model_info bb_info; /* the backbone file's preprocessing (no classes, no strings) */
    float mean[3], std[3];
    int shared_w, shared_h; /* input of the shared pass */
    int n;                  /* heads */
    head_slot head[MAX_HEADS];
};

/* One backbone pass: its input (the shared one, or a head's own), and the heads that read
 * it, in decreasing output stride (each lower stride recomputes the dilated stages). */
typedef struct pass_plan {
    int own;              /* index of the head whose prepare() makes the input, or -1 */
    int n;
    int idx[MAX_HEADS];
} pass_plan;

struct mo_pipeline_session {
    const mo_pipeline *p;
    mo_session *s;
    float *shared_in;
    float *own_in[MAX_HEADS]; /* inputs of the heads with their own preprocessing */
    uint8_t *rgb;
    size_t rgb_bytes;
    int npass;
    pass_plan pass[MAX_HEADS];
};

void mo_pipeline_default_settings_sized(mo_pipeline_settings *s, size_t size)
{
    const mo_pipeline_settings d = {.size = sizeof(d), .share_backbone = 1, .classify = 1,
                                    .shared_width = 512, .shared_height = 512, .top_k = 5,
                                    .threads = 1};
    MO_SETTINGS_FILL(s, size, &d);
}

void mo_pipeline_session_default_settings_sized(mo_pipeline_session_settings *s, size_t size)
{
    const mo_pipeline_session_settings d = {.size = sizeof(d), .threads = -1};
    MO_SETTINGS_FILL(s, size, &d);
}

static const head_slot *find_head(const mo_pipeline *p, const mo_head_ops *ops)
{
    for (int i = 0; p && i < p->n; i++)
        if (p->head[i].ops == ops)
            return &p->head[i];
    return NULL;
}

/* Open f as a head of kind ops on p's backbone and add it. */
static int add_kind(mo_pipeline *p, const mo_head_ops *ops, const mo_file *f)
{
    if (p->n == MAX_HEADS)
        return mo_fail(MO_EINVAL, "more than %d heads", MAX_HEADS);
    head_slot *hs = &p->head[p->n];
    const mo_head_open_ctx ctx = {.set = &p->set, .bb_info = &p->bb_info};
    *hs = (head_slot){.ops = ops};
    int r = ops->open(&hs->h, f, p->bb, &ctx);
    if (!r && !(r = ops->needs(hs->h, &p->set, &hs->needs))) {
        const mo_head_needs *n = &hs->needs;
        if (!n->levels || (n->levels & ~(((1u << MO_NUM_LEVELS) - 1u) | MO_HEAD_POOLED)) ||
            (n->output_stride != 8 && n->output_stride != 16 && n->output_stride != 32) ||
            (n->own_input && (n->input_w < 1 || n->input_h < 1)))
            r = mo_fail(MO_EINVAL, "the %s head's needs (levels 0x%x, output stride %d, "
                                   "input %dx%d) are not a backbone's", ops->what,
                        n->levels, n->output_stride, n->input_w, n->input_h);
    }
    if (!r)
        p->n++;
    else
        ops->close(&hs->h);
    return r;
}

static void drop_head(mo_pipeline *p, int i)
{
    p->head[i].ops->close(&p->head[i].h);
    for (int j = i + 1; j < p->n; j++)
        p->head[j - 1] = p->head[j];
    p->n--;
}

/* The pipeline's head detection: which head f holds (mo.contents), opened as that head. */
int mo_pipeline_add_head(mo_pipeline *p, const mo_file *f, const char *path)
{
    validate_input_or_ret(p && f && path, MO_EINVAL);
    mo_model_info info; /* which head f holds (mo.contents), its metadata validated */
    int r = mo_model_info_read(f, NULL, &info);
    if (r)
        return mo_fail_prefix(r, "%s", path);
    const unsigned heads = info.contents & (MO_HOLDS_CLS | MO_HOLDS_DET | MO_HOLDS_SEG);
    const mo_head_ops *ops = NULL;
    for (int k = 0; k < NUM_KINDS; k++)
        if (heads == head_kinds[k]->holds)
            ops = head_kinds[k];
    if (!heads || (heads & (heads - 1)))
        r = mo_fail(MO_EINVAL, "%s: mo.contents names %s head kind (cls, det or seg)", path,
                    heads ? "more than one" : "no");
    else if (!ops)
        r = mo_fail(MO_EINVAL, "%s: segmentation head, but the SDK was built without "
                               "libmo_segment", path);
    else if (find_head(p, ops))
        r = mo_fail(MO_EINVAL, "%s: a second %s head", path, ops->what);
    else
        r = add_kind(p, ops, f);
    if (r && !strstr(mo_last_error(), path))
        mo_fail_prefix(r, "%s", path);
    return r;
}

void mo_pipeline_drop_heads(mo_pipeline *p)
{
    while (p && p->n)
        drop_head(p, p->n - 1);
}

static int open_head(mo_pipeline *p, const char *path)
{
    mo_file *f = NULL;
    int r = mo_file_open(&f, path);
    if (!r)
        r = mo_pipeline_add_head(p, f, path);
    mo_file_close(&f);
    return r;
}

static int session_plan(const mo_pipeline *p, int threads, mo_session_settings *ss,
                        size_t *inputs);

/* The shared input size: the one a head fixes (detection's), else the settings'. */
static int shared_size(mo_pipeline *p)
{
    p->shared_w = p->set.shared_width;
    p->shared_h = p->set.shared_height;
    const head_slot *fixer = NULL;
    for (int i = 0; i < p->n; i++) {
        const mo_head_needs *n = &p->head[i].needs;
        if (n->own_input || !n->input_w)
            continue;
        if (fixer && (n->input_w != p->shared_w || n->input_h != p->shared_h))
            return mo_fail(MO_EMISMATCH, "the %s head's input %dx%d differs from the %s "
                                         "head's %dx%d: one shared pass cannot feed both",
                           p->head[i].ops->what, n->input_w, n->input_h, fixer->ops->what,
                           p->shared_w, p->shared_h);
        fixer = &p->head[i];
        p->shared_w = n->input_w;
        p->shared_h = n->input_h;
    }
    return MO_OK;
}

int mo_pipeline_open(mo_pipeline **out, const char *backbone_file,
                     const char *const *head_files, int n, const mo_pipeline_settings *s)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(backbone_file && n >= 0 && n <= MAX_HEADS && (n == 0 || head_files),
                          MO_EINVAL);
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    static const size_t ends[] = {
        MO_FIELD_END(mo_pipeline_settings, share_backbone),
        MO_FIELD_END(mo_pipeline_settings, classify_shared),
        MO_FIELD_END(mo_pipeline_settings, classify),
        MO_FIELD_END(mo_pipeline_settings, shared_width),
        MO_FIELD_END(mo_pipeline_settings, shared_height),
        MO_FIELD_END(mo_pipeline_settings, seg_output_stride),
        MO_FIELD_END(mo_pipeline_settings, top_k),
        MO_FIELD_END(mo_pipeline_settings, threads)};
    int r = MO_SETTINGS_TAKE(&set, s, ends, "mo_pipeline_open", "mo_pipeline_settings");
    if (r)
        return r;
    if (set.top_k < 1 || set.top_k > MO_PIPELINE_MAX_TOPK || set.shared_width < 1 ||
        set.shared_height < 1 || set.shared_width > MO_MAX_INPUT_SIDE ||
        set.shared_height > MO_MAX_INPUT_SIDE ||
        (set.seg_output_stride != 0 && set.seg_output_stride != 8 &&
         set.seg_output_stride != 16 && set.seg_output_stride != 32) ||
        set.threads < 0 || set.threads > MO_MAX_THREADS)
        return mo_fail(MO_EINVAL, "mo_pipeline_open: top_k, shared size, "
                                  "seg_output_stride or threads out of range");
    mo_pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return mo_fail(MO_ENOMEM, "mo_pipeline_open: out of memory");
    p->set = set;
    r = mo_file_open(&p->bb_file, backbone_file);
    if (!r)
        r = mo_backbone_open(&p->bb, p->bb_file, NULL);
    if (!r && !(r = mo_model_info_read(p->bb_file, NULL, &p->bb_info))) {
        memcpy(p->mean, p->bb_info.mean, sizeof(p->mean));
        memcpy(p->std, p->bb_info.std, sizeof(p->std));
    }
    /* a classification head in the backbone file */
    if (!r && set.classify && mo_file_meta(p->bb_file, "cls.classes"))
        r = add_kind(p, &mo_head_cls_ops, p->bb_file);
    for (int i = 0; !r && i < n; i++)
        r = head_files[i] ? open_head(p, head_files[i]) : mo_fail(MO_EINVAL, "NULL head path");
    for (int i = p->n - 1; !r && !set.classify && i >= 0; i--)
        if (p->head[i].ops == &mo_head_cls_ops)
            drop_head(p, i);
    mo_file_close(&p->bb_file);
    p->bb_info.variant = p->bb_info.backbone_digest = NULL; /* they lived in the file */
    if (!r)
        r = shared_size(p);
    /* all the heads' sizes together (each head checked its own at open) */
    mo_session_settings ss;
    size_t inputs;
    if (r || (r = session_plan(p, set.threads, &ss, &inputs)) ||
        (r = mo_meta_check_memory(p->bb, ss.max_height, ss.max_width, ss.min_output_stride,
                                  ss.workspace_bytes + inputs,
                                  "det.input_size, cls.crop and the shared size"))) {
        mo_pipeline_close(&p);
        return r;
    }
    *out = p;
    return MO_OK;
}

void mo_pipeline_close(mo_pipeline **pp)
{
    if (!pp || !*pp)
        return;
    mo_pipeline *p = *pp;
    mo_pipeline_drop_heads(p);
    mo_backbone_close(&p->bb);
    mo_file_close(&p->bb_file);
    free(p);
    *pp = NULL;
}

const mo_backbone *mo_pipeline_backbone(const mo_pipeline *p) { return p ? p->bb : NULL; }

const mo_cls *mo_pipeline_cls(const mo_pipeline *p)
{
    const head_slot *hs = find_head(p, &mo_head_cls_ops);
    return hs ? hs->h : NULL;
}

const mo_det *mo_pipeline_det(const mo_pipeline *p)
{
    const head_slot *hs = find_head(p, &mo_head_det_ops);
    return hs ? hs->h : NULL;
}

int mo_pipeline_seg_num_classes(const mo_pipeline *p)
{
#ifdef MO_PIPELINE_HAVE_SEG
    const head_slot *hs = find_head(p, &mo_head_seg_ops);
    mo_seg_info info;
    return hs && !mo_seg_get_info(hs->h, &info) ? info.num_classes : 0;
#else
    (void)p;
    return 0;
#endif
}

const char *mo_pipeline_seg_class_name(const mo_pipeline *p, int i)
{
#ifdef MO_PIPELINE_HAVE_SEG
    const head_slot *hs = find_head(p, &mo_head_seg_ops);
    return hs ? mo_seg_class_name(hs->h, i) : NULL;
#else
    (void)p;
    (void)i;
    return NULL;
#endif
}

static int max_i(int a, int b) { return a > b ? a : b; }

/* The passes: with sharing, one pass at the shared input for every head that takes it;
 * without, one per head; a head with its own preprocessing always has its own. */
static int plan_passes(const mo_pipeline *p, pass_plan *pass)
{
    int np = 0;
    for (int i = 0; i < p->n; i++) {
        const mo_head_needs *n = &p->head[i].needs;
        pass_plan *pp = NULL;
        if (!n->own_input && p->set.share_backbone)
            for (int k = 0; k < np && !pp; k++)
                if (pass[k].own < 0)
                    pp = &pass[k];
        if (!pp) {
            pp = &pass[np++];
            *pp = (pass_plan){.own = n->own_input ? i : -1};
        }
        /* insert keeping the output strides decreasing (stable) */
        int at = pp->n;
        while (at > 0 && p->head[pp->idx[at - 1]].needs.output_stride < n->output_stride) {
            pp->idx[at] = pp->idx[at - 1];
            at--;
        }
        pp->idx[at] = i;
        pp->n++;
    }
    /* the shared passes first, as the file comment of pipeline.h describes */
    for (int a = 1; a < np; a++)
        for (int b = a; b > 0 && pass[b - 1].own >= 0 && pass[b].own < 0; b--) {
            pass_plan t = pass[b];
            pass[b] = pass[b - 1];
            pass[b - 1] = t;
        }
    return np;
}

/* The session a pipeline needs, and the bytes of its float input tensors. */
static int session_plan(const mo_pipeline *p, int threads, mo_session_settings *ss,
                        size_t *inputs)
{
    mo_session_default_settings(ss);
    ss->max_width = ss->max_height = 1;
    ss->min_output_stride = 32;
    ss->threads = threads;
    ss->workspace_bytes = 0;
    *inputs = 0;
    int shared = 0;
    for (int i = 0; i < p->n; i++)
        shared |= !p->head[i].needs.own_input;
    if (shared) {
        ss->max_width = p->shared_w;
        ss->max_height = p->shared_h;
        *inputs += sizeof(float) * 3 * (size_t)p->shared_w * p->shared_h;
    }
    for (int i = 0; i < p->n; i++) {
        const head_slot *hs = &p->head[i];
        const mo_head_needs *n = &hs->needs;
        const int w = n->own_input ? n->input_w : p->shared_w;
        const int h = n->own_input ? n->input_h : p->shared_h;
        if (n->own_input) {
            ss->max_width = max_i(ss->max_width, w);
            ss->max_height = max_i(ss->max_height, h);
            *inputs += sizeof(float) * 3 * (size_t)w * h;
        }
        if (n->output_stride < ss->min_output_stride)
            ss->min_output_stride = n->output_stride;
        size_t b = 0;
        int r = hs->ops->workspace_size(hs->h, h, w, n->output_stride, &b);
        if (r)
            return r;
        if (b > ss->workspace_bytes)
            ss->workspace_bytes = b;
    }
    return MO_OK;
}

int mo_pipeline_session_open(mo_pipeline_session **out, const mo_pipeline *p,
                             const mo_pipeline_session_settings *s)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(p, MO_EINVAL);
    mo_pipeline_session_settings set;
    mo_pipeline_session_default_settings(&set);
    static const size_t ends[] = {MO_FIELD_END(mo_pipeline_session_settings, threads)};
    int r = MO_SETTINGS_TAKE(&set, s, ends, "mo_pipeline_session_open",
                             "mo_pipeline_session_settings");
    if (r)
        return r;
    if (set.threads < -1 || set.threads > MO_MAX_THREADS)
        return mo_fail(MO_EINVAL, "mo_pipeline_session_open: threads %d outside -1..%d",
                       set.threads, MO_MAX_THREADS);
    mo_pipeline_session *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return mo_fail(MO_ENOMEM, "mo_pipeline_session_open: out of memory");
    ps->p = p;
    ps->npass = plan_passes(p, ps->pass);
    mo_session_settings ss;
    size_t inputs;
    r = session_plan(p, set.threads < 0 ? p->set.threads : set.threads, &ss, &inputs);
    if (!r)
        r = mo_session_open(&ps->s, p->bb, &ss);
    for (int k = 0; !r && k < ps->npass; k++) {
        const int own = ps->pass[k].own;
        const mo_head_needs *n = own >= 0 ? &p->head[own].needs : NULL;
        float **buf = own >= 0 ? &ps->own_in[own] : &ps->shared_in;
        const size_t px = n ? (size_t)n->input_w * n->input_h : (size_t)p->shared_w * p->shared_h;
        if (!*buf && !(*buf = malloc(sizeof(float) * 3 * px)))
            r = mo_fail(MO_ENOMEM, "mo_pipeline_session_open: out of memory");
    }
    if (r) {
        mo_pipeline_session_close(&ps);
        return r;
    }
    *out = ps;
    return MO_OK;
}

void mo_pipeline_session_close(mo_pipeline_session **s)
{
    if (!s || !*s)
        return;
    mo_session_close(&(*s)->s);
    free((*s)->shared_in);
    for (int i = 0; i < MAX_HEADS; i++)
        free((*s)->own_in[i]);
    free((*s)->rgb);
    free(*s);
    *s = NULL;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int run(mo_pipeline_session *ps, const mo_frame *frame, mo_pipeline_result *out);

/* Frame conversion and the shared resize in bands of rows on the session's threads: every
 * row is computed alone, so the bytes do not depend on the split. */
typedef struct {
    const mo_frame *frame;
    uint8_t *rgb;
    const mo_image *img;
    const float *mean, *std;
    mo_tensor *t;
    int rows;
} band_job;

static void convert_band(void *ctx, size_t b, size_t e)
{
    const band_job *j = ctx;
    mo_frame_rgb_rows(j->frame, j->rgb, (ptrdiff_t)j->frame->width * 3, (int)b, (int)e);
}

static void resize_band(void *ctx, size_t b, size_t e)
{
    const band_job *j = ctx;
    /* arguments checked by the caller's whole-tensor check: cannot fail here */
    (void)mo_preprocess_resize_rows(j->img, j->mean, j->std, j->t, (int)b, (int)e);
}

/* One MO_EXEC_CALL op over `rows` rows on the session's executor (not profiled: the
 * pipeline times these steps itself). */
static void run_bands(mo_session *s, void (*fn)(void *, size_t, size_t), band_job *j,
                      double macs)
{
    const mo_exec_op op = {.kind = MO_EXEC_CALL, .fn = fn, .ctx = j, .units = (size_t)j->rows,
                           .align = 1, .macs = macs};
    mo_exec_run(mo_session_exec(s), NULL, "pipeline", &op, 1);
}

/* The caller's result struct; one of older headers (a smaller size) gets the run into a
 * full one, then the fields it has copied back (the settings rule of common.h). */
int mo_pipeline_run(mo_pipeline_session *ps, const mo_frame *frame, mo_pipeline_result *out)
{
    validate_input_or_ret(ps && frame && out, MO_EINVAL);
    if (out->size == sizeof(*out))
        return run(ps, frame, out);
    static const size_t ends[] = {
        MO_FIELD_END(mo_pipeline_result, num_top),
        MO_FIELD_END(mo_pipeline_result, top),
        MO_FIELD_END(mo_pipeline_result, detections),
        MO_FIELD_END(mo_pipeline_result, det_capacity),
        MO_FIELD_END(mo_pipeline_result, num_detections),
        MO_FIELD_END(mo_pipeline_result, labels),
        MO_FIELD_END(mo_pipeline_result, label_stride),
        MO_FIELD_END(mo_pipeline_result, has_labels),
        MO_FIELD_END(mo_pipeline_result, ms_convert),
        MO_FIELD_END(mo_pipeline_result, ms_preprocess),
        MO_FIELD_END(mo_pipeline_result, ms_backbone),
        MO_FIELD_END(mo_pipeline_result, ms_heads),
        MO_FIELD_END(mo_pipeline_result, ms_total)};
    mo_pipeline_result full = {.size = sizeof(full)};
    int r = MO_SETTINGS_TAKE(&full, out, ends, "mo_pipeline_run", "mo_pipeline_result");
    if (r || (r = run(ps, frame, &full)))
        return r;
    size_t covered = 0; /* the fields that end within the caller's size */
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]) && ends[i] <= out->size; i++)
        covered = ends[i];
    memcpy((char *)out + sizeof(size_t), (const char *)&full + sizeof(size_t),
           covered - sizeof(size_t));
    return MO_OK;
}

static int run(mo_pipeline_session *ps, const mo_frame *frame, mo_pipeline_result *out)
{
    if (out->det_capacity < 0 || (out->labels && out->label_stride < frame->width))
        return mo_fail(MO_EINVAL, "mo_pipeline_run: negative det_capacity or label_stride "
                                  "below the frame width");
    const mo_pipeline *p = ps->p;
    mo_session *s = ps->s;
    const double t0 = now_ms();
    out->num_top = out->num_detections = out->has_labels = 0;
    out->ms_convert = out->ms_preprocess = out->ms_backbone = out->ms_heads = 0;

    /* 1. frame to RGB8, in a buffer that only grows; the frame checked before any of it */
    int r = mo_frame_check(frame, (ptrdiff_t)frame->width * 3, "mo_pipeline_run");
    if (r)
        return r;
    /* A packed RGB frame is read in place: a copy would double the memory of a large
     * picture (192 MiB more for 8192 x 8192). The preprocessing only reads it. */
    const int in_place = frame->format == MO_FRAME_RGB && frame->data[0] &&
                         frame->stride[0] == (ptrdiff_t)frame->width * 3;
    const size_t need = (size_t)frame->width * frame->height * 3;
    if (!in_place && need > ps->rgb_bytes) {
        uint8_t *b = realloc(ps->rgb, need);
        if (!b)
            return mo_fail(MO_ENOMEM, "mo_pipeline_run: out of memory for a %dx%d frame",
                           frame->width, frame->height);
        ps->rgb = b;
        ps->rgb_bytes = need;
    }
    if (!in_place) {
        band_job cj = {.frame = frame, .rgb = ps->rgb, .rows = frame->height};
        /* ~10 operations a pixel, in multiply-add units for the pool's threshold */
        run_bands(s, convert_band, &cj, 5.0 * need);
    }
    const mo_image img = {.data = in_place ? (uint8_t *)frame->data[0] : ps->rgb,
                          .w = frame->width, .h = frame->height};
    double t1 = now_ms();
    out->ms_convert = t1 - t0;

    /* The passes (plan_passes()), each one loop over its heads. */
    mo_features f;
    for (int k = 0; k < ps->npass; k++) {
        const pass_plan *pp = &ps->pass[k];
        t1 = now_ms();
        mo_tensor t = {.data = ps->shared_in, .w = p->shared_w, .h = p->shared_h};
        if (pp->own >= 0) {
            const head_slot *hs = &p->head[pp->own];
            t = (mo_tensor){.data = ps->own_in[pp->own]};
            r = hs->ops->prepare(hs->h, &img, p->mean, p->std, &t);
        } else {
            /* an empty band checks the arguments, then the bands fill the tensor */
            r = mo_preprocess_resize_rows(&img, p->mean, p->std, &t, 0, 0);
            if (!r) {
                band_job rj = {.img = &img, .mean = p->mean, .std = p->std, .t = &t,
                               .rows = t.h};
                run_bands(s, resize_band, &rj, 12.0 * (double)t.w * t.h * 3);
            }
        }
        if (r)
            return r;
        double t2 = now_ms();
        out->ms_preprocess += t2 - t1;
        /* the pass runs at its first (largest) output stride */
        int os = p->head[pp->idx[0]].needs.output_stride;
        if ((r = mo_backbone_run(s, &t, os, &f)))
            return r;
        double t3 = now_ms();
        out->ms_backbone += t3 - t2;
        for (int i = 0; i < pp->n; i++) {
            const head_slot *hs = &p->head[pp->idx[i]];
            if (hs->needs.output_stride != os) {
                /* only the dilated stages are recomputed, from the last shared level */
                os = hs->needs.output_stride;
                if ((r = mo_backbone_run_from(s, &f, os == 16 ? 2 : 1, os, &f)))
                    return r;
                const double t4 = now_ms();
                out->ms_backbone += t4 - t3;
                t3 = t4;
            }
            if (!hs->ops->wanted || hs->ops->wanted(out)) {
                mo_head_job job = {.s = s, .f = &f, .frame = &img, .set = &p->set, .out = out};
                if ((r = hs->ops->run(hs->h, &job)) || (r = hs->ops->results(hs->h, &job)))
                    return r;
            }
            const double t5 = now_ms();
            out->ms_heads += t5 - t3;
            t3 = t5;
        }
    }
    out->ms_total = now_ms() - t0;
    return MO_OK;
}
