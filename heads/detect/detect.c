/*
 * SSDLite detection head: loading (BatchNorm folded into the convolutions, every tensor
 * checked against the backbone and the file's own configuration), the extra blocks and
 * prediction heads on the backbone's kernels, and torchvision's post-processing.
 *
 * Kernels: the convolutions run on libmo_core's mo_conv_dsp (depthwise 3x3 and
 * pointwise GEMM over NHWC, with a ReLU6 activation mode), reached through its exported
 * internal header mo_internal/conv.h (core/dsp), so any SIMD kernel added there serves the head
 * too.
 *
 * Memory: the model holds packed weights and the default boxes; a run uses only the
 * session workspace, laid out by ws_layout() (offsets depend on the model and the
 * open-time topk_candidates only).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/backbone.h"
#include "mo_internal/conv.h"
#include "mo_internal/errors.h"
#include "mo_internal/exec.h"
#include "mo_internal/settings.h"
#include "mo_internal/loader.h"
#include "mo_internal/meta.h"
#include "mo/cpu.h"
#include "detect_internal.h"

/* Backbone feature levels the head taps: stage3 (/16) and stage4 (/32). */
#define TAP_FIRST 2
#define NUM_TAPS 2
#define MAX_EXTRAS (MO_DET_MAX_LEVELS - NUM_TAPS)

/* One convolution with its bias, BatchNorm folded in, weights packed for the kernels. */
typedef struct det_conv {
    int cin, cout;
    int depthwise; /* 3x3 depthwise (cin == cout), else 1x1 */
    int stride;
    int act;       /* enum mo_act */
    float *w;      /* mo_dw_pack / mo_pw_pack layout */
    float *b;      /* cout */
} det_conv;

typedef struct det_extra {
    det_conv conv[3]; /* 1x1 to mid, dw 3x3 stride 2 (neck: 1), 1x1 to out */
} det_extra;

typedef struct det_level {
    int c, h, w;      /* feature map */
    int a;            /* default boxes per location */
    int first;        /* index of its first default box */
    det_conv cls_dw, cls_pw, reg_dw, reg_pw;
} det_level;

struct mo_det {
    int k;                 /* classes, background included */
    char **names;
    int *category_ids;     /* k - 1 dataset ids of classes 1.., or NULL: id = class index */
    int in_w, in_h;
    float mean[3], std[3];
    int num_levels, num_extras;
    det_level level[MO_DET_MAX_LEVELS];
    int neck_mid[NUM_TAPS];  /* det.neck_channels: 0 = the tap goes to the head as it is */
    det_extra neck[NUM_TAPS];
    det_extra extra[MAX_EXTRAS];
    mo_anchor_config acfg;
    int n;                 /* default boxes */
    float *anchors;        /* n x 4 */
    float box_weights[4];
    float box_clip;
    double bn_eps;
    mo_det_settings set;   /* defaults for runs; set.topk_candidates sizes the workspace */
    mo_conv_dsp dsp;
};

/* ------------------------------------------------------------------ settings */

MO_API void mo_det_default_settings_sized(mo_det_settings *s, size_t size)
{
    const mo_det_settings d = {.size = sizeof(d), .score_thresh = 0.001, .topk_candidates = 300,
                               .nms_thresh = 0.55, .detections_per_img = 300};
    MO_SETTINGS_FILL(s, size, &d);
}

/* The caller's settings over *s (defaults, or the open-time settings), then checked. */
static int check_settings(mo_det_settings *s, const mo_det_settings *caller, const char *fn)
{
    static const size_t ends[] = {
        MO_FIELD_END(mo_det_settings, score_thresh),
        MO_FIELD_END(mo_det_settings, topk_candidates),
        MO_FIELD_END(mo_det_settings, nms_thresh),
        MO_FIELD_END(mo_det_settings, detections_per_img),
        MO_FIELD_END(mo_det_settings, class_agnostic),
        MO_FIELD_END(mo_det_settings, soft_nms_sigma),
        MO_FIELD_END(mo_det_settings, max_classes_per_box)};
    int r = MO_SETTINGS_TAKE(s, caller, ends, fn, "mo_det_settings");
    if (r)
        return r;
    if (!isfinite(s->score_thresh))
        return mo_fail(MO_EINVAL, "%s: score_thresh is not a number", fn);
    if (!isfinite(s->nms_thresh))
        return mo_fail(MO_EINVAL, "%s: nms_thresh is not a number", fn);
    if (s->topk_candidates < 1)
        return mo_fail(MO_EINVAL, "%s: topk_candidates %d < 1", fn, s->topk_candidates);
    if (s->detections_per_img < 1)
        return mo_fail(MO_EINVAL, "%s: detections_per_img %d < 1", fn, s->detections_per_img);
    if (!(s->soft_nms_sigma >= 0.0) || !isfinite(s->soft_nms_sigma))
        return mo_fail(MO_EINVAL, "%s: soft_nms_sigma %g (0 = hard NMS, > 0 = Gaussian sigma)",
                       fn, s->soft_nms_sigma);
    if (s->max_classes_per_box < 0)
        return mo_fail(MO_EINVAL, "%s: max_classes_per_box %d < 0", fn, s->max_classes_per_box);
    return MO_OK;
}

/* ------------------------------------------------------------------ metadata */

/* Every field is read and range-checked by the shared table (core/meta.c); what is
 * left here is how the fields fit together and with the backbone. */
static int read_names(mo_det *d, const mo_file *f, mo_model_info *info)
{
    d->names = info->classes; /* taken: freed by mo_det_close */
    d->k = info->num_classes;
    info->classes = NULL;
    int ret;
    double nc = d->k;
    if ((ret = mo_file_meta_number(f, "det.num_classes", &nc)))
        return ret;
    if (nc != d->k)
        return mo_fail(MO_EFORMAT, "metadata det.num_classes=%g but det.classes has %d names",
                       nc, d->k);
    int nid;
    if ((ret = mo_meta_ids(f, "det.category_ids", &d->category_ids, &nid)))
        return ret;
    if (d->category_ids && nid != d->k - 1)
        return mo_fail(MO_EFORMAT, "metadata det.category_ids lists %d ids, but det.classes has "
                       "%d classes after the background (one id each)", nid, d->k - 1);
    return MO_OK;
}

/* Everything in metadata: classes, input size, normalization, maps, anchors, decoding. */
static int read_config(mo_det *d, const mo_file *f, const mo_backbone *bb, int *extra_ch,
                       mo_model_info *info)
{
    int ret, n;
    double v[MO_DET_MAX_LEVELS + 1];
    if ((ret = read_names(d, f, info)))
        return ret;
    d->in_h = info->input_h; /* det.input_size */
    d->in_w = info->input_w;
    memcpy(d->mean, info->mean, sizeof(d->mean));
    memcpy(d->std, info->std, sizeof(d->std));

    /* extra blocks after stage4 */
    if ((ret = mo_meta_list(f, "det.extra_channels", v, MO_DET_MAX_LEVELS + 1, &n)))
        return ret;
    d->num_extras = n;
    for (int i = 0; i < n; i++)
        extra_ch[i] = (int)v[i];
    d->num_levels = NUM_TAPS + d->num_extras;
    /* optional stride-1 blocks on the taps (a frozen backbone's features need them) */
    if ((ret = mo_meta_list(f, "det.neck_channels", v, NUM_TAPS, &n)))
        return ret;
    for (int t = 0; t < NUM_TAPS; t++)
        d->neck_mid[t] = (int)v[t];

    /* default boxes */
    mo_anchor_config_default(&d->acfg);
    double r[MO_DET_MAX_LEVELS][MO_DET_MAX_RATIOS];
    int nr[MO_DET_MAX_LEVELS], nl;
    if ((ret = mo_meta_nested(f, "det.aspect_ratios", &r[0][0], MO_DET_MAX_LEVELS,
                              MO_DET_MAX_RATIOS, &nl, nr)))
        return ret;
    if (nl) { /* absent: SSDLite's [2, 3] on every map */
        d->acfg.num_levels = nl;
        memcpy(d->acfg.num_ratios, nr, sizeof(nr));
        memcpy(d->acfg.ratios, r, sizeof(r));
    }
    if (d->acfg.num_levels != d->num_levels)
        return mo_fail(MO_EMISMATCH, "det.aspect_ratios lists %d feature maps, but the head "
                       "has %d (backbone stage3 and stage4 + %d extra blocks, det.extra_channels)",
                       d->acfg.num_levels, d->num_levels, d->num_extras);
    double clip;
    if ((ret = mo_file_meta_number(f, "det.min_ratio", &d->acfg.min_ratio)) ||
        (ret = mo_file_meta_number(f, "det.max_ratio", &d->acfg.max_ratio)) ||
        (ret = mo_meta_list(f, "det.scales", d->acfg.scales, MO_DET_MAX_LEVELS + 1,
                            &d->acfg.num_scales)) ||
        (ret = mo_file_meta_number(f, "det.clip_anchors", &clip)))
        return ret;
    d->acfg.clip = clip != 0.0;
    if ((ret = mo_det_check_anchor_config(&d->acfg)))
        return mo_fail_prefix(MO_EFORMAT, "metadata det.scales / det.aspect_ratios");

    /* decoding and BatchNorm */
    double bclip;
    if ((ret = mo_file_meta_floats(f, "det.box_weights", d->box_weights, 4)) ||
        (ret = mo_file_meta_number(f, "det.box_clip", &bclip)) ||
        (ret = mo_file_meta_number(f, "det.bn_eps", &d->bn_eps)))
        return ret;
    d->box_clip = (float)bclip;

    /* feature maps: sizes follow the backbone's stride-2 convs (3x3, padding 1) */
    int h = d->in_h, w = d->in_w;
    for (int i = 0; i < 4; i++) { /* stem, stage1, stage2, stage3 */
        h = MO_CONV_OUT(h, 2);
        w = MO_CONV_OUT(w, 2);
    }
    for (int l = 0; l < d->num_levels; l++) {
        det_level *L = &d->level[l];
        L->h = h;
        L->w = w;
        L->c = l < NUM_TAPS ? mo_backbone_channels(bb, TAP_FIRST + l) : extra_ch[l - NUM_TAPS];
        L->a = mo_anchors_per_location(&d->acfg, l);
        h = MO_CONV_OUT(h, 2);
        w = MO_CONV_OUT(w, 2);
    }
    return MO_OK;
}

/* ------------------------------------------------------------------ tensors */

/*
 * Load conv `conv_name` (BatchNorm `bn_name` folded in, or its own bias when NULL) with the
 * loader toolkit (core/loader.c) and pack it with the kernel table's packers.
 */
static int load_conv(mo_loader *L, det_conv *c, const char *conv_name, const char *bn_name,
                     int cin, int cout, int depthwise, int stride, int act, const char *why)
{
    const int cin_g = depthwise ? 1 : cin, k = depthwise ? 3 : 1;
    const size_t nw = (size_t)cout * (size_t)cin_g * (size_t)(k * k);
    float *w = malloc(sizeof(float) * nw);
    c->cin = cin;
    c->cout = cout;
    c->depthwise = depthwise;
    c->stride = stride;
    c->act = act;
    c->b = malloc(sizeof(float) * (size_t)cout);
    c->w = malloc(sizeof(float) * (depthwise ? nw : mo_pw_packed_size(cin, cout)));
    int ret = MO_OK;
    if (!w || !c->b || !c->w)
        ret = mo_fail(MO_ENOMEM, "mo_det_open: out of memory");
    else if (!(ret = mo_load_conv(L, conv_name, bn_name, cout, cin_g, k, w, c->b, why))) {
        if (depthwise)
            mo_dw_pack(c->w, w, cout);
        else
            mo_pw_pack(c->w, w, cin, cout);
    }
    free(w);
    return ret;
}

static void conv_free(det_conv *c)
{
    free(c->w);
    free(c->b);
    c->w = c->b = NULL;
}

static const char *level_desc(const mo_det *d, int l, char *buf, size_t size)
{
    if (l < NUM_TAPS)
        snprintf(buf, size, "map %d = backbone stage%d, %d channels", l, TAP_FIRST + l + 1,
                 d->level[l].c);
    else
        snprintf(buf, size, "map %d = extra block %d, %d channels", l, l - NUM_TAPS,
                 d->level[l].c);
    return buf;
}

static int load_weights(mo_det *d, const mo_file *f, const mo_backbone *bb,
                        const int *extra_ch)
{
    mo_loader Ld;
    mo_loader_init(&Ld, f, "detection head", "det.", d->bn_eps);
    char conv[128], bn[128], why[256], lv[96];
    int ret = MO_OK;
    static const char *const what[3] = { "1x1", "depthwise 3x3", "1x1" };
    for (int t = 0; t < NUM_TAPS && !ret; t++) {
        const int c = d->level[t].c, mid = d->neck_mid[t];
        for (int j = 0; j < 3 && mid && !ret; j++) {
            const int ci = j == 0 ? c : mid, co = j == 2 ? c : mid;
            snprintf(why, sizeof(why), "neck block %d %s on backbone MobileOne-%s stage%d: "
                     "%d -> %d channels (det.neck_channels)", t, what[j],
                     mo_backbone_variant(bb), TAP_FIRST + t + 1, ci, co);
            snprintf(conv, sizeof(conv), "det.neck.%d.%d.0", t, j);
            snprintf(bn, sizeof(bn), "det.neck.%d.%d.1", t, j);
            ret = load_conv(&Ld, &d->neck[t].conv[j], conv, bn, ci, co, j == 1, 1,
                            MO_ACT_RELU6, why);
        }
    }
    for (int i = 0; i < d->num_extras && !ret; i++) {
        const int cin = i == 0 ? d->level[NUM_TAPS - 1].c : extra_ch[i - 1];
        const int mid = extra_ch[i] / 2, cout = extra_ch[i];
        for (int j = 0; j < 3 && !ret; j++) {
            const int ci = j == 0 ? cin : mid, co = j == 2 ? cout : mid;
            if (i == 0 && j == 0)
                snprintf(why, sizeof(why), "extra block 0 %s: backbone MobileOne-%s stage4 "
                         "has %d channels -> %d", what[j], mo_backbone_variant(bb), ci, co);
            else
                snprintf(why, sizeof(why), "extra block %d %s: %d -> %d channels "
                         "(det.extra_channels)", i, what[j], ci, co);
            snprintf(conv, sizeof(conv), "det.extra.%d.%d.0", i, j);
            snprintf(bn, sizeof(bn), "det.extra.%d.%d.1", i, j);
            ret = load_conv(&Ld, &d->extra[i].conv[j], conv, bn, ci, co, j == 1,
                            j == 1 ? 2 : 1, MO_ACT_RELU6, why);
        }
    }
    static const char *const head_name[2] = { "classification_head", "regression_head" };
    for (int l = 0; l < d->num_levels && !ret; l++) {
        det_level *L = &d->level[l];
        level_desc(d, l, lv, sizeof(lv));
        for (int hd = 0; hd < 2 && !ret; hd++) {
            const int cols = hd ? 4 : d->k;
            det_conv *dw = hd ? &L->reg_dw : &L->cls_dw, *pw = hd ? &L->reg_pw : &L->cls_pw;
            snprintf(conv, sizeof(conv), "det.head.%s.module_list.%d.0.0", head_name[hd], l);
            snprintf(bn, sizeof(bn), "det.head.%s.module_list.%d.0.1", head_name[hd], l);
            snprintf(why, sizeof(why), "depthwise 3x3 on %s", lv);
            if ((ret = load_conv(&Ld, dw, conv, bn, L->c, L->c, 1, 1, MO_ACT_RELU6,
                                 why)))
                break;
            snprintf(conv, sizeof(conv), "det.head.%s.module_list.%d.1", head_name[hd], l);
            if (hd)
                snprintf(why, sizeof(why), "%s; %d default boxes per location (det.aspect_ratios)"
                         " x 4 box codes", lv, L->a);
            else
                snprintf(why, sizeof(why), "%s; %d default boxes per location (det.aspect_ratios)"
                         " x %d classes (det.classes)", lv, L->a, d->k);
            ret = load_conv(&Ld, pw, conv, NULL, L->c, L->a * cols, 0, 1, MO_ACT_NONE,
                            why);
        }
    }
    /* any other det.* tensor means the file describes another head */
    if (!ret) {
        snprintf(why, sizeof(why), "the head has %d maps (backbone stage3, stage4 and %d extra "
                 "blocks from det.extra_channels; det.aspect_ratios), neck widths [%d,%d] "
                 "(det.neck_channels) and no such tensor", d->num_levels, d->num_extras,
                 d->neck_mid[0], d->neck_mid[1]);
        ret = mo_loader_check_all(&Ld, MO_EMISMATCH, why);
    }
    mo_loader_release(&Ld);
    return ret;
}

/* ------------------------------------------------------------------ open/close */

MO_API void mo_det_close(mo_det **pd)
{
    if (!pd || !*pd)
        return;
    mo_det *d = *pd;
    free(d->names); /* one block (mo_meta_names) */
    free(d->category_ids);
    for (int i = 0; i < MAX_EXTRAS; i++)
        for (int j = 0; j < 3; j++)
            conv_free(&d->extra[i].conv[j]);
    for (int t = 0; t < NUM_TAPS; t++)
        for (int j = 0; j < 3; j++)
            conv_free(&d->neck[t].conv[j]);
    for (int l = 0; l < MO_DET_MAX_LEVELS; l++) {
        conv_free(&d->level[l].cls_dw);
        conv_free(&d->level[l].cls_pw);
        conv_free(&d->level[l].reg_dw);
        conv_free(&d->level[l].reg_pw);
    }
    free(d->anchors);
    free(d);
    *pd = NULL;
}

MO_API int mo_det_open(mo_det **out, const mo_file *f, const mo_backbone *bb,
                       const mo_det_settings *s)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(f && bb, MO_EINVAL);
    mo_det_settings set;
    mo_det_default_settings(&set);
    mo_model_info info; /* classes, det.input_size, mo.mean, mo.std (core/loader.c) */
    int ret = check_settings(&set, s, "mo_det_open");
    if (ret || (ret = mo_head_begin(f, "det", "detection head", mo_backbone_variant(bb),
                                    mo_backbone_digest(bb), &info)))
        return ret;
    mo_det *d = calloc(1, sizeof(*d));
    if (!d) {
        mo_model_info_release(&info);
        return mo_fail(MO_ENOMEM, "mo_det_open: out of memory");
    }
    d->set = set;
    mo_conv_dsp_init(&d->dsp, mo_get_cpu_flags()); /* the SIMD kernels too (mo/cpu.h) */
    int extra_ch[MAX_EXTRAS];
    if ((ret = read_config(d, f, bb, extra_ch, &info)) ||
        (ret = load_weights(d, f, bb, extra_ch)))
        goto fail;

    int gh[MO_DET_MAX_LEVELS], gw[MO_DET_MAX_LEVELS], n = 0;
    for (int l = 0; l < d->num_levels; l++) {
        gh[l] = d->level[l].h;
        gw[l] = d->level[l].w;
        d->level[l].first = n;
        n += d->level[l].h * d->level[l].w * d->level[l].a;
    }
    d->n = n;
    /* what det.input_size asks for: backbone session, input, workspace and default boxes */
    if ((ret = mo_meta_check_memory(bb, d->in_h, d->in_w, 32,
                                    mo_det_workspace_size(d) + sizeof(float) * 4 * (size_t)n,
                                    "det.input_size")))
        goto fail;
    if (!(d->anchors = malloc(sizeof(float) * 4 * (size_t)n))) {
        ret = mo_fail(MO_ENOMEM, "mo_det_open: out of memory");
        goto fail;
    }
    if ((ret = mo_anchors_generate(&d->acfg, gh, gw, d->in_h, d->in_w, d->anchors, d->n, &n)))
        goto fail;
    *out = d;
    return MO_OK;
fail:
    mo_det_close(&d);
    return ret;
}

MO_API int mo_det_num_classes(const mo_det *d)
{
    return d ? d->k : 0;
}

MO_API const char *mo_det_class_name(const mo_det *d, int i)
{
    return d && i >= 0 && i < d->k ? d->names[i] : NULL;
}

MO_API int mo_det_category_id(const mo_det *d, int i)
{
    if (!d || i < 1 || i >= d->k)
        return -1;
    return d->category_ids ? d->category_ids[i - 1] : i;
}

MO_API void mo_det_input_size(const mo_det *d, int *width, int *height)
{
    if (width)
        *width = d ? d->in_w : 0;
    if (height)
        *height = d ? d->in_h : 0;
}

MO_API void mo_det_normalization(const mo_det *d, float mean[3], float std[3])
{
    for (int i = 0; i < 3 && d; i++) {
        if (mean)
            mean[i] = d->mean[i];
        if (std)
            std[i] = d->std[i];
    }
}

MO_API int mo_det_num_anchors(const mo_det *d)
{
    return d ? d->n : 0;
}

MO_API const float *mo_det_anchors(const mo_det *d)
{
    return d ? d->anchors : NULL;
}

/* ------------------------------------------------------------------ workspace */

/* Offsets (bytes) of every scratch array in the session workspace. */
typedef struct ws_layout {
    size_t mid, dwb, neck[NUM_TAPS], extra[MAX_EXTRAS]; /* blocks and head intermediates */
    size_t logits, reg;                      /* raw outputs */
    size_t probs, boxes, softmax, gather;    /* post-processing */
    size_t cand_box, cand_score, cand_label, keep, class_start, class_kept, class_state, sort;
    size_t total;
    int max_cand;
} ws_layout;

static size_t take(size_t *at, size_t bytes)
{
    const size_t o = *at;
    *at += (bytes + 63) & ~(size_t)63;
    return o;
}

static void ws_layout_of(const mo_det *d, ws_layout *L)
{
    memset(L, 0, sizeof(*L));
    size_t mid = 0, dwb = 0;
    for (int t = 0; t < NUM_TAPS; t++) {
        const size_t s = (size_t)d->level[t].h * d->level[t].w * d->neck_mid[t];
        mid = s > mid ? s : mid;
        dwb = s > dwb ? s : dwb;
    }
    int h = d->level[NUM_TAPS - 1].h, w = d->level[NUM_TAPS - 1].w;
    for (int i = 0; i < d->num_extras; i++) {
        const det_conv *c = d->extra[i].conv;
        const size_t hw = (size_t)h * w;
        const det_level *o = &d->level[NUM_TAPS + i];
        mid = hw * c[0].cout > mid ? hw * c[0].cout : mid;
        const size_t ohw = (size_t)o->h * o->w;
        dwb = ohw * c[1].cout > dwb ? ohw * c[1].cout : dwb;
        h = o->h;
        w = o->w;
    }
    for (int l = 0; l < d->num_levels; l++) {
        const size_t s = (size_t)d->level[l].h * d->level[l].w * d->level[l].c;
        dwb = s > dwb ? s : dwb;
    }
    const size_t n = (size_t)d->n, k = (size_t)d->k;
    const size_t topk = (size_t)d->set.topk_candidates < n ? (size_t)d->set.topk_candidates : n;
    const size_t cand = (k - 1) * topk;
    size_t at = 0;
    L->mid = take(&at, sizeof(float) * mid);
    L->dwb = take(&at, sizeof(float) * dwb);
    for (int t = 0; t < NUM_TAPS; t++)
        if (d->neck_mid[t])
            L->neck[t] = take(&at, sizeof(float) * (size_t)d->level[t].h * d->level[t].w *
                                   d->level[t].c);
    for (int i = 0; i < d->num_extras; i++) {
        const det_level *o = &d->level[NUM_TAPS + i];
        L->extra[i] = take(&at, sizeof(float) * (size_t)o->h * o->w * o->c);
    }
    L->logits = take(&at, sizeof(float) * n * k);
    L->reg = take(&at, sizeof(float) * n * 4);
    L->probs = take(&at, sizeof(float) * n * k);
    L->boxes = take(&at, sizeof(float) * n * 4);
    L->softmax = take(&at, sizeof(float) * k + sizeof(int) * k);
    L->gather = take(&at, sizeof(int) * n);
    L->cand_box = take(&at, sizeof(float) * 4 * cand);
    L->cand_score = take(&at, sizeof(float) * cand);
    L->cand_label = take(&at, sizeof(int) * cand);
    L->keep = take(&at, sizeof(int) * cand);
    L->class_start = take(&at, sizeof(int) * (k + 1));
    L->class_kept = take(&at, sizeof(int) * cand);
    L->class_state = take(&at, sizeof(int) * 3 * k);
    L->sort = take(&at, sizeof(int) * 3 * n);
    L->total = at;
    L->max_cand = (int)cand;
}

MO_API size_t mo_det_workspace_size(const mo_det *d)
{
    if (!d)
        return 0;
    ws_layout L;
    ws_layout_of(d, &L);
    return L.total;
}

static int workspace(const mo_det *d, mo_session *s, ws_layout *L, char **base, const char *fn)
{
    size_t bytes;
    *base = mo_session_workspace(s, &bytes);
    ws_layout_of(d, L);
    if (!*base || bytes < L->total)
        return mo_fail(MO_EINVAL, "%s: the session has a %zu-byte workspace, the detection head "
                       "needs %zu (mo_session_settings.workspace_bytes = mo_det_workspace_size())",
                       fn, *base ? bytes : 0, L->total);
    return MO_OK;
}

/* ------------------------------------------------------------------ forward */

/* Conv c of the head from src into packed dst, as an op of the executor (mo_internal/exec.h:
 * split over the session's pool, recorded in its profile as `name` with index i). */
static mo_exec_op conv_op(const det_conv *c, const mo_tensor *src, float *dst, const char *name,
                          int i)
{
    return (mo_exec_op){.kind = c->depthwise ? MO_EXEC_DW3X3 : MO_EXEC_PW, .dst = dst,
                        .src = src->data, .src_rs = src->row_stride, .ih = src->h, .iw = src->w,
                        .cin = c->cin, .cout = c->cout, .stride = c->stride, .act = c->act,
                        .w = c->w, .b = c->b, .name = name, .arg = {i}};
}

static mo_tensor view(float *data, int h, int w, int c)
{
    return (mo_tensor){ .data = data, .h = h, .w = w, .c = c, .row_stride = (ptrdiff_t)w * c };
}

/* The three ops of a neck or extra block b (1x1, depthwise 3x3, 1x1) from `in` to an
 * oh x ow map in `out`, through the scratch `mid` and `dwb`; names[j] holds a %d for i.
 * Returns the view of the block's output. */
static mo_tensor block_ops(mo_exec_op *ops, int *n, const det_extra *b, const mo_tensor *in,
                           int oh, int ow, float *mid, float *dwb, float *out,
                           const char *const names[3], int i)
{
    const det_conv *c = b->conv;
    const mo_tensor m1 = view(mid, in->h, in->w, c[0].cout);
    const mo_tensor m2 = view(dwb, oh, ow, c[1].cout);
    ops[(*n)++] = conv_op(&c[0], in, mid, names[0], i);
    ops[(*n)++] = conv_op(&c[1], &m1, dwb, names[1], i);
    ops[(*n)++] = conv_op(&c[2], &m2, out, names[2], i);
    return view(out, oh, ow, c[2].cout);
}

MO_API int mo_det_run_raw(const mo_det *d, mo_session *s, const mo_features *f,
                          mo_det_raw *out)
{
    validate_input_or_ret(d && s && f && out, MO_EINVAL);
    ws_layout L;
    char *ws;
    int ret = workspace(d, s, &L, &ws, "mo_det_run_raw");
    if (ret)
        return ret;
    mo_tensor maps[MO_DET_MAX_LEVELS];
    for (int t = 0; t < NUM_TAPS; t++) {
        const mo_tensor *m = &f->level[TAP_FIRST + t];
        const det_level *lv = &d->level[t];
        if (!m->data || m->c != lv->c || m->h != lv->h || m->w != lv->w ||
            m->row_stride < (ptrdiff_t)m->w * m->c)
            return mo_fail(MO_EINVAL, "mo_det_run_raw: backbone stage%d map is %dx%dx%d, the "
                           "detection head expects %dx%dx%d (run the backbone on a %dx%d input)",
                           TAP_FIRST + t + 1, m->w, m->h, m->c, lv->w, lv->h, lv->c, d->in_w,
                           d->in_h);
        if (f->stride[TAP_FIRST + t] != (t ? 32 : 16))
            return mo_fail(MO_EINVAL, "mo_det_run_raw: features of output stride %d; the "
                           "detection head needs output stride 32", f->stride[TAP_FIRST + t]);
        maps[t] = *m;
    }
    float *mid = (float *)(ws + L.mid), *dwb = (float *)(ws + L.dwb);
    mo_exec_op ops[3 * NUM_TAPS + 3 * MAX_EXTRAS + 4 * MO_DET_MAX_LEVELS];
    int n = 0;
    static const char *const neck_names[3] = { "det.neck%d.pw1", "det.neck%d.dw",
                                               "det.neck%d.pw2" };
    static const char *const extra_names[3] = { "det.extra%d.pw1", "det.extra%d.dw",
                                                "det.extra%d.pw2" };
    for (int t = 0; t < NUM_TAPS; t++)
        if (d->neck_mid[t]) {
            const mo_tensor in = maps[t];
            maps[t] = block_ops(ops, &n, &d->neck[t], &in, in.h, in.w, mid, dwb,
                                (float *)(ws + L.neck[t]), neck_names, t);
        }
    for (int i = 0; i < d->num_extras; i++) {
        const det_level *o = &d->level[NUM_TAPS + i];
        maps[NUM_TAPS + i] = block_ops(ops, &n, &d->extra[i], &maps[NUM_TAPS + i - 1], o->h,
                                       o->w, mid, dwb, (float *)(ws + L.extra[i]),
                                       extra_names, i);
    }
    float *logits = (float *)(ws + L.logits), *reg = (float *)(ws + L.reg);
    for (int l = 0; l < d->num_levels; l++) {
        const det_level *lv = &d->level[l];
        const mo_tensor t = view(dwb, lv->h, lv->w, lv->c);
        /* 1x1 output per pixel = a boxes x K (or 4) values: rows of the N x K output */
        ops[n++] = conv_op(&lv->cls_dw, &maps[l], dwb, "det.level%d.cls_dw", l);
        ops[n++] = conv_op(&lv->cls_pw, &t, logits + (size_t)lv->first * d->k,
                           "det.level%d.cls_pw", l);
        ops[n++] = conv_op(&lv->reg_dw, &maps[l], dwb, "det.level%d.reg_dw", l);
        ops[n++] = conv_op(&lv->reg_pw, &t, reg + (size_t)lv->first * 4, "det.level%d.reg_pw", l);
    }
    mo_exec_run(mo_session_exec(s), &d->dsp, "det", ops, n);
    *out = (mo_det_raw){ .num_anchors = d->n, .num_classes = d->k, .logits = logits,
                         .regression = reg };
    return MO_OK;
}

/* ------------------------------------------------------------------ post-processing */

/* Softmax of every default box keeping only its best mcls classes (the others -INFINITY,
 * below every threshold), class-major: one chunk (MO_EXEC_CALL, macs 0), as it shares the
 * row scratch. */
typedef struct topcls_job {
    const mo_conv_dsp *dsp;
    const float *logits;
    float *probs, *row;
    int *order;
    int N, K, mcls;
} topcls_job;

static void topcls_softmax(void *ctx, size_t b, size_t e)
{
    const topcls_job *j = ctx;
    const int K = j->K, N = j->N;
    for (size_t a = b; a < e; a++) {
        j->dsp->softmax(j->row, K, 1, j->logits + a * (size_t)K, K, 1, K);
        for (int c = 0; c < K - 1; c++)
            j->order[c] = c + 1;
        mo_det_sort_desc(j->order, K - 1, j->row, j->mcls);
        for (int i = j->mcls; i < K - 1; i++)
            j->row[j->order[i]] = -INFINITY; /* fails every threshold */
        for (int c = 0; c < K; c++)
            j->probs[(size_t)c * N + a] = j->row[c];
    }
}

MO_API int mo_det_postprocess(const mo_det *d, mo_session *s, const float *logits,
                              const float *regression, const mo_det_settings *settings,
                              int image_w, int image_h, mo_detection *out, int cap, int *n)
{
    validate_input_or_ret(n, MO_EINVAL);
    *n = 0;
    validate_input_or_ret(d && s && logits && regression && (out || cap == 0) && cap >= 0,
                          MO_EINVAL);
    if (image_w < 1 || image_h < 1)
        return mo_fail(MO_EINVAL, "mo_det_postprocess: image size %dx%d", image_w, image_h);
    mo_det_settings taken = d->set; /* an older caller's missing fields: the open-time ones */
    const mo_det_settings *set = &taken;
    int ret = check_settings(&taken, settings, "mo_det_postprocess");
    if (ret)
        return ret;
    if (set->topk_candidates > d->set.topk_candidates && d->set.topk_candidates < d->n)
        return mo_fail(MO_EINVAL, "mo_det_postprocess: topk_candidates %d above the %d the head "
                       "was opened with (it sizes the workspace)", set->topk_candidates,
                       d->set.topk_candidates);
    ws_layout L;
    char *ws;
    if ((ret = workspace(d, s, &L, &ws, "mo_det_postprocess")))
        return ret;
    const int N = d->n, K = d->k;
    float *probs = (float *)(ws + L.probs); /* K x N: class-major, for the per-class scan */
    float *boxes = (float *)(ws + L.boxes);
    float *row = (float *)(ws + L.softmax);
    int *order = (int *)(row + K);
    int *gather = (int *)(ws + L.gather);
    float *cbox = (float *)(ws + L.cand_box), *cscore = (float *)(ws + L.cand_score);
    int *clabel = (int *)(ws + L.cand_label), *keep = (int *)(ws + L.keep);
    int *class_start = (int *)(ws + L.class_start), *class_kept = (int *)(ws + L.class_kept);
    int *class_state = (int *)(ws + L.class_state), *sort_idx = (int *)(ws + L.sort);
    uint32_t *sort_keys = (uint32_t *)(sort_idx + N);

    /* softmax per default box (class-major: probs[c * N + a]), optionally only its best
     * max_classes_per_box classes; exp, sum and scale per value counted (max, sort not) */
    const int mcls = set->max_classes_per_box;
    topcls_job tj = {&d->dsp, logits, probs, row, order, N, K, mcls};
    const mo_exec_op sm = mcls > 0 && mcls < K - 1 ?
        (mo_exec_op){.kind = MO_EXEC_CALL, .fn = topcls_softmax, .ctx = &tj, .units = (size_t)N,
                     .prof_kind = "softmax", .flops = 3.0 * N * K, .prof_h = N, .prof_w = 1,
                     .prof_c = K, .name = "det.softmax"} :
        (mo_exec_op){.kind = MO_EXEC_SOFTMAX, .dst = probs, .dst_rs = 1, .dst_cs = N,
                     .src = logits, .ih = N, .cin = K, .name = "det.softmax"};
    mo_exec_run(mo_session_exec(s), &d->dsp, "det", &sm, 1);

    /* decode every box and clip it to the network input, as torchvision */
    mo_exec *x = mo_session_exec(s); /* its profile: the serial steps below */
    double t0 = mo_exec_prof_begin(x);
    mo_box_decode(regression, d->anchors, N, d->box_weights, d->box_clip, boxes);
    const float fw = (float)d->in_w, fh = (float)d->in_h;
    for (int a = 0; a < N; a++) {
        float *b = boxes + 4 * (size_t)a;
        for (int i = 0; i < 4; i++) {
            const float hi = i & 1 ? fh : fw;
            b[i] = b[i] < 0.0f ? 0.0f : b[i] > hi ? hi : b[i]; /* clamp keeps NaN */
        }
    }

    if (t0)
        mo_exec_prof_end(x, t0, "det", "decode", N, 1, 4, 0.0, "det.decode");

    /* per class: score > threshold (float32 compare, as torch), best topk, class order */
    t0 = mo_exec_prof_begin(x);
    const float thr = (float)set->score_thresh;
    const int topk = set->topk_candidates;
    int m = 0;
    class_start[0] = 0; /* class 0 (background) has no candidates */
    for (int c = 1; c < K; c++) {
        class_start[c] = m;
        const float *p = probs + (size_t)c * N;
        int g = 0;
        for (int a = 0; a < N; a++)
            if (p[a] > thr)
                gather[g++] = a;
        mo_det_sort_desc_nonneg(gather, g, p, sort_keys, sort_idx); /* probabilities: >= 0 */
        const int k = topk < g ? topk : g; /* topk >= 1 (check_settings) */
        for (int i = 0; i < k && m < L.max_cand; i++, m++) {
            memcpy(cbox + 4 * (size_t)m, boxes + 4 * (size_t)gather[i], 4 * sizeof(float));
            cscore[m] = p[gather[i]];
            clabel[m] = c;
        }
    }
    class_start[K] = m;

    if (t0)
        mo_exec_prof_end(x, t0, "det", "select", m, 1, 4, 0.0, "det.topk");

    t0 = mo_exec_prof_begin(x);
    int nk = 0;
    const int *labels = set->class_agnostic ? NULL : clabel;
    if (set->soft_nms_sigma > 0.0)
        ret = mo_soft_nms(cbox, cscore, labels, m, set->soft_nms_sigma, set->score_thresh,
                          set->detections_per_img, keep, &nk);
    else if (labels)
        nk = mo_det_nms_by_class(cbox, cscore, class_start, K, set->nms_thresh,
                                 set->detections_per_img, keep, class_kept, class_state);
    else
        ret = mo_nms(cbox, cscore, labels, m, set->nms_thresh, set->detections_per_img, keep,
                     &nk);
    if (ret)
        return ret;
    if (t0)
        mo_exec_prof_end(x, t0, "det", "nms", nk, 1, 4, 0.0, "det.nms");

    /* rescale x and y separately to the original image (float32 ratios, as torchvision) */
    const float rw = (float)image_w / fw, rh = (float)image_h / fh;
    const int cnt = nk < cap ? nk : cap;
    for (int i = 0; i < cnt; i++) {
        const int j = keep[i];
        const float *b = cbox + 4 * (size_t)j;
        out[i] = (mo_detection){ .x1 = b[0] * rw, .y1 = b[1] * rh, .x2 = b[2] * rw,
                                 .y2 = b[3] * rh, .score = cscore[j], .label = clabel[j] };
    }
    *n = cnt;
    return MO_OK;
}

MO_API int mo_det_run(const mo_det *d, mo_session *s, const mo_features *f,
                      const mo_det_settings *settings, int image_w, int image_h,
                      mo_detection *out, int cap, int *n)
{
    validate_input_or_ret(n, MO_EINVAL);
    *n = 0;
    mo_det_raw raw;
    int ret = mo_det_run_raw(d, s, f, &raw);
    if (ret)
        return ret;
    return mo_det_postprocess(d, s, raw.logits, raw.regression, settings, image_w, image_h,
                              out, cap, n);
}
