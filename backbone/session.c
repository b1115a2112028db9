/*
 * Sessions: per-thread scratch memory, sized once at open, and the forward pass.
 *
 * Memory of a session: two ping-pong buffers for the maps inside a stage, one buffer per
 * stage output (the feature levels stay valid until the next run), the pooled vector and
 * the SE scratch. Everything is sized for the largest input and the smallest output
 * stride the session accepts, since every map only shrinks with a smaller input or a
 * larger output stride.
 *
 * Threads (settings.threads > 1): the session owns a pool of threads - 1 workers, created
 * at open (mo_internal/pool.h). Each layer is cut into chunks of output rows (pixels, for the
 * pointwise GEMM; output channels for a pointwise layer of few pixels), CHUNKS_PER_THREAD
 * per thread, dealt so that every thread works on the same part of the image layer after
 * layer; the kernels compute any range with the same
 * operations per element (core/include/mo_internal/conv.h), so the result does not depend on the
 * number of threads. Squeeze-excite and the final pooling stay on the calling thread.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity: the CPUs this process may use */
#endif
#include "mobileone_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mo_internal/backbone.h"
#include "mo_internal/errors.h"
#include "mo_internal/settings.h"
#include "mo_internal/meta.h"
#include "mo/limits.h"
#include "mo_internal/pool.h"

#if defined(__linux__)
#include <sched.h>
#endif
#include <unistd.h>

/* Layers below this many multiply-adds run on the calling thread alone: waking the
 * workers would cost more than it saves. */
#define MIN_PARALLEL_MACS 200000.0
/* Chunks per thread a layer is cut into: more than one, so that a thread the OS does not
 * run for a while delays the layer by one small chunk at most (mo_internal/pool.h).
 * Pointwise chunks keep at least PW_MIN_CHUNK pixels: each chunk streams the layer's
 * weights once. */
#define CHUNKS_PER_THREAD 4
#define PW_MIN_CHUNK 24
/* With fewer than PW_CH_SPLIT_PIX pixels per thread, a pointwise layer is cut across its
 * output channels (ranges of weight panels) instead: each pixel chunk would stream the
 * whole weight matrix for a few pixels, a channel chunk streams only its panels (s4 at
 * 224x224, 7x7 px 896 -> 2048 with its 7.3 MB of weights: ~1.7 -> ~1.2 ms at 2 threads in
 * a model of the pool's schedule from per-chunk CPU times, cold weights). */
#define PW_CH_SPLIT_PIX 64

/* One layer of a run, as the threads see it. */
typedef struct layer_job {
    const mo_conv_dsp *dsp;
    const mo_module *m;
    float *dst;
    const float *src;
    ptrdiff_t dst_stride, src_stride;
    int ih, iw, oh, stride, dil, relu;
    int pw_by_channels; /* pointwise: chunks are ranges of weight panels, not of pixels */
    size_t npix;
} layer_job;

struct mo_session {
    const mo_backbone *bb;
    int max_h, max_w, min_os;
    float *buf[2];                  /* inside a stage */
    float *level[MO_NUM_LEVELS];    /* stage outputs */
    float *pooled;                  /* width[4] floats */
    float *se_tmp;                  /* cout + se_c floats */
    float *mem;
    void *workspace;                /* heads' scratch, see mo_session_workspace() */
    size_t workspace_bytes;
    mo_pool *pool;                  /* NULL with one thread */
    int threads;
    /* profile (mo_session_set_profile): records allocated by the first call that turns it
     * on, filled by the runs; prof_on is the one branch a run pays when it is off */
    int prof_on, prof_cap, prof_n, prof_dropped;
    mo_op_profile *prof;
};

/* Geometry of one module in a run: its input and output sizes, stride and dilation. */
typedef struct mod_geom {
    int ih, iw, oh, ow, stride, dil;
} mod_geom;

static mod_geom module_geom(const mo_module *m, int ih, int iw, int output_stride)
{
    mod_geom g = {.ih = ih, .iw = iw, .stride = m->stride, .dil = 1};
    if (m->type == MO_MOD_DW) {
        g.dil = mo_stage_dilation(m->stage, output_stride);
        if (g.dil > 1)
            g.stride = 1; /* a dilated stage keeps its resolution */
    }
    g.oh = MO_CONV_OUT(ih, g.stride);
    g.ow = MO_CONV_OUT(iw, g.stride);
    return g;
}

void mo_session_default_settings_sized(mo_session_settings *s, size_t size)
{
    const mo_session_settings d = {.size = sizeof(d), .max_height = 224, .max_width = 224,
                                   .min_output_stride = 32, .threads = 1};
    MO_SETTINGS_FILL(s, size, &d);
}

/* Online CPUs this process may run on (at least 1). */
static int cpu_count(void)
{
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
#if defined(_SC_NPROCESSORS_ONLN)
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0)
        return n > MO_MAX_THREADS ? MO_MAX_THREADS : (int)n;
#endif
    return 1;
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* a * b * c with overflow check; returns 0 on overflow (no real size is 0). */
static size_t mul3(size_t a, size_t b, size_t c)
{
    if (b && a > SIZE_MAX / b)
        return 0;
    a *= b;
    if (c && a > SIZE_MAX / c)
        return 0;
    return a * c;
}

/* Floats of a session's buffers (see the top of this file) for inputs up to h x w and
 * output strides down to os: the largest map inside a stage (twice: ping-pong), each stage
 * output, the pooled vector and the SE scratch. */
static int session_sizes(const mo_backbone *bb, int max_h, int max_w, int os, size_t *scratch,
                         size_t level[MO_NUM_LEVELS], size_t *se, size_t *total)
{
    *scratch = *se = 0;
    memset(level, 0, sizeof(size_t) * MO_NUM_LEVELS);
    int h = max_h, w = max_w;
    for (int i = 0; i < bb->nmod; i++) {
        const mo_module *m = &bb->mod[i];
        const mod_geom g = module_geom(m, h, w, os);
        const size_t n = mul3((size_t)g.oh, (size_t)g.ow, (size_t)m->cout);
        if (!n)
            return mo_fail(MO_ENOMEM, "mo_session_open: %dx%d input too large", h, w);
        if (m->stage > 0 && i == bb->stage_end[m->stage] - 1)
            level[m->stage - 1] = n;
        else if (n > *scratch)
            *scratch = n;
        if (m->se_c && (size_t)(m->cout + m->se_c) > *se)
            *se = (size_t)(m->cout + m->se_c);
        h = g.oh;
        w = g.ow;
    }
    size_t t = 2 * align16(*scratch) + align16((size_t)bb->width[4]) + align16(*se);
    for (int l = 0; l < MO_NUM_LEVELS; l++) {
        if (t > SIZE_MAX / sizeof(float) - align16(level[l]))
            return mo_fail(MO_ENOMEM, "mo_session_open: %dx%d input too large", max_h, max_w);
        t += align16(level[l]);
    }
    *total = t;
    return MO_OK;
}

int mo_session_bytes(const mo_backbone *bb, int max_h, int max_w, int os, size_t *bytes)
{
    validate_input_or_ret(bb && bytes && max_h > 0 && max_w > 0, MO_EINVAL);
    size_t scratch, level[MO_NUM_LEVELS], se, total;
    int ret = session_sizes(bb, max_h, max_w, os, &scratch, level, &se, &total);
    if (ret)
        return ret;
    *bytes = total * sizeof(float);
    return MO_OK;
}

/* ------------------------------------------------------------------ memory */

int mo_meta_check_memory(const mo_backbone *bb, int h, int w, int os, size_t head_bytes,
                         const char *what)
{
    validate_input_or_ret(bb && what, MO_EINVAL);
    mo_limits lim;
    mo_limits_get(&lim);
    size_t session = 0;
    int ret = mo_session_bytes(bb, h, w, os, &session);
    const double total = (double)session + 12.0 * h * w + (double)head_bytes;
    if (ret || total > (double)lim.model_memory_bytes)
        return mo_fail(MO_EUNSUPPORTED, "metadata %s: a %dx%d input needs %.0f MiB (backbone "
                       "session, input and head buffers), over the limit model_memory_bytes "
                       "(%.0f MiB)", what, w, h, total / 1048576.0,
                       (double)lim.model_memory_bytes / 1048576.0);
    return MO_OK;
}

int mo_session_open(mo_session **out, const mo_backbone *bb, const mo_session_settings *s)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(bb, MO_EINVAL);
    mo_session_settings set;
    mo_session_default_settings(&set);
    static const size_t ends[] = {
        MO_FIELD_END(mo_session_settings, max_height),
        MO_FIELD_END(mo_session_settings, max_width),
        MO_FIELD_END(mo_session_settings, min_output_stride),
        MO_FIELD_END(mo_session_settings, workspace_bytes),
        MO_FIELD_END(mo_session_settings, threads)};
    int sr = MO_SETTINGS_TAKE(&set, s, ends, "mo_session_open", "mo_session_settings");
    if (sr)
        return sr;
    if (set.max_height < 1 || set.max_height > MO_MAX_INPUT_SIDE || set.max_width < 1 ||
        set.max_width > MO_MAX_INPUT_SIDE)
        return mo_fail(MO_EINVAL, "mo_session_open: maximum input %dx%d outside 1..%d",
                       set.max_height, set.max_width, MO_MAX_INPUT_SIDE);
    if (set.min_output_stride != 8 && set.min_output_stride != 16 &&
        set.min_output_stride != 32)
        return mo_fail(MO_EINVAL, "mo_session_open: min_output_stride %d is not 8, 16 or 32",
                       set.min_output_stride);
    if (set.threads < 0 || set.threads > MO_MAX_THREADS)
        return mo_fail(MO_EINVAL, "mo_session_open: threads %d outside 0..%d", set.threads,
                       MO_MAX_THREADS);
    int threads = set.threads ? set.threads : cpu_count();
    if (threads > MO_MAX_THREADS)
        threads = MO_MAX_THREADS;

    size_t scratch, level[MO_NUM_LEVELS], se, total;
    int ret = session_sizes(bb, set.max_height, set.max_width, set.min_output_stride, &scratch,
                            level, &se, &total);
    if (ret)
        return ret;

    /* The size is the caller's (often an image's): bounded before anything that large is
     * allocated, rather than failing, or swapping, late. */
    mo_limits lim;
    mo_limits_get(&lim);
    const double bytes = (double)total * sizeof(float) + (double)set.workspace_bytes;
    if (bytes > (double)lim.session_memory_bytes) {
        return mo_fail(MO_EUNSUPPORTED, "mo_session_open: a session for %dx%d inputs at output "
                       "stride %d needs %.0f MiB, over the limit session_memory_bytes (%.0f MiB)",
                       set.max_width, set.max_height, set.min_output_stride, bytes / 1048576.0,
                       (double)lim.session_memory_bytes / 1048576.0);
    }
    mo_session *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return mo_fail(MO_ENOMEM, "mo_session_open: out of memory");
    ss->mem = aligned_alloc(64, total * sizeof(float));
    if (!ss->mem) {
        free(ss);
        return mo_fail(MO_ENOMEM, "mo_session_open: out of memory for %zu floats", total);
    }
    float *p = ss->mem;
    ss->buf[0] = p;
    p += align16(scratch);
    ss->buf[1] = p;
    p += align16(scratch);
    for (int l = 0; l < MO_NUM_LEVELS; l++) {
        ss->level[l] = p;
        p += align16(level[l]);
    }
    ss->pooled = p;
    p += align16((size_t)bb->width[4]);
    ss->se_tmp = p;
    if (set.workspace_bytes) {
        if (set.workspace_bytes > SIZE_MAX - 63 ||
            !(ss->workspace = aligned_alloc(64, (set.workspace_bytes + 63) & ~(size_t)63))) {
            mo_session_close(&ss);
            return mo_fail(MO_ENOMEM, "mo_session_open: out of memory for a %zu-byte workspace",
                           set.workspace_bytes);
        }
        ss->workspace_bytes = set.workspace_bytes;
    }
    if (threads > 1 && mo_pool_create(&ss->pool, threads) != MO_OK) {
        mo_session_close(&ss);
        return mo_fail(MO_ENOMEM, "mo_session_open: could not start %d worker threads (out "
                                  "of memory or over the thread limit)", threads - 1);
    }
    ss->threads = threads;
    ss->bb = bb;
    ss->max_h = set.max_height;
    ss->max_w = set.max_width;
    ss->min_os = set.min_output_stride;
    *out = ss;
    return MO_OK;
}

void mo_session_close(mo_session **s)
{
    if (!s || !*s)
        return;
    mo_pool_destroy(&(*s)->pool);
    free((*s)->prof);
    free((*s)->mem);
    free((*s)->workspace);
    free(*s);
    *s = NULL;
}

void *mo_session_workspace(mo_session *s, size_t *bytes)
{
    if (bytes)
        *bytes = s ? s->workspace_bytes : 0;
    return s ? s->workspace : NULL;
}

int mo_session_threads(const mo_session *s)
{
    validate_input_or_ret(s, MO_EINVAL);
    return s->threads;
}

/* ------------------------------------------------------------------ profile */

/* Records reserved for the heads' operations, beyond the backbone's own. */
#define PROF_HEAD_OPS 256

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int mo_session_set_profile(mo_session *s, int on)
{
    validate_input_or_ret(s, MO_EINVAL);
    if (on && !s->prof) {
        int cap = 1 + PROF_HEAD_OPS; /* the final pooling */
        for (int i = 0; i < s->bb->nmod; i++)
            cap += 1 + (s->bb->mod[i].se_c > 0);
        if (!(s->prof = calloc((size_t)cap, sizeof(*s->prof))))
            return mo_fail(MO_ENOMEM, "mo_session_set_profile: out of memory");
        s->prof_cap = cap;
    }
    s->prof_on = !!on;
    return MO_OK;
}

int mo_session_profile(const mo_session *s, const mo_op_profile **ops, int *n, int *dropped)
{
    validate_input_or_ret(s && ops && n, MO_EINVAL);
    *ops = s->prof_n ? s->prof : NULL;
    *n = s->prof_n;
    if (dropped)
        *dropped = s->prof_dropped;
    return MO_OK;
}

void mo_session_profile_reset(mo_session *s)
{
    if (s)
        s->prof_n = s->prof_dropped = 0;
}

double mo_prof_begin(const mo_session *s)
{
    return s && s->prof_on ? now_ms() : 0.0;
}

static void prof_vadd(mo_session *s, double t0, const char *model, const char *kind, int h,
                      int w, int c, double flops, const char *fmt, va_list ap)
{
    const double t1 = now_ms();
    if (s->prof_n >= s->prof_cap) {
        s->prof_dropped++;
        return;
    }
    mo_op_profile *r = &s->prof[s->prof_n++];
    snprintf(r->model, sizeof(r->model), "%s", model);
    snprintf(r->kind, sizeof(r->kind), "%s", kind);
    vsnprintf(r->name, sizeof(r->name), fmt, ap);
    r->h = h;
    r->w = w;
    r->c = c;
    r->flops = flops;
    r->ms = t1 > t0 ? t1 - t0 : 0.0;
}

void mo_prof_end(mo_session *s, double t0, const char *model, const char *kind, int h, int w,
                 int c, double flops, const char *name_fmt, ...)
{
    if (!s || !s->prof_on || !t0)
        return;
    va_list ap;
    va_start(ap, name_fmt);
    prof_vadd(s, t0, model, kind, h, w, c, flops, name_fmt, ap);
    va_end(ap);
}

/* Share i of n of [0, total), boundaries on multiples of align (except at total). */
static void share(size_t total, int i, int n, size_t align, size_t *b, size_t *e)
{
    size_t lo = total * (size_t)i / (size_t)n, hi = total * (size_t)(i + 1) / (size_t)n;
    lo = i == 0 ? 0 : (lo + align / 2) / align * align;
    hi = i == n - 1 ? total : (hi + align / 2) / align * align;
    *b = lo < total ? lo : total;
    *e = hi < total ? hi : total;
    if (*e < *b)
        *e = *b;
}

void mo_share(size_t total, int i, int n, size_t align, size_t *b, size_t *e)
{
    share(total, i, n, align ? align : 1, b, e);
}

void mo_session_parallel(mo_session *s, void (*fn)(void *ctx, int i, int n), void *ctx,
                         size_t units, double macs)
{
    if (!s || !s->pool || macs < MIN_PARALLEL_MACS || units < 2) {
        fn(ctx, 0, 1);
        return;
    }
    const size_t most = (size_t)s->threads * CHUNKS_PER_THREAD;
    mo_pool_run(s->pool, fn, ctx, (int)(units < most ? units : most));
}

/*
 * Output channels [c0, c1) of a pointwise layer for every pixel (c0 a multiple of
 * MO_PW_NR): the bias written into dst, the accumulating kernel on those weight panels,
 * then the activation. The accumulating kernel gives each element the operations of the
 * plain one with the old dst value as the bias (mo_internal/conv.h), and the activation
 * is the same max / min on the same float, so these are the bits of the whole layer.
 */
static void pw_channels(const layer_job *j, int c0, int c1)
{
    const mo_module *m = j->m;
    const size_t cout = (size_t)m->cout, nc = (size_t)(c1 - c0);
    float *dst = j->dst + c0;
    for (size_t p = 0; p < j->npix; p++)
        memcpy(dst + p * cout, m->bias + c0, nc * sizeof(float));
    j->dsp->pw_acc(dst, (ptrdiff_t)cout, j->src, m->cin, j->npix, m->cin, c1 - c0,
                   m->weight + (size_t)c0 * m->cin);
    if (j->relu == MO_ACT_NONE)
        return;
    for (size_t p = 0; p < j->npix; p++) {
        float *x = dst + p * cout;
        for (size_t c = 0; c < nc; c++) {
            float v = x[c] > 0.0f ? x[c] : 0.0f;
            if (j->relu == MO_ACT_RELU6)
                v = v < 6.0f ? v : 6.0f;
            x[c] = v;
        }
    }
}

/* Share i of n of one layer (the whole layer when n == 1). */
static void layer_share(void *ctx, int i, int n)
{
    const layer_job *j = ctx;
    const mo_module *m = j->m;
    size_t b, e;
    switch (m->type) {
    case MO_MOD_STEM:
        share((size_t)j->oh, i, n, 1, &b, &e);
        if (e > b)
            j->dsp->stem3x3(j->dst, j->dst_stride, j->src, j->src_stride, j->ih, j->iw, m->cout,
                            m->weight, m->bias, j->relu, (int)b, (int)e);
        break;
    case MO_MOD_DW:
        share((size_t)j->oh, i, n, 1, &b, &e);
        if (e > b)
            j->dsp->dw3x3(j->dst, j->dst_stride, j->src, j->src_stride, j->ih, j->iw, m->cout,
                          j->stride, j->dil, m->weight, m->bias, j->relu, (int)b, (int)e);
        break;
    default:
        if (j->pw_by_channels) {
            share((size_t)(m->cout + MO_PW_NR - 1) / MO_PW_NR, i, n, 1, &b, &e);
            if (e > b)
                pw_channels(j, (int)b * MO_PW_NR,
                            (int)e * MO_PW_NR < m->cout ? (int)e * MO_PW_NR : m->cout);
            break;
        }
        /* pixel ranges on multiples of 12, whole register tiles of every kernel variant */
        share(j->npix, i, n, 12, &b, &e);
        if (e > b)
            j->dsp->pw(j->dst + b * m->cout, j->src + b * m->cin, e - b, m->cin, m->cout,
                       m->weight, m->bias, j->relu);
        break;
    }
}

/* Modules first_mod.. of the backbone on `cur` (h x w, `nominal` input pixels per pixel). */
static void run_modules(mo_session *s, int first_mod, const float *cur, ptrdiff_t cur_stride,
                        int h, int w, int nominal, int output_stride, mo_features *out)
{
    const mo_backbone *bb = s->bb;
    const mo_conv_dsp *dsp = &bb->dsp;
    /* profile: a resumed run (mo_backbone_run_from) is named by its output stride */
    const char *model = !first_mod ? "backbone" : output_stride == 8 ? "backbone/8" :
                        output_stride == 16 ? "backbone/16" : "backbone/32";

    for (int i = first_mod; i < bb->nmod; i++) {
        const mo_module *m = &bb->mod[i];
        const mod_geom g = module_geom(m, h, w, output_stride);
        const int last = m->stage > 0 && i == bb->stage_end[m->stage] - 1;
        float *dst = last ? s->level[m->stage - 1] : cur == s->buf[0] ? s->buf[1] : s->buf[0];
        const ptrdiff_t dst_stride = (ptrdiff_t)g.ow * m->cout;
        const size_t npix = (size_t)g.oh * g.ow;
        const int relu = !m->se_c; /* with SE, the ReLU comes after it */

        layer_job job = {.dsp = dsp, .m = m, .dst = dst, .src = cur, .dst_stride = dst_stride,
                         .src_stride = cur_stride, .ih = h, .iw = w, .oh = g.oh,
                         .stride = g.stride, .dil = g.dil, .relu = relu, .npix = npix};
        const double macs = (double)npix * m->cout *
                            (m->type == MO_MOD_PW ? m->cin : m->type == MO_MOD_DW ? 9 : 27);
        const double t0 = s->prof_on ? now_ms() : 0.0;
        if (s->pool && macs >= MIN_PARALLEL_MACS) {
            const size_t nt = (size_t)s->threads;
            size_t units = (size_t)g.oh;
            if (m->type == MO_MOD_PW) {
                const size_t panels = (size_t)(m->cout + MO_PW_NR - 1) / MO_PW_NR;
                job.pw_by_channels = npix < nt * PW_CH_SPLIT_PIX && panels >= 2 * nt;
                units = job.pw_by_channels ? panels : (npix + PW_MIN_CHUNK - 1) / PW_MIN_CHUNK;
            }
            const size_t most = nt * CHUNKS_PER_THREAD;
            mo_pool_run(s->pool, layer_share, &job, (int)(units < most ? units : most));
        } else
            layer_share(&job, 0, 1);
        const int mi = m->stage ? i - bb->stage_end[m->stage - 1] : 0;
        if (t0)
            mo_prof_end(s, t0, model, m->type == MO_MOD_STEM ? "conv3x3" :
                        m->type == MO_MOD_DW ? "dw3x3" : "pw", g.oh, g.ow, m->cout, 2 * macs,
                        m->stage ? "stage%d.%d.%s" : "stem", m->stage, mi,
                        m->type == MO_MOD_DW ? "dw" : "pw");
        if (m->se_c) {
            const double t1 = s->prof_on ? now_ms() : 0.0;
            dsp->se(dst, npix, m->cout, m->se_c, m->se_rw, m->se_rb, m->se_ew, m->se_eb,
                    s->se_tmp);
            /* mean (one add per element), two FC layers, scaling (one multiply each) */
            if (t1)
                mo_prof_end(s, t1, model, "se", g.oh, g.ow, m->cout,
                            2.0 * npix * m->cout + 4.0 * m->cout * m->se_c, "stage%d.%d.se",
                            m->stage, mi);
        }
        nominal *= g.stride; /* input pixels per output pixel, nominally */
        if (last) {
            const int l = m->stage - 1;
            out->level[l] = (mo_tensor){.data = dst, .h = g.oh, .w = g.ow, .c = m->cout,
                                        .row_stride = dst_stride};
            out->stride[l] = nominal;
        }
        cur = dst;
        cur_stride = dst_stride;
        h = g.oh;
        w = g.ow;
    }
    const mo_tensor *top = &out->level[MO_NUM_LEVELS - 1];
    const double t0 = s->prof_on ? now_ms() : 0.0;
    dsp->gap(s->pooled, top->data, (size_t)top->h * top->w, top->c);
    if (t0)
        mo_prof_end(s, t0, model, "gap", 1, 1, top->c, (double)top->h * top->w * top->c,
                    "gap");
    out->pooled = s->pooled;
}

static int check_stride(const mo_session *s, int output_stride, const char *fn)
{
    if (output_stride != 8 && output_stride != 16 && output_stride != 32)
        return mo_fail(MO_EINVAL, "%s: output stride %d is not 8, 16 or 32", fn,
                       output_stride);
    if (output_stride < s->min_os)
        return mo_fail(MO_EINVAL, "%s: output stride %d below the session minimum %d", fn,
                       output_stride, s->min_os);
    return MO_OK;
}

int mo_backbone_run(mo_session *s, const mo_tensor *input, int output_stride,
                    mo_features *out)
{
    validate_input_or_ret(s && input && out, MO_EINVAL);
    validate_input_or_ret(input->data, MO_EINVAL);
    if (input->c != 3)
        return mo_fail(MO_EINVAL, "mo_backbone_run: input has %d channels, expected 3",
                       input->c);
    if (input->h < 1 || input->w < 1 || input->h > s->max_h || input->w > s->max_w)
        return mo_fail(MO_EINVAL, "mo_backbone_run: input %dx%d outside 1x1..%dx%d (session)",
                       input->h, input->w, s->max_h, s->max_w);
    if (input->row_stride < (ptrdiff_t)input->w * 3)
        return mo_fail(MO_EINVAL, "mo_backbone_run: row_stride %td < width * 3",
                       input->row_stride);
    int r = check_stride(s, output_stride, "mo_backbone_run");
    if (r)
        return r;
    s->prof_n = s->prof_dropped = 0; /* a new profile list per frame */
    run_modules(s, 0, input->data, input->row_stride, input->h, input->w, 1, output_stride,
                out);
    return MO_OK;
}

int mo_backbone_run_from(mo_session *s, const mo_features *in, int level, int output_stride,
                         mo_features *out)
{
    validate_input_or_ret(s && in && out, MO_EINVAL);
    if (level < 0 || level >= MO_NUM_LEVELS - 1)
        return mo_fail(MO_EINVAL, "mo_backbone_run_from: level %d is not 0..%d", level,
                       MO_NUM_LEVELS - 2);
    int r = check_stride(s, output_stride, "mo_backbone_run_from");
    if (r)
        return r;
    /* Stage `level + 1` produced level[level]: it, and every stage before it, must have
     * run undilated at this output stride too, or the kept levels would be wrong. */
    for (int st = 1; st <= level + 1; st++)
        if (mo_stage_dilation(st, output_stride) != 1)
            return mo_fail(MO_EINVAL,
                           "mo_backbone_run_from: stage %d is dilated at output stride %d: "
                           "resume from level %d or lower",
                           st, output_stride, st - 2);
    const mo_backbone *bb = s->bb;
    const mo_tensor *t = &in->level[level];
    if (!t->data || t->c != bb->width[level + 1] || t->h < 1 || t->w < 1 ||
        t->row_stride != (ptrdiff_t)t->w * t->c || in->stride[level] != 4 << level)
        return mo_fail(MO_EINVAL,
                       "mo_backbone_run_from: level %d is not a packed stage output of this "
                       "backbone at its nominal stride", level);
    if (t->data != s->level[level])
        return mo_fail(MO_EINVAL, "mo_backbone_run_from: level %d was not computed by this "
                       "session", level);
    mo_features res = *in;
    run_modules(s, bb->stage_end[level + 1], t->data, t->row_stride, t->h, t->w,
                in->stride[level], output_stride, &res);
    *out = res;
    return MO_OK;
}
