/*
 * The DeepLabV3 head at feature resolution: ASPP, the 3x3 conv, the classifier
 * (REFERENCE.md section 3, torchvision's DeepLabHead). BatchNorm is already folded into
 * every conv (segment.c), so each layer is "bias, accumulate the conv, ReLU".
 *
 * Data flow in the session workspace (NHWC, P = h * w feature pixels):
 *   x (features, P x cin)
 *   -> cat[:, 0:a]            1x1 branch
 *   -> cat[:, (1+i)a:(2+i)a]  dilated 3x3 branch i (rate r_i), tap by tap
 *   -> pooled (cin) -> pvec (a) -> pbias (a): the pooling branch
 *   -> proj (P x a)           1x1 projection of cat, bias pbias
 *   -> cat (P x hc)           3x3 conv, dilation 1
 *   -> logits (P x k)         1x1 classifier
 *
 * The pooling branch is a 1x1 map; bilinear upsampling of a 1x1 map to h x w gives the
 * same vector at every pixel (torch computes v * (1 - l) + v * l, equal up to 1 ulp).
 * Its share of the projection, W_proj[:, (nr+1)a:(nr+2)a] * pvec, is therefore one
 * vector per image, added to the projection bias instead of stored P times.
 */
#include "seg_internal.h"

#include <string.h>

#include "mo_internal/backbone.h"
#include "mo_internal/exec.h"

static size_t up16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* a * b, or 0 on overflow (every real size here is > 0) */
static size_t mul(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? 0 : a * b;
}

seg_layout seg_workspace_layout(const mo_seg *seg, size_t npix)
{
    seg_layout l = {0};
    const size_t catc = (size_t)(seg->nr + 1) * (size_t)seg->a;
    const size_t cat = mul(npix, catc > (size_t)seg->hc ? catc : (size_t)seg->hc);
    const size_t proj = mul(npix, (size_t)seg->a), logits = mul(npix, (size_t)seg->k);
    if (!cat || !proj || !logits || cat > SIZE_MAX / 8 || proj > SIZE_MAX / 8 ||
        logits > SIZE_MAX / 8)
        return l;
    size_t off = 0;
    l.cat = off;
    off += up16(cat);
    l.proj = off;
    off += up16(proj);
    l.logits = off;
    off += up16(logits);
    l.pooled = off;
    off += up16((size_t)seg->cin);
    l.pvec = off;
    off += up16((size_t)seg->a);
    l.pbias = off;
    off += up16((size_t)seg->a);
    l.zeros = off;
    off += up16((size_t)(seg->cin > seg->a ? seg->cin : seg->a));
    l.total = off > SIZE_MAX / sizeof(float) ? 0 : off;
    return l;
}

/* The unclipped dense 3x3 convs (clip = 0, the tests' path): rows [y0, y1) of dst (stride
 * ldd floats per pixel) = bias, then one ::mo_pw_acc_fn product per tap over zero padding,
 * then the activation; a MO_EXEC_CALL op of the executor. */
typedef struct unclipped {
    const mo_seg *seg;
    float *dst;
    ptrdiff_t ldd, src_rs;
    const float *src, *w, *b, *zeros;
    int h, width, cin, cout, rate, act;
} unclipped;

static void unclipped_rows(void *ctx, size_t b, size_t e)
{
    const unclipped *u = ctx;
    for (size_t y = b; y < e; y++)
        for (int x = 0; x < u->width; x++)
            memcpy(u->dst + ((ptrdiff_t)y * u->width + x) * u->ldd, u->b,
                   (size_t)u->cout * sizeof(float));
    seg_conv3x3_acc_rows(u->seg->dsp.pw_acc, u->dst, u->ldd, u->src, u->src_rs, u->h, u->width,
                         u->cin, u->cout, u->rate, u->w, 0, u->zeros, (int)b, (int)e);
    if (u->act)
        for (size_t y = b; y < e; y++)
            for (int x = 0; x < u->width; x++) {
                float *r = u->dst + ((ptrdiff_t)y * u->width + x) * u->ldd;
                for (int j = 0; j < u->cout; j++)
                    r[j] = r[j] > 0.0f ? r[j] : 0.0f;
            }
}

/* A dense 3x3 conv of the head as an op: the kernel table's (clip) or unclipped_rows (u). */
static mo_exec_op conv3x3_op(const unclipped *u, int clip, double macs, const char *kind,
                             const char *name, int arg)
{
    if (clip)
        return (mo_exec_op){.kind = MO_EXEC_CONV3X3, .dst = u->dst,
                            .dst_rs = (ptrdiff_t)u->width * u->ldd, .dst_ps = u->ldd, .src = u->src,
                            .src_rs = u->src_rs, .ih = u->h, .iw = u->width, .cin = u->cin,
                            .cout = u->cout, .dil = u->rate, .w = u->w, .b = u->b, .act = u->act,
                            .prof_kind = kind, .flops = 2.0 * macs, .name = name, .arg = {arg}};
    return (mo_exec_op){.kind = MO_EXEC_CALL, .fn = unclipped_rows, .ctx = (void *)u,
                        .units = (size_t)u->h, .macs = macs, .prof_kind = kind,
                        .flops = 2.0 * macs, .prof_h = u->h, .prof_w = u->width,
                        .prof_c = u->cout, .name = name, .arg = {arg}};
}

/* The head as one array of ops on the executor (mo_internal/exec.h): split over the
 * session's pool, each recorded in its profile. */
float *seg_forward(const mo_seg *seg, mo_session *s, const mo_tensor *x, float *ws, int clip)
{
    const int h = x->h, w = x->w, cin = seg->cin, a = seg->a, hc = seg->hc, k = seg->k;
    const size_t npix = (size_t)h * (size_t)w;
    const seg_layout l = seg_workspace_layout(seg, npix);
    float *zeros = ws + l.zeros, *cat = ws + l.cat, *proj = ws + l.proj;
    float *logits = ws + l.logits, *pooled = ws + l.pooled, *pbias = ws + l.pbias;
    const ptrdiff_t ldcat = (ptrdiff_t)(seg->nr + 1) * a;
    const int mode = clip ? SEG_TAPS_CLIP : SEG_TAPS_ALL;
    memset(zeros, 0, sizeof(float) * (size_t)(cin > a ? cin : a));

    unclipped u[MO_SEG_MAX_RATES + 1];
    mo_exec_op ops[MO_SEG_MAX_RATES + 8];
    int n = 0;
    /* pooling branch: global mean, 1x1 + ReLU, projected: one record */
    ops[n++] = (mo_exec_op){.kind = MO_EXEC_MEAN, .dst = pooled, .src = x->data,
                            .src_rs = x->row_stride, .ih = h, .iw = w, .cin = cin,
                            .prof_kind = "pool_gemv", .prof_h = 1, .prof_w = 1, .prof_c = a,
                            .flops = (double)npix * cin + 2.0 * a * cin + 2.0 * a * a,
                            .name = "seg.aspp.pool"};
    ops[n++] = (mo_exec_op){.kind = MO_EXEC_GEMV, .dst = ws + l.pvec, .src = pooled, .cin = cin,
                            .cout = a, .w = seg->pool_w, .b = seg->pool_b, .act = MO_ACT_RELU};
    ops[n++] = (mo_exec_op){.kind = MO_EXEC_GEMV, .dst = pbias, .src = ws + l.pvec, .cin = a,
                            .cout = a, .w = seg->projp_w, .b = seg->proj_b};
    /* 1x1 branch into the concatenation, then the dilated 3x3 branches beside it */
    ops[n++] = (mo_exec_op){.kind = MO_EXEC_PW, .dst = cat, .dst_ps = ldcat, .src = x->data,
                            .src_rs = x->row_stride, .ih = h, .iw = w, .cin = cin, .cout = a,
                            .w = seg->b0_w, .b = seg->b0_b, .name = "seg.aspp.b0"};
    for (int i = 0; i < seg->nr; i++) {
        u[i] = (unclipped){seg, cat + (ptrdiff_t)(i + 1) * a, ldcat, x->row_stride, x->data,
                           seg->r_w[i], seg->r_b[i], zeros, h, w, cin, a, seg->rates[i],
                           MO_ACT_NONE};
        ops[n++] = conv3x3_op(&u[i], clip,
                              (double)seg_conv3x3_macs(h, w, cin, a, seg->rates[i], mode),
                              "conv3x3_dil", "seg.aspp.rate%d", seg->rates[i]);
    }
    ops[n++] = (mo_exec_op){.kind = MO_EXEC_ACT, .dst = cat, .ih = h, .iw = w, .cout = (int)ldcat,
                            .act = MO_ACT_RELU, .name = "seg.aspp.relu"};
    /* projection (dropout: identity at inference), its bias with the pooling branch */
    ops[n++] = (mo_exec_op){.kind = MO_EXEC_PW, .dst = proj, .src = cat, .ih = h, .iw = w,
                            .cin = (int)ldcat, .cout = a, .w = seg->proj_w, .b = pbias,
                            .act = MO_ACT_RELU, .name = "seg.proj"};
    /* 3x3 conv into the (now free) concatenation buffer, then the classifier */
    u[seg->nr] = (unclipped){seg, cat, hc, (ptrdiff_t)w * a, proj, seg->head_w, seg->head_b,
                             zeros, h, w, a, hc, 1, MO_ACT_RELU};
    ops[n++] = conv3x3_op(&u[seg->nr], clip, (double)seg_conv3x3_macs(h, w, a, hc, 1, mode),
                          "conv3x3", "seg.head", 0);
    ops[n++] = (mo_exec_op){.kind = MO_EXEC_PW, .dst = logits, .src = cat, .ih = h, .iw = w,
                            .cin = hc, .cout = k, .w = seg->cls_w, .b = seg->cls_b,
                            .name = "seg.cls"};
    mo_exec_run(mo_session_exec(s), &seg->dsp, "seg", ops, n);
    return logits;
}
