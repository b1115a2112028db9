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
#include "mo_internal/loader.h"
#include "mo_internal/meta.h"
#include "pipeline_internal.h"
#ifdef MO_PIPELINE_HAVE_SEG
#include "mo/segment.h"
#endif

struct mo_pipeline {
    mo_pipeline_settings set;
    mo_file *bb_file;
    mo_backbone *bb;
    mo_cls *cls;
    mo_det *det;
    int cls_resize, cls_crop;
    float mean[3], std[3];
    int shared_w, shared_h; /* input of the shared pass */
#ifdef MO_PIPELINE_HAVE_SEG
    mo_seg *seg;
    mo_seg_info seg_info;
#endif
    int seg_os; /* 0 without a segmentation head */
};

struct mo_pipeline_session {
    const mo_pipeline *p;
    mo_session *s;
    float *shared_in, *cls_in;
    uint8_t *rgb;
    size_t rgb_bytes;
};

void mo_pipeline_default_settings(mo_pipeline_settings *s)
{
    if (!s)
        return;
    *s = (mo_pipeline_settings){.size = sizeof(*s), .share_backbone = 1, .classify = 1,
                                .shared_width = 512, .shared_height = 512, .top_k = 5,
                                .threads = 1};
}

/* The crop and resize a file asks for (model info, core/loader.c); absent: keep them. */
static void cls_sides(mo_pipeline *p, const mo_file *f, const mo_model_info *info)
{
    if (mo_file_meta(f, "cls.resize"))
        p->cls_resize = info->cls_resize;
    if (mo_file_meta(f, "cls.crop"))
        p->cls_crop = info->cls_crop;
}

static int session_plan(const mo_pipeline *p, mo_session_settings *ss, size_t *inputs);

/* The pipeline's head detection: which head f holds (mo.contents), opened as that head. */
int mo_pipeline_add_head(mo_pipeline *p, const mo_file *f, const char *path)
{
    validate_input_or_ret(p && f && path, MO_EINVAL);
    mo_model_info info; /* which head f holds (mo.contents), its metadata validated */
    int r = mo_model_info_read(f, NULL, &info);
    if (r)
        return mo_fail_prefix(r, "%s", path);
    const int is_cls = !!(info.contents & MO_HOLDS_CLS), is_det = !!(info.contents & MO_HOLDS_DET),
              is_seg = !!(info.contents & MO_HOLDS_SEG);
    if (is_det + is_seg + is_cls != 1)
        r = mo_fail(MO_EINVAL, "%s: mo.contents names %s head kind (cls, det or seg)", path,
                    is_det + is_seg + is_cls ? "more than one" : "no");
    else if ((is_det && p->det) || (is_seg && p->seg_os) || (is_cls && p->cls))
        r = mo_fail(MO_EINVAL, "%s: a second %s head", path,
                    is_det ? "detection" : is_seg ? "segmentation" : "classification");
    else if (is_det)
        r = mo_det_open(&p->det, f, p->bb, NULL);
    else if (is_cls) {
        if (!(r = mo_cls_open(&p->cls, f, p->bb)))
            cls_sides(p, f, &info);
    } else {
#ifdef MO_PIPELINE_HAVE_SEG
        if (!(r = mo_seg_open(&p->seg, f, p->bb)) &&
            !(r = mo_seg_get_info(p->seg, &p->seg_info)))
            p->seg_os = p->set.seg_output_stride ? p->set.seg_output_stride
                                                 : p->seg_info.output_stride;
#else
        r = mo_fail(MO_EINVAL, "%s: segmentation head, but the SDK was built without "
                               "libmo_segment", path);
#endif
    }
    if (r && !strstr(mo_last_error(), path))
        mo_fail_prefix(r, "%s", path);
    return r;
}

void mo_pipeline_drop_heads(mo_pipeline *p)
{
    if (!p)
        return;
    mo_cls_close(&p->cls);
    mo_det_close(&p->det);
#ifdef MO_PIPELINE_HAVE_SEG
    mo_seg_close(&p->seg);
#endif
    p->seg_os = 0;
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

int mo_pipeline_open(mo_pipeline **out, const char *backbone_file,
                     const char *const *head_files, int n, const mo_pipeline_settings *s)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(backbone_file && n >= 0 && n <= 3 && (n == 0 || head_files),
                          MO_EINVAL);
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    if (s) {
        if (s->size != sizeof(*s))
            return mo_fail(MO_EINVAL, "mo_pipeline_open: settings.size %zu, expected %zu",
                           s->size, sizeof(*s));
        set = *s;
    }
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
    int r = mo_file_open(&p->bb_file, backbone_file);
    if (!r)
        r = mo_backbone_open(&p->bb, p->bb_file, NULL);
    mo_model_info info;
    if (!r && !(r = mo_model_info_read(p->bb_file, NULL, &info))) {
        memcpy(p->mean, info.mean, sizeof(p->mean));
        memcpy(p->std, info.std, sizeof(p->std));
        p->cls_resize = info.cls_resize;
        p->cls_crop = info.cls_crop;
    }
    if (!r && set.classify && mo_file_meta(p->bb_file, "cls.classes"))
        r = mo_cls_open(&p->cls, p->bb_file, p->bb);
    for (int i = 0; !r && i < n; i++)
        r = head_files[i] ? open_head(p, head_files[i]) : mo_fail(MO_EINVAL, "NULL head path");
    if (!set.classify)
        mo_cls_close(&p->cls);
    mo_file_close(&p->bb_file);
    if (r) {
        mo_pipeline_close(&p);
        return r;
    }
    p->shared_w = set.shared_width;
    p->shared_h = set.shared_height;
    if (p->det)
        mo_det_input_size(p->det, &p->shared_w, &p->shared_h);
    /* all the heads' sizes together (each head checked its own at open) */
    mo_session_settings ss;
    size_t inputs;
    if ((r = session_plan(p, &ss, &inputs)) ||
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
    mo_cls_close(&p->cls);
    mo_det_close(&p->det);
#ifdef MO_PIPELINE_HAVE_SEG
    mo_seg_close(&p->seg);
#endif
    mo_backbone_close(&p->bb);
    mo_file_close(&p->bb_file);
    free(p);
    *pp = NULL;
}

const mo_backbone *mo_pipeline_backbone(const mo_pipeline *p) { return p ? p->bb : NULL; }
const mo_cls *mo_pipeline_cls(const mo_pipeline *p) { return p ? p->cls : NULL; }
const mo_det *mo_pipeline_det(const mo_pipeline *p) { return p ? p->det : NULL; }

int mo_pipeline_seg_num_classes(const mo_pipeline *p)
{
#ifdef MO_PIPELINE_HAVE_SEG
    return p && p->seg ? p->seg_info.num_classes : 0;
#else
    (void)p;
    return 0;
#endif
}

const char *mo_pipeline_seg_class_name(const mo_pipeline *p, int i)
{
#ifdef MO_PIPELINE_HAVE_SEG
    return p && p->seg ? mo_seg_class_name(p->seg, i) : NULL;
#else
    (void)p;
    (void)i;
    return NULL;
#endif
}

static int max_i(int a, int b) { return a > b ? a : b; }

/* The session a pipeline needs, and the bytes of its float input tensors. */
static int session_plan(const mo_pipeline *p, mo_session_settings *ss, size_t *inputs)
{
    mo_session_default_settings(ss);
    const int shared = p->det || p->seg_os || (p->cls && p->set.classify_shared);
    ss->max_width = ss->max_height = 1;
    if (shared) {
        ss->max_width = p->shared_w;
        ss->max_height = p->shared_h;
    }
    if (p->cls && !p->set.classify_shared) {
        ss->max_width = max_i(ss->max_width, p->cls_crop);
        ss->max_height = max_i(ss->max_height, p->cls_crop);
    }
    ss->min_output_stride = p->seg_os ? p->seg_os : 32;
    ss->threads = p->set.threads;
    ss->workspace_bytes = p->det ? mo_det_workspace_size(p->det) : 0;
    if (p->cls && ss->workspace_bytes < sizeof(float) * (size_t)mo_cls_num_classes(p->cls))
        ss->workspace_bytes = sizeof(float) * (size_t)mo_cls_num_classes(p->cls); /* logits */
    int r = MO_OK;
#ifdef MO_PIPELINE_HAVE_SEG
    if (p->seg) {
        size_t b = 0;
        r = mo_seg_workspace_size(p->seg, p->shared_h, p->shared_w, p->seg_os, &b);
        if (b > ss->workspace_bytes)
            ss->workspace_bytes = b;
    }
#endif
    *inputs = 0;
    if (shared)
        *inputs += sizeof(float) * 3 * (size_t)p->shared_w * p->shared_h;
    if (p->cls && !p->set.classify_shared)
        *inputs += sizeof(float) * 3 * (size_t)p->cls_crop * p->cls_crop;
    return r;
}

int mo_pipeline_session_open(mo_pipeline_session **out, const mo_pipeline *p)
{
    validate_input_or_ret(out && p, MO_EINVAL);
    *out = NULL;
    mo_pipeline_session *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return mo_fail(MO_ENOMEM, "mo_pipeline_session_open: out of memory");
    ps->p = p;
    mo_session_settings ss;
    size_t inputs;
    const int shared = p->det || p->seg_os || (p->cls && p->set.classify_shared);
    int r = session_plan(p, &ss, &inputs);
    if (!r)
        r = mo_session_open(&ps->s, p->bb, &ss);
    if (!r && shared &&
        !(ps->shared_in = malloc(sizeof(float) * 3 * (size_t)p->shared_w * p->shared_h)))
        r = mo_fail(MO_ENOMEM, "mo_pipeline_session_open: out of memory");
    if (!r && p->cls && !p->set.classify_shared &&
        !(ps->cls_in = malloc(sizeof(float) * 3 * (size_t)p->cls_crop * p->cls_crop)))
        r = mo_fail(MO_ENOMEM, "mo_pipeline_session_open: out of memory");
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
    free((*s)->cls_in);
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

/* Classification of features: softmax and top-k into out. */
static int classify(const mo_pipeline *p, mo_session *s, const mo_features *f,
                    mo_pipeline_result *out)
{
    const int k = mo_cls_num_classes(p->cls);
    size_t bytes = 0;
    float *logits = mo_session_workspace(s, &bytes);
    if (!logits || bytes < sizeof(float) * (size_t)k)
        return mo_fail(MO_EINVAL, "pipeline: workspace too small for %d class logits", k);
    int r = mo_cls_run(p->cls, s, f, logits);
    if (r)
        return r;
    mo_softmax(logits, k);
    r = mo_topk(logits, k, p->set.top_k, out->top);
    if (r < 0)
        return r;
    out->num_top = r;
    return MO_OK;
}

int mo_pipeline_run(mo_pipeline_session *ps, const mo_frame *frame, mo_pipeline_result *out)
{
    validate_input_or_ret(ps && frame && out, MO_EINVAL);
    if (out->size < sizeof(*out))
        return mo_fail(MO_EINVAL, "mo_pipeline_run: result.size %zu < %zu", out->size,
                       sizeof(*out));
    if (out->det_capacity < 0 || (out->labels && out->label_stride < frame->width))
        return mo_fail(MO_EINVAL, "mo_pipeline_run: negative det_capacity or label_stride "
                                  "below the frame width");
    const mo_pipeline *p = ps->p;
    mo_session *s = ps->s;
    const double t0 = now_ms();
    out->num_top = out->num_detections = out->has_labels = 0;
    out->ms_convert = out->ms_preprocess = out->ms_backbone = out->ms_heads = 0;

    /* 1. frame to RGB8, in a buffer that only grows */
    if (frame->width < 1 || frame->height < 1 || frame->width > MO_MAX_INPUT_SIDE ||
        frame->height > MO_MAX_INPUT_SIDE)
        return mo_fail(MO_EINVAL, "mo_pipeline_run: frame %dx%d outside 1x1..%dx%d",
                       frame->width, frame->height, MO_MAX_INPUT_SIDE, MO_MAX_INPUT_SIDE);
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
    int r = in_place ? MO_OK : mo_frame_to_rgb(frame, ps->rgb, (ptrdiff_t)frame->width * 3);
    if (r)
        return r;
    const mo_image img = {.data = in_place ? (uint8_t *)frame->data[0] : ps->rgb,
                          .w = frame->width, .h = frame->height};
    double t1 = now_ms();
    out->ms_convert = t1 - t0;

    /* Passes: with sharing, one pass at the shared input for det, seg (and cls when
     * classify_shared); without, one per head. */
    const int share = p->set.share_backbone;
    const int want_det = p->det != NULL, want_seg = p->seg_os != 0;
    const int cls_shared = p->cls && p->set.classify_shared;
    mo_features f;
    for (int pass = 0; pass < 3; pass++) {
        /* pass 0: det (+ seg, + cls when shared and sharing); 1: seg alone; 2: cls_shared alone */
        int do_det = 0, do_seg = 0, do_cls = 0;
        if (share) {
            if (pass > 0)
                break;
            do_det = want_det, do_seg = want_seg, do_cls = cls_shared;
        } else {
            do_det = pass == 0 && want_det;
            do_seg = pass == 1 && want_seg;
            do_cls = pass == 2 && cls_shared;
        }
        if (!do_det && !do_seg && !do_cls)
            continue;
        t1 = now_ms();
        mo_tensor t = {.data = ps->shared_in, .w = p->shared_w, .h = p->shared_h};
        if ((r = mo_preprocess_resize(&img, p->mean, p->std, &t)))
            return r;
        double t2 = now_ms();
        out->ms_preprocess += t2 - t1;
        /* detection and classification want stride 32; segmentation alone runs at its
         * stride directly */
        const int os = do_det || do_cls ? 32 : p->seg_os;
        if ((r = mo_backbone_run(s, &t, os, &f)))
            return r;
        double t3 = now_ms();
        out->ms_backbone += t3 - t2;
        if (do_cls && (r = classify(p, s, &f, out)))
            return r;
        mo_detection none[1];
        if (do_det && (r = mo_det_run(p->det, s, &f, NULL, img.w, img.h,
                                      out->detections ? out->detections : none,
                                      out->detections ? out->det_capacity : 0,
                                      &out->num_detections)))
            return r;
        double t4 = now_ms();
        out->ms_heads += t4 - t3;
#ifdef MO_PIPELINE_HAVE_SEG
        if (do_seg) {
            if (os != p->seg_os) {
                /* only the dilated stages are recomputed, from the last shared level */
                const int keep = p->seg_os == 16 ? 2 : 1;
                if ((r = mo_backbone_run_from(s, &f, keep, p->seg_os, &f)))
                    return r;
            }
            double t5 = now_ms();
            out->ms_backbone += t5 - t4;
            if (out->labels) {
                if ((r = mo_seg_run(p->seg, s, &f, img.h, img.w, out->labels,
                                    out->label_stride, NULL)))
                    return r;
                out->has_labels = 1;
            }
            out->ms_heads += now_ms() - t5;
        }
#endif
    }

    /* exact classification: its own preprocessing and pass */
    if (p->cls && !cls_shared) {
        t1 = now_ms();
        mo_tensor t = {.data = ps->cls_in};
        if ((r = mo_preprocess_classify(&img, p->cls_resize, p->cls_crop, p->mean, p->std,
                                        &t)))
            return r;
        double t2 = now_ms();
        out->ms_preprocess += t2 - t1;
        if ((r = mo_backbone_run(s, &t, 32, &f)))
            return r;
        double t3 = now_ms();
        out->ms_backbone += t3 - t2;
        if ((r = classify(p, s, &f, out)))
            return r;
        out->ms_heads += now_ms() - t3;
    }
    out->ms_total = now_ms() - t0;
    return MO_OK;
}
