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

/* Every row of an m x n block (rows ld floats apart) set to bias. */
static void fill_rows(float *dst, ptrdiff_t ld, size_t m, const float *bias, int n)
{
    for (size_t i = 0; i < m; i++)
        memcpy(dst + (ptrdiff_t)i * ld, bias, (size_t)n * sizeof(float));
}

static void relu_rows(float *dst, ptrdiff_t ld, size_t m, int n)
{
    for (size_t i = 0; i < m; i++) {
        float *restrict r = dst + (ptrdiff_t)i * ld;
        for (int j = 0; j < n; j++)
            r[j] = r[j] > 0.0f ? r[j] : 0.0f;
    }
}

/* y = relu?(b + W x) for a plain [n][k] matrix (the per-image vectors). */
static void matvec(float *y, const float *wm, const float *b, const float *x, int n, int k,
                   int relu)
{
    for (int j = 0; j < n; j++) {
        const float *restrict r = wm + (size_t)j * k;
        float s = 0.0f;
        for (int i = 0; i < k; i++)
            s += r[i] * x[i];
        s += b[j];
        y[j] = relu && s < 0.0f ? 0.0f : s;
    }
}

float *seg_forward(const mo_seg *seg, mo_session *s, const mo_tensor *x, float *ws, int clip)
{
    const int h = x->h, w = x->w, cin = seg->cin, a = seg->a;
    const size_t npix = (size_t)h * (size_t)w;
    const seg_layout l = seg_workspace_layout(seg, npix);
    float *cat = ws + l.cat, *logits = ws + l.logits;
    float *pooled = ws + l.pooled, *pvec = ws + l.pvec, *pbias = ws + l.pbias;
    float *zeros = ws + l.zeros;
    const ptrdiff_t ldcat = (ptrdiff_t)(seg->nr + 1) * a;
    const int packed = x->row_stride == (ptrdiff_t)w * cin;

    memset(zeros, 0, sizeof(float) * (size_t)(cin > a ? cin : a));

    /* pooling branch: global mean (in double: P can be large), 1x1 + ReLU, projected */
    double t0 = mo_prof_begin(s);
    for (int c = 0; c < cin; c++) {
        double s = 0.0;
        for (int y = 0; y < h; y++) {
            const float *r = x->data + (ptrdiff_t)y * x->row_stride + c;
            for (int xx = 0; xx < w; xx++)
                s += r[(ptrdiff_t)xx * cin];
        }
        pooled[c] = (float)(s / (double)npix);
    }
    matvec(pvec, seg->pool_w, seg->pool_b, pooled, a, cin, 1);
    matvec(pbias, seg->projp_w, seg->proj_b, pvec, a, a, 0);
    if (t0)
        mo_prof_end(s, t0, "seg", "pool_gemv", 1, 1, a, (double)npix * cin +
                    2.0 * a * cin + 2.0 * a * a, "seg.aspp.pool");

    t0 = mo_prof_begin(s);
    /* 1x1 branch */
    mo_pw_acc_fn *const gemm = seg->dsp.pw_acc;
    fill_rows(cat, ldcat, npix, seg->b0_b, a);
    if (packed)
        gemm(cat, ldcat, x->data, cin, npix, cin, a, seg->b0_w);
    else
        for (int y = 0; y < h; y++)
            gemm(cat + (ptrdiff_t)y * w * ldcat, ldcat, x->data + y * x->row_stride, cin,
                 (size_t)w, cin, a, seg->b0_w);
    if (t0)
        mo_prof_end(s, t0, "seg", "pw", h, w, a, 2.0 * npix * cin * a, "seg.aspp.b0");

    /* dilated 3x3 branches */
    for (int i = 0; i < seg->nr; i++) {
        t0 = mo_prof_begin(s);
        float *dst = cat + (ptrdiff_t)(i + 1) * a;
        fill_rows(dst, ldcat, npix, seg->r_b[i], a);
        seg_conv3x3_acc(gemm, dst, ldcat, x->data, x->row_stride, h, w, cin, a, seg->rates[i],
                        seg->r_w[i], clip, zeros);
        if (t0)
            mo_prof_end(s, t0, "seg", "conv3x3_dil", h, w, a, 2.0 * (double)seg_conv3x3_macs(
                        h, w, cin, a, seg->rates[i], clip ? SEG_TAPS_CLIP : SEG_TAPS_ALL),
                        "seg.aspp.rate%d", seg->rates[i]);
    }
    t0 = mo_prof_begin(s);
    relu_rows(cat, ldcat, npix, (int)ldcat);
    if (t0)
        mo_prof_end(s, t0, "seg", "relu", h, w, (int)ldcat, 0.0, "seg.aspp.relu");

    /* projection (dropout: identity at inference); cat rows are packed */
    float *proj = ws + l.proj;
    t0 = mo_prof_begin(s);
    seg->dsp.pw(proj, cat, npix, (int)ldcat, a, seg->proj_w, pbias, MO_ACT_RELU);
    if (t0)
        mo_prof_end(s, t0, "seg", "pw", h, w, a, 2.0 * npix * ldcat * a, "seg.proj");

    /* 3x3 conv, into the (now free) concatenation buffer */
    float *hconv = cat;
    t0 = mo_prof_begin(s);
    fill_rows(hconv, seg->hc, npix, seg->head_b, seg->hc);
    seg_conv3x3_acc(gemm, hconv, seg->hc, proj, (ptrdiff_t)w * a, h, w, a, seg->hc, 1,
                    seg->head_w, clip, zeros);
    relu_rows(hconv, seg->hc, npix, seg->hc);
    if (t0)
        mo_prof_end(s, t0, "seg", "conv3x3", h, w, seg->hc, 2.0 * (double)seg_conv3x3_macs(
                    h, w, a, seg->hc, 1, clip ? SEG_TAPS_CLIP : SEG_TAPS_ALL), "seg.head");

    /* classifier */
    t0 = mo_prof_begin(s);
    seg->dsp.pw(logits, hconv, npix, seg->hc, seg->k, seg->cls_w, seg->cls_b, MO_ACT_NONE);
    if (t0)
        mo_prof_end(s, t0, "seg", "pw", h, w, seg->k, 2.0 * npix * seg->hc * seg->k,
                    "seg.cls");
    return logits;
}
