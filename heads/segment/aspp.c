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

/* One layer of the head, as the threads see it: chunk i of n takes a band of feature rows
 * (channels, for the mean of the pooling branch). Every element gets the same operations
 * whatever the band, so the logits do not depend on the number of threads. */
enum seg_op { OP_MEAN, OP_B0, OP_RATE, OP_RELU, OP_PROJ, OP_HEAD, OP_CLS };

typedef struct seg_job {
    const mo_seg *seg;
    const mo_tensor *x;
    float *cat, *proj, *logits, *pooled, *pbias;
    const float *zeros;
    ptrdiff_t ldcat;
    int op, rate_i, clip, packed;
} seg_job;

static void seg_share(void *ctx, int i, int n)
{
    const seg_job *j = ctx;
    const mo_seg *seg = j->seg;
    const mo_tensor *x = j->x;
    const int h = x->h, w = x->w, cin = seg->cin, a = seg->a;
    mo_pw_acc_fn *const gemm = seg->dsp.pw_acc;
    size_t b, e;
    if (j->op == OP_MEAN) {
        /* global mean (in double: P can be large), channels [b, e) */
        mo_share((size_t)cin, i, n, 1, &b, &e);
        const double npix = (double)h * (double)w;
        /* blocks of channels, pixels in order within each: each channel's sum is the same
         * sequence of additions, reading rows of the map rather than one float per row */
        enum { CB = 64 };
        double acc[CB];
        for (int c0 = (int)b; c0 < (int)e; c0 += CB) {
            const int nc = (int)e - c0 < CB ? (int)e - c0 : CB;
            for (int c = 0; c < nc; c++)
                acc[c] = 0.0;
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    const float *r = x->data + (ptrdiff_t)y * x->row_stride +
                                     (ptrdiff_t)xx * cin + c0;
                    for (int c = 0; c < nc; c++)
                        acc[c] += r[c];
                }
            for (int c = 0; c < nc; c++)
                j->pooled[c0 + c] = (float)(acc[c] / npix);
        }
        return;
    }
    mo_share((size_t)h, i, n, 1, &b, &e);
    const int y0 = (int)b, y1 = (int)e;
    if (y1 <= y0)
        return;
    const size_t p0 = (size_t)y0 * (size_t)w, np = (size_t)(y1 - y0) * (size_t)w;
    switch (j->op) {
    case OP_B0: /* 1x1 branch */
        fill_rows(j->cat + (ptrdiff_t)p0 * j->ldcat, j->ldcat, np, seg->b0_b, a);
        if (j->packed)
            gemm(j->cat + (ptrdiff_t)p0 * j->ldcat, j->ldcat,
                 x->data + (ptrdiff_t)y0 * x->row_stride, cin, np, cin, a, seg->b0_w);
        else
            for (int y = y0; y < y1; y++)
                gemm(j->cat + (ptrdiff_t)y * w * j->ldcat, j->ldcat,
                     x->data + y * x->row_stride, cin, (size_t)w, cin, a, seg->b0_w);
        break;
    case OP_RATE: { /* dilated 3x3 branch rate_i, its bias; the ReLU is OP_RELU's */
        float *dst = j->cat + (ptrdiff_t)(j->rate_i + 1) * a;
        if (j->clip) {
            seg->dsp.conv3x3(dst, (ptrdiff_t)w * j->ldcat, j->ldcat, x->data, x->row_stride, h,
                             w, cin, a, 1, seg->rates[j->rate_i], seg->r_w[j->rate_i],
                             seg->r_b[j->rate_i], MO_ACT_NONE, y0, y1);
            break;
        }
        fill_rows(dst + (ptrdiff_t)p0 * j->ldcat, j->ldcat, np, seg->r_b[j->rate_i], a);
        seg_conv3x3_acc_rows(gemm, dst, j->ldcat, x->data, x->row_stride, h, w, cin, a,
                             seg->rates[j->rate_i], seg->r_w[j->rate_i], 0, j->zeros, y0, y1);
        break;
    }
    case OP_RELU:
        relu_rows(j->cat + (ptrdiff_t)p0 * j->ldcat, j->ldcat, np, (int)j->ldcat);
        break;
    case OP_PROJ: /* cat rows are packed */
        seg->dsp.pw(j->proj + p0 * (size_t)a, j->cat + p0 * (size_t)j->ldcat, np, (int)j->ldcat,
                    a, seg->proj_w, j->pbias, MO_ACT_RELU);
        break;
    case OP_HEAD: { /* 3x3 conv, into the (now free) concatenation buffer */
        float *hconv = j->cat + p0 * (size_t)seg->hc;
        if (j->clip) {
            seg->dsp.conv3x3(j->cat, (ptrdiff_t)w * seg->hc, seg->hc, j->proj, (ptrdiff_t)w * a,
                             h, w, a, seg->hc, 1, 1, seg->head_w, seg->head_b, MO_ACT_RELU, y0,
                             y1);
            break;
        }
        fill_rows(hconv, seg->hc, np, seg->head_b, seg->hc);
        seg_conv3x3_acc_rows(gemm, j->cat, seg->hc, j->proj, (ptrdiff_t)w * a, h, w, a, seg->hc,
                             1, seg->head_w, 0, j->zeros, y0, y1);
        relu_rows(hconv, seg->hc, np, seg->hc);
        break;
    }
    case OP_CLS:
        seg->dsp.pw(j->logits + p0 * (size_t)seg->k, j->cat + p0 * (size_t)seg->hc, np, seg->hc,
                    seg->k, seg->cls_w, seg->cls_b, MO_ACT_NONE);
        break;
    default:
        break;
    }
}

float *seg_forward(const mo_seg *seg, mo_session *s, const mo_tensor *x, float *ws, int clip)
{
    const int h = x->h, w = x->w, cin = seg->cin, a = seg->a;
    const size_t npix = (size_t)h * (size_t)w;
    const seg_layout l = seg_workspace_layout(seg, npix);
    float *zeros = ws + l.zeros;
    const ptrdiff_t ldcat = (ptrdiff_t)(seg->nr + 1) * a;
    seg_job job = {.seg = seg, .x = x, .cat = ws + l.cat, .proj = ws + l.proj,
                   .logits = ws + l.logits, .pooled = ws + l.pooled, .pbias = ws + l.pbias,
                   .zeros = zeros, .ldcat = ldcat, .clip = clip,
                   .packed = x->row_stride == (ptrdiff_t)w * cin};
    const size_t rows = (size_t)h;
    float *pvec = ws + l.pvec;

    memset(zeros, 0, sizeof(float) * (size_t)(cin > a ? cin : a));

    /* pooling branch: global mean, 1x1 + ReLU, projected */
    double t0 = mo_prof_begin(s);
    job.op = OP_MEAN;
    mo_session_parallel(s, seg_share, &job, (size_t)cin, (double)npix * cin);
    seg->dsp.gemv(pvec, seg->pool_w, seg->pool_b, job.pooled, a, cin, MO_ACT_RELU);
    seg->dsp.gemv(job.pbias, seg->projp_w, seg->proj_b, pvec, a, a, MO_ACT_NONE);
    if (t0)
        mo_prof_end(s, t0, "seg", "pool_gemv", 1, 1, a, (double)npix * cin +
                    2.0 * a * cin + 2.0 * a * a, "seg.aspp.pool");

    t0 = mo_prof_begin(s);
    job.op = OP_B0;
    mo_session_parallel(s, seg_share, &job, rows, (double)npix * cin * a);
    if (t0)
        mo_prof_end(s, t0, "seg", "pw", h, w, a, 2.0 * npix * cin * a, "seg.aspp.b0");

    /* dilated 3x3 branches */
    for (int i = 0; i < seg->nr; i++) {
        t0 = mo_prof_begin(s);
        const double macs = (double)seg_conv3x3_macs(h, w, cin, a, seg->rates[i],
                                                     clip ? SEG_TAPS_CLIP : SEG_TAPS_ALL);
        job.op = OP_RATE;
        job.rate_i = i;
        mo_session_parallel(s, seg_share, &job, rows, macs);
        if (t0)
            mo_prof_end(s, t0, "seg", "conv3x3_dil", h, w, a, 2.0 * macs, "seg.aspp.rate%d",
                        seg->rates[i]);
    }
    t0 = mo_prof_begin(s);
    job.op = OP_RELU;
    mo_session_parallel(s, seg_share, &job, rows, (double)npix * ldcat);
    if (t0)
        mo_prof_end(s, t0, "seg", "relu", h, w, (int)ldcat, 0.0, "seg.aspp.relu");

    /* projection (dropout: identity at inference) */
    t0 = mo_prof_begin(s);
    job.op = OP_PROJ;
    mo_session_parallel(s, seg_share, &job, rows, (double)npix * ldcat * a);
    if (t0)
        mo_prof_end(s, t0, "seg", "pw", h, w, a, 2.0 * npix * ldcat * a, "seg.proj");

    /* 3x3 conv */
    t0 = mo_prof_begin(s);
    const double hmacs = (double)seg_conv3x3_macs(h, w, a, seg->hc, 1,
                                                  clip ? SEG_TAPS_CLIP : SEG_TAPS_ALL);
    job.op = OP_HEAD;
    mo_session_parallel(s, seg_share, &job, rows, hmacs);
    if (t0)
        mo_prof_end(s, t0, "seg", "conv3x3", h, w, seg->hc, 2.0 * hmacs, "seg.head");

    /* classifier */
    t0 = mo_prof_begin(s);
    job.op = OP_CLS;
    mo_session_parallel(s, seg_share, &job, rows, (double)npix * seg->hc * seg->k);
    if (t0)
        mo_prof_end(s, t0, "seg", "pw", h, w, seg->k, 2.0 * npix * seg->hc * seg->k,
                    "seg.cls");
    return job.logits;
}
