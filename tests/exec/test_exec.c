/*
 * The op executor (core/exec.c, mo_internal/exec.h): every op kind against a naive C loop
 * (float tolerance: the SIMD kernels fuse multiply-adds), and each output bit-identical
 * with no pool, a pool of 2 and a pool of 3 threads; sizes are chosen so that every op is
 * cut into several chunks. Also: the chunks of MO_EXEC_CALL cover every unit once on
 * aligned boundaries, the pool runs every chunk of a job once (in runs of consecutive
 * chunks), and the profile records (names, grouping, the dropped count).
 * The bit-identity cases run on this CPU's kernels and again on the C kernels.
 *
 * `test_exec threads` runs the bit-identity cases only (suite threads, ThreadSanitizer).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mo/cpu.h"
#include "mo_internal/exec.h"

static mo_conv_dsp dsp;
static unsigned cpu_flags; /* of the kernels under test: this CPU's, then 0 (C only) */
static mo_pool *pools[4];  /* [t]: t threads; [1] NULL */

static uint32_t rng = 12345;
static float frnd(void) /* [-1, 1) */
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static float *rnd(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frnd();
    return p;
}

/* One output of an op: its buffer and bytes. */
typedef struct out {
    void *p;
    size_t bytes;
} out;

static void run_with(const mo_exec_op *op, int threads)
{
    mo_exec x = {.pool = pools[threads]};
    mo_exec_run(&x, &dsp, "test", op, 1);
}

/* Run op with 1, 2 and 3 threads: every output the same bits. The 1-thread result stays
 * in the buffers for the caller's naive check. */
static void check_threads(const mo_exec_op *op, const out *o, int n)
{
    void *init[2], *ref[2]; /* contents before the run (restored before every run: some
                             * ops accumulate into their output), the 3-thread result */
    assert_true(n <= 2);
    assert_true(mo_exec_chunks(op) > 1); /* the pool has something to split */
    for (int i = 0; i < n; i++) {
        init[i] = malloc(o[i].bytes);
        ref[i] = malloc(o[i].bytes);
        assert_true(init[i] && ref[i]);
        memcpy(init[i], o[i].p, o[i].bytes);
    }
    for (int t = 3; t >= 1; t--) {
        for (int i = 0; i < n; i++)
            memcpy(o[i].p, init[i], o[i].bytes);
        run_with(op, t);
        for (int i = 0; i < n; i++) {
            if (t == 3)
                memcpy(ref[i], o[i].p, o[i].bytes);
            else if (memcmp(ref[i], o[i].p, o[i].bytes))
                fail_msg("op kind %d, output %d: %d threads differ from 3", op->kind, i, t);
        }
    }
    for (int i = 0; i < n; i++) {
        free(init[i]);
        free(ref[i]);
    }
}

static void near(float got, double want, double tol, const char *what, size_t i)
{
    if (!(fabs(got - want) <= tol * (1.0 + fabs(want))))
        fail_msg("%s[%zu] = %.9g, naive %.9g", what, i, got, want);
}

static double act(double v, int a)
{
    if (a >= MO_ACT_RELU && !(v > 0.0))
        v = 0.0;
    if (a == MO_ACT_RELU6 && v > 6.0)
        v = 6.0;
    return v;
}

/* ------------------------------------------------------------------ pointwise */

/* h x w pixels, src row stride srs (>= w cin), dst pixel stride dps (>= cout). */
static void pw_case(int h, int w, int cin, int cout, ptrdiff_t srs, ptrdiff_t dps, int a)
{
    float *src = rnd((size_t)h * srs), *wt = rnd((size_t)cout * cin), *b = rnd((size_t)cout);
    float *pk = calloc(mo_pw_packed_size(cin, cout), sizeof(float));
    const size_t nd = (size_t)h * w * dps;
    float *dst = rnd(nd); /* floats between pixels must stay */
    float *keep = malloc(sizeof(float) * nd);
    assert_true(pk && keep);
    memcpy(keep, dst, sizeof(float) * nd);
    mo_pw_pack(pk, wt, cin, cout);
    const mo_exec_op op = {.kind = MO_EXEC_PW, .dst = dst, .dst_ps = dps, .src = src,
                           .src_rs = srs, .ih = h, .iw = w, .cin = cin, .cout = cout, .w = pk,
                           .b = b, .act = a};
    out o = {dst, sizeof(float) * nd};
    check_threads(&op, &o, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int co = 0; co < dps; co++) {
                const size_t i = ((size_t)y * w + x) * dps + co;
                if (co >= cout) {
                    assert_true(dst[i] == keep[i]);
                    continue;
                }
                double s = b[co];
                for (int ci = 0; ci < cin; ci++)
                    s += (double)src[y * srs + (ptrdiff_t)x * cin + ci] * wt[co * cin + ci];
                near(dst[i], act(s, a), 1e-4, "pw", i);
            }
    free(src), free(wt), free(b), free(pk), free(dst), free(keep);
}

static void test_pw_pixels(void **st)
{
    (void)st;
    pw_case(20, 20, 32, 40, 20 * 32, 40, MO_ACT_RELU6); /* packed: pixel chunks */
}

static void test_pw_panels(void **st)
{
    (void)st;
    pw_case(4, 5, 256, 136, 5 * 256, 136, MO_ACT_RELU); /* few pixels: weight panels */
}

static void test_pw_strided(void **st)
{
    (void)st;
    pw_case(24, 16, 64, 32, 16 * 64 + 8, 40, MO_ACT_NONE); /* into strided pixels: rows */
}

/* ------------------------------------------------------------------ 3x3 convs */

static void test_dw3x3(void **st)
{
    (void)st;
    static const int cfg[2][3] = {{33, 2, 1}, {30, 1, 2}}; /* side, stride, dilation */
    for (int k = 0; k < 2; k++) {
        const int ih = cfg[k][0], iw = ih - 2, s = cfg[k][1], d = cfg[k][2], c = 128;
        const int oh = MO_CONV_OUT(ih, s), ow = MO_CONV_OUT(iw, s);
        float *src = rnd((size_t)ih * iw * c), *wt = rnd((size_t)c * 9), *b = rnd((size_t)c);
        float *pk = malloc(sizeof(float) * 9 * c), *dst = calloc((size_t)oh * ow * c, 4);
        assert_true(pk && dst);
        mo_dw_pack(pk, wt, c);
        const mo_exec_op op = {.kind = MO_EXEC_DW3X3, .dst = dst, .src = src, .ih = ih,
                               .iw = iw, .cout = c, .stride = s, .dil = d, .w = pk, .b = b,
                               .act = MO_ACT_RELU};
        out o = {dst, sizeof(float) * oh * ow * c};
        check_threads(&op, &o, 1);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ch = 0; ch < c; ch++) {
                    double acc = b[ch];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int yy = y * s + (ky - 1) * d, xx = x * s + (kx - 1) * d;
                            if (yy >= 0 && yy < ih && xx >= 0 && xx < iw)
                                acc += (double)src[((size_t)yy * iw + xx) * c + ch] *
                                       wt[ch * 9 + ky * 3 + kx];
                        }
                    const size_t i = ((size_t)y * ow + x) * c + ch;
                    near(dst[i], act(acc, MO_ACT_RELU), 1e-4, "dw3x3", i);
                }
        free(src), free(wt), free(b), free(pk), free(dst);
    }
}

static void test_stem(void **st)
{
    (void)st;
    const int ih = 64, iw = 60, c = 32, oh = MO_CONV_OUT(ih, 2), ow = MO_CONV_OUT(iw, 2);
    float *src = rnd((size_t)ih * iw * 3), *wt = rnd((size_t)c * 27), *b = rnd((size_t)c);
    float *pk = malloc(sizeof(float) * 27 * c), *dst = calloc((size_t)oh * ow * c, 4);
    assert_true(pk && dst);
    mo_stem_pack(pk, wt, c);
    const mo_exec_op op = {.kind = MO_EXEC_STEM3X3, .dst = dst, .src = src, .ih = ih, .iw = iw,
                           .cout = c, .w = pk, .b = b, .act = MO_ACT_NONE};
    out o = {dst, sizeof(float) * oh * ow * c};
    check_threads(&op, &o, 1);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int co = 0; co < c; co++) {
                double acc = b[co];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        for (int ci = 0; ci < 3; ci++) {
                            const int yy = 2 * y + ky - 1, xx = 2 * x + kx - 1;
                            if (yy >= 0 && yy < ih && xx >= 0 && xx < iw)
                                acc += (double)src[((size_t)yy * iw + xx) * 3 + ci] *
                                       wt[((co * 3 + ci) * 3 + ky) * 3 + kx];
                        }
                const size_t i = ((size_t)y * ow + x) * c + co;
                near(dst[i], acc, 1e-4, "stem", i);
            }
    free(src), free(wt), free(b), free(pk), free(dst);
}

static void test_conv3x3(void **st)
{
    (void)st;
    const int ih = 20, iw = 18, cin = 24, cout = 20, d = 2, dps = 32;
    const size_t nd = (size_t)ih * iw * dps;
    float *src = rnd((size_t)ih * iw * cin), *wt = rnd((size_t)cout * cin * 9);
    float *b = rnd((size_t)cout), *pk = calloc(mo_conv3x3_packed_size(cin, cout), 4);
    float *dst = rnd(nd), *keep = malloc(sizeof(float) * nd);
    assert_true(pk && keep);
    memcpy(keep, dst, sizeof(float) * nd);
    mo_conv3x3_pack(pk, wt, cin, cout);
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        memcpy(dst, keep, sizeof(float) * nd);
        const mo_exec_op op = {.kind = MO_EXEC_CONV3X3, .dst = dst, .dst_ps = dps, .src = src,
                               .ih = ih, .iw = iw, .cin = cin, .cout = cout, .dil = d, .w = pk,
                               .b = accumulate ? NULL : b, .act = MO_ACT_RELU};
        out o = {dst, sizeof(float) * nd};
        check_threads(&op, &o, 1);
        for (size_t p = 0; p < (size_t)ih * iw; p++)
            for (int co = 0; co < dps; co++) {
                const size_t i = p * dps + co;
                if (co >= cout) {
                    assert_true(dst[i] == keep[i]);
                    continue;
                }
                const int y = (int)(p / iw), x = (int)(p % iw);
                double acc = accumulate ? keep[i] : b[co];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        const int yy = y + (ky - 1) * d, xx = x + (kx - 1) * d;
                        if (yy < 0 || yy >= ih || xx < 0 || xx >= iw)
                            continue;
                        for (int ci = 0; ci < cin; ci++)
                            acc += (double)src[((size_t)yy * iw + xx) * cin + ci] *
                                   wt[((co * cin + ci) * 3 + ky) * 3 + kx];
                    }
                near(dst[i], act(acc, MO_ACT_RELU), 1e-4, "conv3x3", i);
            }
    }
    free(src), free(wt), free(b), free(pk), free(dst), free(keep);
}

/* ------------------------------------------------------------------ vectors */

static void test_gemv(void **st)
{
    (void)st;
    const int n = 300, k = 1000;
    float *w = rnd((size_t)n * k), *b = rnd((size_t)n), *x = rnd((size_t)k);
    float *y = calloc((size_t)n, 4);
    assert_non_null(y);
    const mo_exec_op op = {.kind = MO_EXEC_GEMV, .dst = y, .src = x, .cin = k, .cout = n,
                           .w = w, .b = b, .act = MO_ACT_RELU};
    out o = {y, sizeof(float) * n};
    check_threads(&op, &o, 1);
    for (int j = 0; j < n; j++) {
        double s = b[j];
        for (int i = 0; i < k; i++)
            s += (double)w[(size_t)j * k + i] * x[i];
        near(y[j], act(s, MO_ACT_RELU), 1e-4, "gemv", (size_t)j);
    }
    free(w), free(b), free(x), free(y);
}

static void test_mean(void **st)
{
    (void)st;
    const int h = 30, w = 40, c = 256;
    const ptrdiff_t rs = (ptrdiff_t)w * c + 16;
    float *src = rnd((size_t)h * rs), *dst = calloc((size_t)c, 4);
    assert_non_null(dst);
    const mo_exec_op op = {.kind = MO_EXEC_MEAN, .dst = dst, .src = src, .src_rs = rs, .ih = h,
                           .iw = w, .cin = c};
    out o = {dst, sizeof(float) * c};
    check_threads(&op, &o, 1);
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                s += src[y * rs + (ptrdiff_t)x * c + ch];
        near(dst[ch], s / (h * w), 1e-6, "mean", (size_t)ch);
    }
    free(src), free(dst);
}

/* GAP and SE are one chunk each (the backbone's, on the caller): naive check only, and
 * the same bits with a pool. */
static void test_gap_se(void **st)
{
    (void)st;
    const int h = 7, w = 9, c = 64, cr = 16;
    const size_t n = (size_t)h * w;
    float *x = rnd(n * c), *g = calloc((size_t)c, 4), *tmp = calloc((size_t)(c + cr), 4);
    float *rw = rnd((size_t)cr * c), *rb = rnd((size_t)cr), *ew = rnd((size_t)c * cr);
    float *eb = rnd((size_t)c), *x0 = malloc(sizeof(float) * n * c);
    assert_true(g && tmp && x0);
    memcpy(x0, x, sizeof(float) * n * c);
    const mo_exec_op ops[2] = {
        {.kind = MO_EXEC_GAP, .dst = g, .src = x, .ih = h, .iw = w, .cout = c},
        {.kind = MO_EXEC_SE, .dst = x, .ih = h, .iw = w, .cout = c, .se_c = cr,
         .se_w = {rw, rb, ew, eb}, .tmp = tmp}};
    assert_int_equal(mo_exec_chunks(&ops[0]), 1);
    assert_int_equal(mo_exec_chunks(&ops[1]), 1);
    mo_exec x3 = {.pool = pools[3]};
    mo_exec_run(&x3, &dsp, "test", ops, 2);
    double m[64], r[16];
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (size_t p = 0; p < n; p++)
            s += x0[p * c + ch];
        m[ch] = s / (double)n;
        near(g[ch], m[ch], 1e-5, "gap", (size_t)ch);
    }
    for (int j = 0; j < cr; j++) {
        double s = rb[j];
        for (int ch = 0; ch < c; ch++)
            s += (double)rw[j * c + ch] * m[ch];
        r[j] = s > 0 ? s : 0;
    }
    for (int ch = 0; ch < c; ch++) {
        double s = eb[ch];
        for (int j = 0; j < cr; j++)
            s += (double)ew[ch * cr + j] * r[j];
        const double e = 1.0 / (1.0 + exp(-s));
        for (size_t p = 0; p < n; p++)
            near(x[p * c + ch], act(x0[p * c + ch] * e, MO_ACT_RELU), 1e-5, "se", p * c + ch);
    }
    free(x), free(g), free(tmp), free(rw), free(rb), free(ew), free(eb), free(x0);
}

/* ------------------------------------------------------------------ elementwise */

static void test_act(void **st)
{
    (void)st;
    const int h = 40, w = 50, c = 100, ps = 128;
    const size_t nd = (size_t)h * w * ps;
    float *x = rnd(nd), *x0 = malloc(sizeof(float) * nd);
    assert_non_null(x0);
    for (size_t i = 0; i < nd; i++)
        x[i] *= 10.0f;
    memcpy(x0, x, sizeof(float) * nd);
    const mo_exec_op op = {.kind = MO_EXEC_ACT, .dst = x, .dst_ps = ps, .ih = h, .iw = w,
                           .cout = c, .act = MO_ACT_RELU6};
    out o = {x, sizeof(float) * nd};
    check_threads(&op, &o, 1);
    for (size_t i = 0; i < nd; i++)
        assert_true(x[i] == (i % ps < (size_t)c ? (float)act(x0[i], MO_ACT_RELU6) : x0[i]));
    free(x), free(x0);
}

/* torch's bilinear (align_corners=False) source index and weights, written out again */
static void lin(int i, int in, int outn, int *i0, int *i1, double *l0, double *l1)
{
    double s = (double)((float)in / (float)outn) * (i + 0.5) - 0.5;
    if (s < 0)
        s = 0;
    *i0 = (int)s < in - 1 ? (int)s : in - 1;
    *i1 = *i0 + (*i0 < in - 1);
    *l1 = s - *i0;
    *l0 = 1.0 - *l1;
}

static void test_upsample(void **st)
{
    (void)st;
    const int ih = 9, iw = 11, k = 21, oh = 67, ow = 81;
    float *src = rnd((size_t)ih * iw * k), *probs = calloc((size_t)oh * ow * k, 4);
    uint8_t *labels = calloc((size_t)oh * (ow + 3), 1);
    assert_true(probs && labels);
    const mo_exec_op op = {.kind = MO_EXEC_UPSAMPLE, .src = src, .ih = ih, .iw = iw, .cin = k,
                           .oh = oh, .ow = ow, .labels = labels, .labels_rs = ow + 3,
                           .probs = probs};
    out o[2] = {{labels, (size_t)oh * (ow + 3)}, {probs, sizeof(float) * oh * ow * k}};
    check_threads(&op, o, 2);
    double v[21];
    for (int y = 0; y < oh; y++) {
        int y0, y1, x0, x1;
        double ly0, ly1, lx0, lx1;
        lin(y, ih, oh, &y0, &y1, &ly0, &ly1);
        for (int x = 0; x < ow; x++) {
            lin(x, iw, ow, &x0, &x1, &lx0, &lx1);
            double mx = -1e30, sum = 0;
            for (int c = 0; c < k; c++) {
                const float *s = src + c;
                v[c] = (s[(y0 * iw + x0) * k] * lx0 + s[(y0 * iw + x1) * k] * lx1) * ly0 +
                       (s[(y1 * iw + x0) * k] * lx0 + s[(y1 * iw + x1) * k] * lx1) * ly1;
                mx = v[c] > mx ? v[c] : mx;
            }
            const int lab = labels[(size_t)y * (ow + 3) + x];
            assert_true(lab < k && v[lab] >= mx - 1e-5);
            for (int c = 0; c < k; c++)
                sum += exp(v[c] - mx);
            for (int c = 0; c < k; c++)
                near(probs[((size_t)y * ow + x) * k + c], exp(v[c] - mx) / sum, 1e-5, "probs",
                     (size_t)c);
        }
    }
    free(src), free(probs), free(labels);
}

static void test_softmax(void **st)
{
    (void)st;
    const int n = 1000, k = 91; /* class-major output, as the detection head */
    float *src = rnd((size_t)n * k), *dst = calloc((size_t)n * k, 4);
    assert_non_null(dst);
    for (size_t i = 0; i < (size_t)n * k; i++)
        src[i] *= 8.0f;
    const mo_exec_op op = {.kind = MO_EXEC_SOFTMAX, .dst = dst, .dst_rs = 1, .dst_cs = n,
                           .src = src, .ih = n, .cin = k};
    out o = {dst, sizeof(float) * n * k};
    check_threads(&op, &o, 1);
    for (int r = 0; r < n; r++) {
        double mx = -1e30, s = 0;
        for (int j = 0; j < k; j++)
            mx = src[r * k + j] > mx ? src[r * k + j] : mx;
        for (int j = 0; j < k; j++)
            s += exp(src[r * k + j] - mx);
        for (int j = 0; j < k; j++)
            near(dst[(size_t)j * n + r], exp(src[r * k + j] - mx) / s, 1e-5, "softmax",
                 (size_t)r);
    }
    free(src), free(dst);
}

/* ------------------------------------------------------------------ callback */

typedef struct call_ctx {
    int *hits;
    float *y;
    size_t align;
    int misaligned;
} call_ctx;

static void call_fn(void *ctx, size_t b, size_t e)
{
    call_ctx *c = ctx;
    if (b % c->align && b)
        c->misaligned = 1; /* only written as 1: a benign flag, read after the join */
    for (size_t i = b; i < e; i++) {
        c->hits[i]++;
        c->y[i] = (float)i * 0.5f + 1.0f;
    }
}

static void test_call(void **st)
{
    (void)st;
    const size_t n = 1003;
    int *hits = calloc(n, sizeof(int));
    float *y = calloc(n, sizeof(float));
    assert_true(hits && y);
    call_ctx c = {hits, y, 8, 0};
    const mo_exec_op op = {.kind = MO_EXEC_CALL, .fn = call_fn, .ctx = &c, .units = n,
                           .align = 8, .macs = 1e6};
    assert_int_equal(mo_exec_chunks(&op), 10); /* 1e6 / 100000 */
    for (int t = 1; t <= 3; t++) {
        memset(hits, 0, n * sizeof(int));
        run_with(&op, t);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(hits[i], 1);
            assert_true(y[i] == (float)i * 0.5f + 1.0f);
        }
    }
    assert_int_equal(c.misaligned, 0);
    free(hits), free(y);
}

/* ------------------------------------------------------------------ pool */

typedef struct pool_ctx {
    int *hits;
    int bad; /* a call outside [0, n) or with count < 1: written only as 1, read after */
} pool_ctx;

static void pool_fn(void *ctx, int first, int count, int n)
{
    pool_ctx *c = ctx;
    if (first < 0 || count < 1 || first + count > n) {
        c->bad = 1;
        return;
    }
    for (int i = first; i < first + count; i++)
        c->hits[i]++; /* chunks are disjoint: no two threads touch one element */
}

/* mo_pool_run: every chunk exactly once, in runs of consecutive chunks, for counts that
 * do not divide evenly among the threads, a single chunk and the most a job may have. */
static void test_pool(void **st)
{
    (void)st;
    static const int counts[] = {1, 2, 3, 7, 24, 100, 1001, MO_POOL_MAX_CHUNKS};
    int *hits = malloc(MO_POOL_MAX_CHUNKS * sizeof(int));
    assert_non_null(hits);
    for (int t = 2; t <= 3; t++)
        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++)
            for (int rep = 0; rep < 3; rep++) {
                const int n = counts[k];
                memset(hits, 0, (size_t)n * sizeof(int));
                pool_ctx c = {hits, 0};
                mo_pool_run(pools[t], pool_fn, &c, n);
                assert_int_equal(c.bad, 0);
                for (int i = 0; i < n; i++)
                    if (hits[i] != 1)
                        fail_msg("%d threads, %d chunks: chunk %d ran %d times", t, n, i,
                                 hits[i]);
            }
    free(hits);
}

/* ------------------------------------------------------------------ profile */

static void test_profile(void **st)
{
    (void)st;
    float x[64], y[16], g[16];
    for (int i = 0; i < 64; i++)
        x[i] = (float)i;
    mo_op_profile rec[2];
    mo_exec ex = {.pool = pools[2], .prof_on = 1, .prof_cap = 2, .prof = rec};
    const float w[16 * 4] = {0}, b[16] = {0};
    const mo_exec_op ops[4] = {
        {.kind = MO_EXEC_GAP, .dst = g, .src = x, .ih = 2, .iw = 2, .cout = 16,
         .name = "head.%d.pool", .arg = {7}},
        {.kind = MO_EXEC_GEMV, .dst = y, .src = g, .cin = 4, .cout = 16, .w = w, .b = b},
        {.kind = MO_EXEC_GEMV, .dst = y, .src = g, .cin = 4, .cout = 16, .w = w, .b = b,
         .prof_kind = "fc", .name = "head.fc"},
        {.kind = MO_EXEC_GAP, .dst = g, .src = x, .ih = 2, .iw = 2, .cout = 16,
         .name = "dropped"}};
    mo_exec_run(&ex, &dsp, "hd", ops, 4);
    assert_int_equal(ex.prof_n, 2);
    assert_int_equal(ex.prof_dropped, 1);
    assert_string_equal(rec[0].model, "hd");
    assert_string_equal(rec[0].name, "head.7.pool"); /* the unnamed GEMV timed into it */
    assert_string_equal(rec[0].kind, "gap");
    assert_true(rec[0].h == 1 && rec[0].w == 1 && rec[0].c == 16 && rec[0].flops == 64);
    assert_string_equal(rec[1].name, "head.fc");
    assert_string_equal(rec[1].kind, "fc");
    assert_true(rec[1].flops == 2.0 * 16 * 4 + 16 && rec[1].ms >= 0.0);
    mo_exec_run(NULL, &dsp, "hd", ops, 4); /* no executor: on the caller, unrecorded */
}

/* ------------------------------------------------------------------ main */

static int setup(void **st)
{
    (void)st;
    mo_conv_dsp_init(&dsp, cpu_flags);
    return mo_pool_create(&pools[2], 2) || mo_pool_create(&pools[3], 3);
}

static int teardown(void **st)
{
    (void)st;
    mo_pool_destroy(&pools[2]);
    mo_pool_destroy(&pools[3]);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest threads[] = {
        cmocka_unit_test(test_pw_pixels), cmocka_unit_test(test_pw_panels),
        cmocka_unit_test(test_pw_strided), cmocka_unit_test(test_dw3x3),
        cmocka_unit_test(test_stem), cmocka_unit_test(test_conv3x3),
        cmocka_unit_test(test_gemv), cmocka_unit_test(test_mean),
        cmocka_unit_test(test_act), cmocka_unit_test(test_upsample),
        cmocka_unit_test(test_softmax), cmocka_unit_test(test_call),
        cmocka_unit_test(test_pool)};
    const struct CMUnitTest rest[] = {cmocka_unit_test(test_gap_se),
                                      cmocka_unit_test(test_profile)};
    cpu_flags = mo_get_cpu_flags();
    int fails = cmocka_run_group_tests_name("exec, 1/2/3 threads", threads, setup, teardown);
    cpu_flags = 0;
    fails += cmocka_run_group_tests_name("exec, C kernels, 1/2/3 threads", threads, setup,
                                         teardown);
    cpu_flags = mo_get_cpu_flags();
    if (argc < 2 || strcmp(argv[1], "threads"))
        fails += cmocka_run_group_tests_name("exec", rest, setup, teardown);
    return fails;
}
