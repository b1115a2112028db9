/*
 * DeepLabV3 segmentation head: loading (metadata, shapes and packing; tensors, BatchNorm
 * folding, pairing and model info through the loader toolkit, core/loader.c),
 * workspace sizing, the run, and the upsampling + argmax of the logits.
 * The compute of the head itself is in aspp.c, its kernels in seg_kernels.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/backbone.h"
#include "mo_internal/errors.h"
#include "mo_internal/exec.h"
#include "mo_internal/loader.h"
#include "mo_internal/meta.h"
#include "mo_internal/settings.h"
#include "mo/cpu.h"
#include "seg_internal.h"

#define PFX "seg."

void mo_seg_close(mo_seg **ps)
{
    if (!ps || !*ps)
        return;
    mo_seg *s = *ps;
    free(s->names); /* one block (mo_meta_names) */
    free(s->mem);
    free(s);
    *ps = NULL;
}

/* ------------------------------------------------------------- metadata */

/* Classes, rates, BatchNorm epsilon, output stride: the model info and the metadata table
 * (core/loader.c, core/meta.c). */
static int read_meta(mo_seg *s, const mo_file *f, const mo_model_info *info, double *eps)
{
    double v[MO_SEG_MAX_RATES];
    int ret;
    s->names = info->classes; /* taken: freed by mo_seg_close */
    s->k = info->num_classes;
    s->os = info->seg_output_stride;
    if (s->k > MO_SEG_MAX_CLASSES)
        return mo_fail(MO_EUNSUPPORTED, "seg.classes lists %d classes, at most %d are supported",
                       s->k, MO_SEG_MAX_CLASSES);
    if ((ret = mo_meta_list(f, "seg.rates", v, MO_SEG_MAX_RATES, &s->nr)) ||
        (ret = mo_file_meta_number(f, "seg.bn_eps", eps)))
        return ret;
    for (int i = 0; i < s->nr; i++)
        s->rates[i] = (int)v[i];
    return MO_OK;
}

/* --------------------------------------------------------------- tensors */

/* Pack the 9 taps of a folded [cout][cin][3][3] weight for ::mo_conv3x3_fn (the same
 * layout is one ::mo_pw_acc_fn product per tap, for the unclipped path). */
static void pack3x3(float *dst, const float *w, int cin, int cout)
{
    mo_conv3x3_pack(dst, w, cin, cout);
}

static size_t up16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Carve the weight block; with mem == NULL only count. */
static size_t carve(mo_seg *s, float *mem)
{
    size_t off = 0;
    const size_t cin = (size_t)s->cin, a = (size_t)s->a;
#define TAKE(ptr, n) do { if (mem) (ptr) = mem + off; off += up16(n); } while (0)
    TAKE(s->b0_w, mo_pw_packed_size(s->cin, s->a));
    TAKE(s->b0_b, a);
    for (int i = 0; i < s->nr; i++) {
        TAKE(s->r_w[i], 9 * mo_pw_packed_size(s->cin, s->a));
        TAKE(s->r_b[i], a);
    }
    TAKE(s->pool_w, a * cin);
    TAKE(s->pool_b, a);
    TAKE(s->proj_w, mo_pw_packed_size((s->nr + 1) * s->a, s->a));
    TAKE(s->proj_b, a);
    TAKE(s->projp_w, a * a);
    TAKE(s->head_w, 9 * mo_pw_packed_size(s->a, s->hc));
    TAKE(s->head_b, (size_t)s->hc);
    TAKE(s->cls_w, mo_pw_packed_size(s->hc, s->k));
    TAKE(s->cls_b, (size_t)s->k);
#undef TAKE
    return off;
}

static int load_weights(mo_seg *s, mo_loader *L)
{
    char wn[128], bn[128];
    const int nb = s->nr + 2; /* ASPP branches: 1x1, dilated, pooling */
    size_t wmax = (size_t)s->a * s->cin * 9;
    if ((size_t)s->a * nb * s->a > wmax)
        wmax = (size_t)s->a * nb * s->a;
    if ((size_t)s->hc * s->a * 9 > wmax)
        wmax = (size_t)s->hc * s->a * 9;
    if ((size_t)s->k * s->hc > wmax)
        wmax = (size_t)s->k * s->hc;
    const size_t total = carve(s, NULL);
    float *w = malloc(wmax * sizeof(float)); /* one conv, PyTorch layout, BatchNorm folded */
    s->mem = aligned_alloc(64, total * sizeof(float));
    int ret = MO_OK;
    if (!w || !s->mem) {
        ret = mo_fail(MO_ENOMEM, "segmentation head: out of memory");
        goto done;
    }
    carve(s, s->mem);

    /* ASPP 1x1 branch */
    if ((ret = mo_load_conv(L, PFX "0.convs.0.0", PFX "0.convs.0.1", s->a, s->cin, 1, w,
                            s->b0_b, NULL)))
        goto done;
    mo_pw_pack(s->b0_w, w, s->cin, s->a);
    /* dilated 3x3 branches */
    for (int i = 0; i < s->nr; i++) {
        snprintf(wn, sizeof(wn), PFX "0.convs.%d.0", i + 1);
        snprintf(bn, sizeof(bn), PFX "0.convs.%d.1", i + 1);
        if ((ret = mo_load_conv(L, wn, bn, s->a, s->cin, 3, w, s->r_b[i], NULL)))
            goto done;
        pack3x3(s->r_w[i], w, s->cin, s->a);
    }
    /* pooling branch (module 0 is the average pool) */
    snprintf(wn, sizeof(wn), PFX "0.convs.%d.1", nb - 1);
    snprintf(bn, sizeof(bn), PFX "0.convs.%d.2", nb - 1);
    if ((ret = mo_load_conv(L, wn, bn, s->a, s->cin, 1, w, s->pool_b, NULL)))
        goto done;
    memcpy(s->pool_w, w, sizeof(float) * (size_t)s->a * s->cin);
    /* projection: the first nr+1 branches packed, the pooling branch's columns plain */
    if ((ret = mo_load_conv(L, PFX "0.project.0", PFX "0.project.1", s->a, nb * s->a, 1, w,
                            s->proj_b, NULL)))
        goto done;
    mo_pw_pack_strided(s->proj_w, w, (s->nr + 1) * s->a, s->a, (ptrdiff_t)nb * s->a, 1);
    for (int j = 0; j < s->a; j++)
        memcpy(s->projp_w + (size_t)j * s->a, w + (size_t)j * nb * s->a + (size_t)(nb - 1) * s->a,
               sizeof(float) * (size_t)s->a);
    /* 3x3 conv + BN, classifier */
    if ((ret = mo_load_conv(L, PFX "1", PFX "2", s->hc, s->a, 3, w, s->head_b, NULL)))
        goto done;
    pack3x3(s->head_w, w, s->a, s->hc);
    if ((ret = mo_load_conv(L, PFX "4", NULL, s->k, s->hc, 1, w, s->cls_b, NULL)))
        goto done;
    mo_pw_pack(s->cls_w, w, s->hc, s->k);

    /* every seg. tensor must have been used */
    char hint[96];
    snprintf(hint, sizeof(hint), "a head with %d atrous rates (seg.rates) has no such tensor",
             s->nr);
    ret = mo_loader_check_all(L, MO_EFORMAT, hint);
done:
    free(w);
    return ret;
}

void mo_seg_default_settings_sized(mo_seg_settings *s, size_t size)
{
    const mo_seg_settings d = {.size = sizeof(d)};
    MO_SETTINGS_FILL(s, size, &d);
}

int mo_seg_open(mo_seg **out, const mo_file *f, const mo_backbone *bb, const mo_seg_settings *st)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(f && bb, MO_EINVAL);
    mo_seg_settings set;
    mo_seg_default_settings(&set);
    static const size_t ends[] = {MO_FIELD_END(mo_seg_settings, output_stride)};
    int ret = MO_SETTINGS_TAKE(&set, st, ends, "mo_seg_open", "mo_seg_settings");
    if (ret)
        return ret;
    if (set.output_stride != 0 && set.output_stride != 8 && set.output_stride != 16 &&
        set.output_stride != 32)
        return mo_fail(MO_EINVAL, "mo_seg_open: settings output_stride %d is not 0, 8, 16 "
                                  "or 32", set.output_stride);
    mo_model_info info;
    ret = mo_head_begin(f, "seg", "segmentation head", mo_backbone_variant(bb),
                        mo_backbone_digest(bb), &info);
    if (ret)
        return ret;
    mo_seg *s = calloc(1, sizeof(*s));
    if (!s) {
        mo_model_info_release(&info);
        return mo_fail(MO_ENOMEM, "out of memory");
    }
    mo_conv_dsp_init(&s->dsp, mo_get_cpu_flags()); /* the backbone's kernels (mo/cpu.h) */
    double eps;
    mo_loader L;
    mo_loader_init(&L, f, "segmentation head", PFX, 0.0);
    if ((ret = read_meta(s, f, &info, &eps)))
        goto fail;
    if (set.output_stride)
        s->os = set.output_stride;
    L.bn_eps = eps;

    /* sizes from the tensors, checked against each other and the backbone */
    int64_t b0[4], head[4], cls[4];
    if ((ret = mo_load_shape(&L, PFX "0.convs.0.0.weight", 4, 65536, b0)) ||
        (ret = mo_load_shape(&L, PFX "1.weight", 4, 65536, head)) ||
        (ret = mo_load_shape(&L, PFX "4.weight", 4, 65536, cls)))
        goto fail;
    s->a = (int)b0[0];
    s->cin = (int)b0[1];
    s->hc = (int)head[0];
    const int bbc = mo_backbone_channels(bb, MO_NUM_LEVELS - 1);
    if (s->cin != bbc) {
        ret = mo_fail(MO_EMISMATCH, "segmentation head reads %d channels, but MobileOne-%s "
                                    "stage4 has %d (tensor " PFX "0.convs.0.0.weight)",
                      s->cin, mo_backbone_variant(bb), bbc);
        goto fail;
    }
    if (cls[0] != s->k) {
        ret = mo_fail(MO_EMISMATCH, "segmentation head: the classifier " PFX "4.weight has %lld "
                                    "outputs but seg.classes lists %d classes",
                      (long long)cls[0], s->k);
        goto fail;
    }
    if ((ret = load_weights(s, &L)))
        goto fail;
    mo_loader_release(&L);
    *out = s;
    return MO_OK;
fail:
    mo_loader_release(&L);
    mo_seg_close(&s);
    return ret;
}

int mo_seg_get_info_sized(const mo_seg *seg, mo_seg_info *out, size_t size)
{
    validate_input_or_ret(seg && out, MO_EINVAL);
    mo_seg_info info = {.num_classes = seg->k, .in_channels = seg->cin,
                        .aspp_channels = seg->a, .head_channels = seg->hc,
                        .num_rates = seg->nr, .output_stride = seg->os};
    memcpy(info.rates, seg->rates, sizeof(info.rates));
    /* a caller built against older headers gets the fields its struct has */
    memcpy(out, &info, size < sizeof(info) ? size : sizeof(info));
    if (size > sizeof(info))
        memset((char *)out + sizeof(info), 0, size - sizeof(info));
    return MO_OK;
}

const char *mo_seg_class_name(const mo_seg *seg, int i)
{
    return seg && i >= 0 && i < seg->k ? seg->names[i] : NULL;
}

/* ------------------------------------------------------------------- run */

/* Feature map side of the backbone for an input side n: one ceil-halving per stride-2 conv
 * (the stem and the first block of each stage that is not dilated). */
static int feature_side(int n, int output_stride)
{
    for (int s = 1; s < output_stride; s *= 2)
        n = (n - 1) / 2 + 1;
    return n;
}

int mo_seg_workspace_size(const mo_seg *seg, int max_height, int max_width,
                          int min_output_stride, size_t *bytes)
{
    validate_input_or_ret(seg && bytes, MO_EINVAL);
    *bytes = 0;
    if (max_height < 1 || max_height > MO_MAX_INPUT_SIDE || max_width < 1 ||
        max_width > MO_MAX_INPUT_SIDE)
        return mo_fail(MO_EINVAL, "mo_seg_workspace_size: input %dx%d outside 1..%d", max_height,
                       max_width, MO_MAX_INPUT_SIDE);
    if (min_output_stride != 8 && min_output_stride != 16 && min_output_stride != 32)
        return mo_fail(MO_EINVAL, "mo_seg_workspace_size: output stride %d is not 8, 16 or 32",
                       min_output_stride);
    const size_t npix = (size_t)feature_side(max_height, min_output_stride) *
                        (size_t)feature_side(max_width, min_output_stride);
    const seg_layout l = seg_workspace_layout(seg, npix);
    if (!l.total)
        return mo_fail(MO_EINVAL, "mo_seg_workspace_size: %dx%d is too large", max_height,
                       max_width);
    *bytes = l.total * sizeof(float);
    return MO_OK;
}

int mo_seg_logits(const mo_seg *seg, mo_session *s, const mo_features *f, mo_tensor *logits)
{
    validate_input_or_ret(seg && s && f && logits, MO_EINVAL);
    const mo_tensor *x = &f->level[MO_NUM_LEVELS - 1];
    validate_input_or_ret(x->data, MO_EINVAL);
    if (x->c != seg->cin)
        return mo_fail(MO_EINVAL, "mo_seg_logits: features have %d channels, the head reads %d",
                       x->c, seg->cin);
    if (x->h < 1 || x->w < 1 || x->row_stride < (ptrdiff_t)x->w * x->c)
        return mo_fail(MO_EINVAL, "mo_seg_logits: bad feature map %dx%d (row stride %td)",
                       x->h, x->w, x->row_stride);
    size_t have = 0;
    float *ws = mo_session_workspace(s, &have);
    const seg_layout l = seg_workspace_layout(seg, (size_t)x->h * (size_t)x->w);
    if (!ws || !l.total || have / sizeof(float) < l.total)
        return mo_fail(MO_EINVAL, "mo_seg_logits: the session workspace has %zu bytes, the head "
                                  "needs %zu for %dx%d features (open the session with "
                                  "workspace_bytes from mo_seg_workspace_size())",
                       have, l.total * sizeof(float), x->h, x->w);
    float *out = seg_forward(seg, s, x, ws, 1);
    *logits = (mo_tensor){.data = out, .h = x->h, .w = x->w, .c = seg->k,
                          .row_stride = (ptrdiff_t)x->w * seg->k};
    return MO_OK;
}

/* mo_seg_upsample_argmax() (arguments checked) as one op (mo_internal/exec.h): the labels
 * from the kernel table's fused upsample + argmax, the probabilities from the upsampled
 * logits and a softmax in place (mo_internal/ops.h). Every output row is computed alone
 * and the kernels give the same bits on every CPU, so rows can be split between threads. */
static mo_exec_op upsample_op(const mo_tensor *logits, int out_h, int out_w, uint8_t *labels,
                              ptrdiff_t label_stride, float *probs)
{
    /* bilinear: 6 multiplies and 3 adds per class and output pixel (argmax not counted) */
    return (mo_exec_op){.kind = MO_EXEC_UPSAMPLE, .src = logits->data,
                        .src_rs = logits->row_stride, .ih = logits->h, .iw = logits->w,
                        .cin = logits->c, .oh = out_h, .ow = out_w, .labels = labels,
                        .labels_rs = label_stride, .probs = probs,
                        .name = "seg.upsample_argmax"};
}

/* The arguments of mo_seg_upsample_argmax(), checked. */
static int upsample_check(const mo_tensor *logits, int out_h, int out_w, const uint8_t *labels,
                          ptrdiff_t label_stride)
{
    validate_input_or_ret(logits && logits->data && labels, MO_EINVAL);
    const int k = logits->c, ih = logits->h, iw = logits->w;
    if (k < 1 || k > MO_SEG_MAX_CLASSES || ih < 1 || iw < 1 ||
        logits->row_stride < (ptrdiff_t)iw * k)
        return mo_fail(MO_EINVAL, "mo_seg_upsample_argmax: bad logits %dx%dx%d (row stride %td)",
                       ih, iw, k, logits->row_stride);
    if (out_h < 1 || out_w < 1 || out_h > MO_SEG_MAX_OUTPUT_SIDE ||
        out_w > MO_SEG_MAX_OUTPUT_SIDE)
        return mo_fail(MO_EINVAL, "mo_seg_upsample_argmax: output %dx%d outside 1..%d", out_h,
                       out_w, MO_SEG_MAX_OUTPUT_SIDE);
    if (label_stride < out_w)
        return mo_fail(MO_EINVAL, "mo_seg_upsample_argmax: label stride %td < width %d",
                       label_stride, out_w);
    return MO_OK;
}

int mo_seg_upsample_argmax(const mo_tensor *logits, int out_h, int out_w, uint8_t *labels,
                           ptrdiff_t label_stride, float *probs)
{
    const int ret = upsample_check(logits, out_h, out_w, labels, label_stride);
    if (!ret) {
        mo_conv_dsp dsp; /* no head here: the kernels for this CPU (mo/cpu.h) */
        mo_conv_dsp_init(&dsp, mo_get_cpu_flags());
        const mo_exec_op op = upsample_op(logits, out_h, out_w, labels, label_stride, probs);
        mo_exec_run(NULL, &dsp, "seg", &op, 1); /* no session: on the caller */
    }
    return ret;
}

int mo_seg_run(const mo_seg *seg, mo_session *s, const mo_features *f, int out_h, int out_w,
               uint8_t *labels, ptrdiff_t label_stride, float *probs)
{
    mo_tensor logits;
    int ret = mo_seg_logits(seg, s, f, &logits);
    if (ret)
        return ret;
    ret = upsample_check(&logits, out_h, out_w, labels, label_stride);
    if (!ret) { /* output rows on the session's pool */
        const mo_exec_op op = upsample_op(&logits, out_h, out_w, labels, label_stride, probs);
        mo_exec_run(mo_session_exec(s), &seg->dsp, "seg", &op, 1);
    }
    return ret;
}
