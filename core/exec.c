/*
 * The op executor of mo_internal/exec.h: each op is resolved (packed strides and default
 * sizes filled in), planned (how it splits: rows, pixels, weight panels, channels or
 * outputs, and into how many chunks, from the op alone) and run on the pool, chunk by
 * chunk, or on the caller as one call when there is no pool or a single chunk.
 */
#include "mo_internal/exec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Ops below this many multiply-adds run as one chunk: waking the workers would cost more
 * than it saves. Above, one chunk per CHUNK_MACS, at most MAX_CHUNKS (divisible by 1, 2,
 * 3, 4, 6, 8 and 12: whole chunks per thread for those counts), so that a thread the OS
 * does not run for a while delays an op by one small chunk at most (mo_internal/pool.h). */
#define MIN_PARALLEL_MACS 200000.0
#define CHUNK_MACS 100000.0
#define MAX_CHUNKS 24
/* Pointwise chunks: pixel ranges on multiples of PW_ALIGN (whole register tiles of every
 * kernel variant), at least PW_MIN_CHUNK pixels (each chunk streams the layer's weights
 * once). Below PW_CH_SPLIT_PIX pixels, a layer of at least PW_CH_MIN_PANELS weight panels
 * is cut across its output channels instead: a channel chunk streams only its panels (s4
 * at 224x224, 7x7 px 896 -> 2048 with 7.3 MB of weights). */
#define PW_ALIGN 12
#define PW_MIN_CHUNK 24
#define PW_CH_SPLIT_PIX 128
#define PW_CH_MIN_PANELS 4
/* GEMV outputs: chunk boundaries on multiples of 16 rows */
#define GEMV_ALIGN 16

enum split { BY_WHOLE, BY_ROWS, BY_PIXELS, BY_PANELS, BY_CHANNELS, BY_OUTPUTS, BY_UNITS };

typedef struct plan {
    int split;    /* enum split */
    size_t units; /* of the split */
    size_t align; /* inner chunk boundaries on multiples of this */
    size_t most;  /* chunks the units allow */
    double macs;
    int n;        /* chunks */
} plan;

/* ------------------------------------------------------------------ time and profile */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

double mo_exec_prof_begin(const mo_exec *x)
{
    return x && x->prof_on ? now_ms() : 0.0;
}

static mo_op_profile *prof_record(mo_exec *x, double t0, const char *model, const char *kind,
                                  int h, int w, int c, double flops)
{
    const double t1 = now_ms();
    if (x->prof_n >= x->prof_cap) {
        x->prof_dropped++;
        return NULL;
    }
    mo_op_profile *r = &x->prof[x->prof_n++];
    snprintf(r->model, sizeof(r->model), "%s", model);
    snprintf(r->kind, sizeof(r->kind), "%s", kind);
    r->h = h;
    r->w = w;
    r->c = c;
    r->flops = flops;
    r->ms = t1 > t0 ? t1 - t0 : 0.0;
    return r;
}

void mo_exec_prof_end(mo_exec *x, double t0, const char *model, const char *kind, int h, int w,
                      int c, double flops, const char *name_fmt, ...)
{
    if (!x || !x->prof_on || !t0)
        return;
    mo_op_profile *r = prof_record(x, t0, model, kind, h, w, c, flops);
    if (!r)
        return;
    va_list ap;
    va_start(ap, name_fmt);
    vsnprintf(r->name, sizeof(r->name), name_fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ planning */

static size_t cdiv(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* op with its packed strides and derived sizes filled in */
static mo_exec_op resolve(const mo_exec_op *in)
{
    mo_exec_op o = *in;
    if (!o.stride)
        o.stride = 1;
    if (!o.dil)
        o.dil = 1;
    switch (o.kind) {
    case MO_EXEC_STEM3X3:
        o.stride = 2;
        o.cin = 3;
        /* fall through */
    case MO_EXEC_DW3X3:
        if (o.kind == MO_EXEC_DW3X3)
            o.cin = o.cout;
        /* fall through */
    case MO_EXEC_CONV3X3:
        o.oh = MO_CONV_OUT(o.ih, o.stride);
        o.ow = MO_CONV_OUT(o.iw, o.stride);
        break;
    case MO_EXEC_PW:
    case MO_EXEC_ACT:
    case MO_EXEC_SE:
    case MO_EXEC_GAP:
        o.oh = o.ih;
        o.ow = o.iw;
        break;
    default:
        break;
    }
    if (!o.dst_ps)
        o.dst_ps = o.cout;
    if (!o.dst_rs)
        o.dst_rs = o.kind == MO_EXEC_SOFTMAX ? o.cin : (ptrdiff_t)o.ow * o.dst_ps;
    if (!o.dst_cs)
        o.dst_cs = 1;
    if (!o.src_rs)
        o.src_rs = o.kind == MO_EXEC_SOFTMAX ? o.cin : (ptrdiff_t)o.iw * o.cin;
    if (!o.labels_rs)
        o.labels_rs = o.ow;
    if (!o.align)
        o.align = 1;
    return o;
}

static int dst_packed(const mo_exec_op *o)
{
    return o->dst_ps == o->cout && o->dst_rs == (ptrdiff_t)o->ow * o->cout;
}

static plan plan_of(const mo_exec_op *o)
{
    plan p = {.split = BY_ROWS, .units = (size_t)o->oh, .align = 1};
    const double npix = (double)o->oh * o->ow;
    switch (o->kind) {
    case MO_EXEC_PW: {
        p.macs = npix * o->cin * o->cout;
        const size_t n = (size_t)o->oh * (size_t)o->ow;
        const size_t panels = cdiv((size_t)o->cout, MO_PW_NR);
        if (!dst_packed(o) || o->src_rs != (ptrdiff_t)o->iw * o->cin)
            break; /* rows */
        if (n < PW_CH_SPLIT_PIX && panels >= PW_CH_MIN_PANELS) {
            p.split = BY_PANELS;
            p.units = panels;
        } else {
            p.split = BY_PIXELS;
            p.units = n;
            p.align = PW_ALIGN;
            p.most = cdiv(n, PW_MIN_CHUNK);
        }
        break;
    }
    case MO_EXEC_DW3X3:
        p.macs = npix * o->cout * 9.0;
        break;
    case MO_EXEC_STEM3X3:
        p.macs = npix * o->cout * 27.0;
        break;
    case MO_EXEC_CONV3X3:
        p.macs = npix * o->cout * o->cin * 9.0;
        break;
    case MO_EXEC_GEMV:
        p = (plan){.split = BY_OUTPUTS, .units = (size_t)o->cout, .align = GEMV_ALIGN,
                   .most = cdiv((size_t)o->cout, GEMV_ALIGN), .macs = (double)o->cout * o->cin};
        break;
    case MO_EXEC_GAP:
        p = (plan){.split = BY_WHOLE, .units = 1, .macs = npix * o->cout};
        break;
    case MO_EXEC_SE:
        p = (plan){.split = BY_WHOLE, .units = 1,
                   .macs = npix * o->cout + 2.0 * o->cout * o->se_c};
        break;
    case MO_EXEC_MEAN:
        p = (plan){.split = BY_CHANNELS, .units = (size_t)o->cin, .align = 1,
                   .macs = (double)o->ih * o->iw * o->cin};
        break;
    case MO_EXEC_ACT:
        p.macs = npix * o->cout;
        break;
    case MO_EXEC_UPSAMPLE:
        p.macs = 9.0 * npix * o->cin;
        break;
    case MO_EXEC_SOFTMAX:
        p = (plan){.split = BY_ROWS, .units = (size_t)o->ih, .align = 1,
                   .macs = 3.0 * o->ih * o->cin};
        break;
    case MO_EXEC_CALL:
        p = (plan){.split = BY_UNITS, .units = o->units, .align = o->align, .macs = o->macs};
        break;
    default:
        break;
    }
    if (!p.most)
        p.most = p.units;
    p.n = 1;
    if (p.macs >= MIN_PARALLEL_MACS && p.units >= 2) {
        size_t n = (size_t)(p.macs / CHUNK_MACS);
        n = n < p.most ? n : p.most;
        n = n < MAX_CHUNKS ? n : MAX_CHUNKS;
        p.n = n > 1 ? (int)n : 1;
    }
    return p;
}

int mo_exec_chunks(const mo_exec_op *op)
{
    const mo_exec_op o = resolve(op);
    return plan_of(&o).n;
}

/* Start of chunk i of n of [0, total): total * i / n, rounded to a multiple of align
 * (0 and total kept), so chunk i ends where chunk i + 1 starts. */
static size_t chunk_start(size_t total, int i, int n, size_t align)
{
    if (i <= 0)
        return 0;
    if (i >= n)
        return total;
    size_t b = total * (size_t)i / (size_t)n;
    b = (b + align / 2) / align * align;
    return b < total ? b : total;
}

/* ------------------------------------------------------------------ kernels on a range */

static void act_rows(float *dst, ptrdiff_t row_stride, ptrdiff_t pixel, int h, int w, int c,
                     int act)
{
    if (act == MO_ACT_NONE)
        return;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *r = dst + (ptrdiff_t)y * row_stride + (ptrdiff_t)x * pixel;
            for (int i = 0; i < c; i++) {
                float v = r[i] > 0.0f ? r[i] : 0.0f;
                if (act == MO_ACT_RELU6)
                    v = v < 6.0f ? v : 6.0f;
                r[i] = v;
            }
        }
}

/* Pointwise on output channels [c0, c1) (c0 a multiple of MO_PW_NR) of every pixel: the
 * bias written, the accumulating kernel on those weight panels, the activation. The
 * accumulating kernel gives each element the operations of the plain one with the old
 * dst value as the bias (mo_internal/conv.h): the bits of the whole layer. */
static void pw_channels(const mo_conv_dsp *dsp, const mo_exec_op *o, int c0, int c1)
{
    const size_t cout = (size_t)o->cout, nc = (size_t)(c1 - c0);
    const size_t npix = (size_t)o->oh * (size_t)o->ow;
    float *dst = o->dst + c0;
    for (size_t p = 0; p < npix; p++)
        memcpy(dst + p * cout, o->b + c0, nc * sizeof(float));
    dsp->pw_acc(dst, (ptrdiff_t)cout, o->src, o->cin, npix, o->cin, c1 - c0,
                o->w + (size_t)c0 * o->cin);
    act_rows(dst, (ptrdiff_t)(npix * cout), (ptrdiff_t)cout, 1, (int)npix, (int)nc, o->act);
}

/* Pointwise on rows [y0, y1) into strided pixels: bias, accumulate, activation. */
static void pw_strided(const mo_conv_dsp *dsp, const mo_exec_op *o, int y0, int y1)
{
    const int w = o->iw;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < w; x++)
            memcpy(o->dst + (ptrdiff_t)y * o->dst_rs + (ptrdiff_t)x * o->dst_ps, o->b,
                   (size_t)o->cout * sizeof(float));
    if (o->src_rs == (ptrdiff_t)w * o->cin && o->dst_rs == (ptrdiff_t)w * o->dst_ps)
        dsp->pw_acc(o->dst + (ptrdiff_t)y0 * o->dst_rs, o->dst_ps,
                    o->src + (ptrdiff_t)y0 * o->src_rs, o->cin, (size_t)(y1 - y0) * (size_t)w,
                    o->cin, o->cout, o->w);
    else
        for (int y = y0; y < y1; y++)
            dsp->pw_acc(o->dst + (ptrdiff_t)y * o->dst_rs, o->dst_ps,
                        o->src + (ptrdiff_t)y * o->src_rs, o->cin, (size_t)w, o->cin, o->cout,
                        o->w);
    act_rows(o->dst + (ptrdiff_t)y0 * o->dst_rs, o->dst_rs, o->dst_ps, y1 - y0, w, o->cout,
             o->act);
}

/* Units [b, e) of op o (split as p says). */
static void run_units(const mo_conv_dsp *dsp, const mo_exec_op *o, const plan *p, size_t b,
                      size_t e)
{
    if (e <= b)
        return;
    const int y0 = (int)b, y1 = (int)e;
    switch (o->kind) {
    case MO_EXEC_PW:
        if (p->split == BY_PANELS && (b > 0 || e < p->units))
            pw_channels(dsp, o, y0 * MO_PW_NR,
                        y1 * MO_PW_NR < o->cout ? y1 * MO_PW_NR : o->cout);
        else if (p->split == BY_PANELS || p->split == BY_PIXELS) {
            if (p->split == BY_PANELS) /* all of it: the plain kernel, the same bits */
                b = 0, e = (size_t)o->oh * (size_t)o->ow;
            dsp->pw(o->dst + b * (size_t)o->cout, o->src + b * (size_t)o->cin, e - b, o->cin,
                    o->cout, o->w, o->b, o->act);
        } else if (dst_packed(o)) /* strided input rows */
            for (int y = y0; y < y1; y++)
                dsp->pw(o->dst + (ptrdiff_t)y * o->dst_rs, o->src + (ptrdiff_t)y * o->src_rs,
                        (size_t)o->iw, o->cin, o->cout, o->w, o->b, o->act);
        else
            pw_strided(dsp, o, y0, y1);
        break;
    case MO_EXEC_DW3X3:
        dsp->dw3x3(o->dst, o->dst_rs, o->src, o->src_rs, o->ih, o->iw, o->cout, o->stride,
                   o->dil, o->w, o->b, o->act, y0, y1);
        break;
    case MO_EXEC_STEM3X3:
        dsp->stem3x3(o->dst, o->dst_rs, o->src, o->src_rs, o->ih, o->iw, o->cout, o->w, o->b,
                     o->act, y0, y1);
        break;
    case MO_EXEC_CONV3X3:
        dsp->conv3x3(o->dst, o->dst_rs, o->dst_ps, o->src, o->src_rs, o->ih, o->iw, o->cin,
                     o->cout, o->stride, o->dil, o->w, o->b, o->act, y0, y1);
        break;
    case MO_EXEC_GEMV:
        dsp->gemv(o->dst + b, o->w + b * (size_t)o->cin, o->b + b, o->src, y1 - y0, o->cin,
                  o->act);
        break;
    case MO_EXEC_GAP:
        dsp->gap(o->dst, o->src, (size_t)o->ih * (size_t)o->iw, o->cout);
        break;
    case MO_EXEC_MEAN:
        dsp->mean(o->dst, o->src, o->src_rs, o->ih, o->iw, o->cin, y0, y1);
        break;
    case MO_EXEC_SE:
        dsp->se(o->dst, (size_t)o->ih * (size_t)o->iw, o->cout, o->se_c, o->se_w[0], o->se_w[1],
                o->se_w[2], o->se_w[3], o->tmp);
        break;
    case MO_EXEC_ACT:
        act_rows(o->dst + (ptrdiff_t)y0 * o->dst_rs, o->dst_rs, o->dst_ps, y1 - y0, o->iw,
                 o->cout, o->act);
        break;
    case MO_EXEC_UPSAMPLE:
        if (o->labels)
            dsp->upsample_argmax(o->labels, o->labels_rs, o->src, o->src_rs, o->ih, o->iw,
                                 o->cin, o->oh, o->ow, y0, y1);
        if (o->probs) {
            const ptrdiff_t row = (ptrdiff_t)o->ow * o->cin;
            dsp->upsample(o->probs, row, o->src, o->src_rs, o->ih, o->iw, o->cin, o->oh, o->ow,
                          y0, y1);
            float *pr = o->probs + (ptrdiff_t)y0 * row;
            dsp->softmax(pr, o->cin, 1, pr, o->cin, (size_t)(y1 - y0) * (size_t)o->ow, o->cin);
        }
        break;
    case MO_EXEC_SOFTMAX:
        dsp->softmax(o->dst + (ptrdiff_t)b * o->dst_rs, o->dst_rs, o->dst_cs,
                     o->src + (ptrdiff_t)b * o->src_rs, o->src_rs, e - b, o->cin);
        break;
    case MO_EXEC_CALL:
        o->fn(o->ctx, b, e);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ running */

typedef struct job {
    const mo_conv_dsp *dsp;
    const mo_exec_op *op;
    const plan *p;
} job;

/* Chunks [c0, c1) as one call: their units are contiguous. */
static void run_chunks(const job *j, int c0, int c1)
{
    const plan *p = j->p;
    run_units(j->dsp, j->op, p, chunk_start(p->units, c0, p->n, p->align),
              chunk_start(p->units, c1, p->n, p->align));
}

static void chunk_fn(void *ctx, int first, int count, int n)
{
    (void)n;
    run_chunks(ctx, first, first + count);
}

static const char *const kind_names[] = {
    [MO_EXEC_PW] = "pw", [MO_EXEC_DW3X3] = "dw3x3", [MO_EXEC_STEM3X3] = "conv3x3",
    [MO_EXEC_CONV3X3] = "conv3x3", [MO_EXEC_GEMV] = "gemv", [MO_EXEC_GAP] = "gap",
    [MO_EXEC_MEAN] = "mean", [MO_EXEC_SE] = "se", [MO_EXEC_ACT] = "relu",
    [MO_EXEC_UPSAMPLE] = "upsample_argmax", [MO_EXEC_SOFTMAX] = "softmax",
    [MO_EXEC_CALL] = "call"};

/* The record of op o (planned as p), timed from t0. */
static void record(mo_exec *x, double t0, const char *model, const mo_exec_op *o,
                   const plan *p)
{
    double flops = o->flops;
    int h = o->oh, w = o->ow, c = o->cout;
    switch (o->kind) {
    case MO_EXEC_GEMV:
        if (!flops)
            flops = 2.0 * p->macs + o->cout;
        h = w = 1;
        break;
    case MO_EXEC_GAP:
    case MO_EXEC_MEAN:
        h = w = 1;
        c = o->kind == MO_EXEC_MEAN ? o->cin : o->cout;
        break;
    case MO_EXEC_SE:
        if (!flops)
            flops = 2.0 * (double)o->ih * o->iw * o->cout + 4.0 * o->cout * o->se_c;
        break;
    case MO_EXEC_UPSAMPLE:
        c = 1;
        break;
    case MO_EXEC_SOFTMAX:
        h = o->ih;
        w = 1;
        c = o->cin;
        break;
    case MO_EXEC_CALL:
        h = w = c = 0;
        break;
    default:
        break;
    }
    if (!flops) {
        const int k = o->kind;
        flops = k == MO_EXEC_PW || k == MO_EXEC_DW3X3 || k == MO_EXEC_STEM3X3 ||
                k == MO_EXEC_CONV3X3 ? 2.0 * p->macs :
                k == MO_EXEC_ACT || k == MO_EXEC_CALL ? 0.0 : p->macs;
    }
    if (o->prof_h || o->prof_w || o->prof_c) {
        h = o->prof_h;
        w = o->prof_w;
        c = o->prof_c;
    }
    const int kind = o->kind >= 0 && o->kind <= MO_EXEC_CALL ? o->kind : MO_EXEC_CALL;
    mo_op_profile *r = prof_record(x, t0, model, o->prof_kind ? o->prof_kind : kind_names[kind],
                                   h, w, c, flops);
    if (r)
        snprintf(r->name, sizeof(r->name), o->name, o->arg[0], o->arg[1], o->arg[2]);
}

void mo_exec_run(mo_exec *x, const mo_conv_dsp *dsp, const char *model, const mo_exec_op *ops,
                 int n)
{
    const int prof = x && x->prof_on;
    mo_exec_op open_op = {0}; /* the op whose record is open, and its plan */
    plan open_plan = {0};
    double t0 = 0.0;
    for (int i = 0; i < n; i++) {
        const mo_exec_op o = resolve(&ops[i]);
        const plan p = plan_of(&o);
        if (prof && o.name) {
            if (t0)
                record(x, t0, model, &open_op, &open_plan);
            open_op = o;
            open_plan = p;
            t0 = now_ms();
        }
        const job j = {dsp, &o, &p};
        if (p.n > 1 && x && x->pool)
            mo_pool_run(x->pool, chunk_fn, (void *)&j, p.n);
        else
            run_chunks(&j, 0, p.n);
    }
    if (t0)
        record(x, t0, model, &open_op, &open_plan);
}
