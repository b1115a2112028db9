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
 * at open (mo_internal/pool.h), and an executor (mo_internal/exec.h) that the backbone and
 * every head run their ops on: each layer is one op, cut into chunks of output rows,
 * pixels or weight panels by the op alone, so the result does not depend on the number
 * of threads. Squeeze-excite and the final pooling run on the calling thread.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity: the CPUs this process may use */
#endif
#include "mobileone_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/backbone.h"
#include "mo_internal/errors.h"
#include "mo_internal/settings.h"
#include "mo_internal/meta.h"
#include "mo/limits.h"
#include "mo_internal/exec.h"
#include "mo_internal/pool.h"

#if defined(__linux__)
#include <sched.h>
#endif
#include <unistd.h>

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
    int threads;
    /* the pool (NULL with one thread) and the profile (mo_session_set_profile): records
     * allocated by the first call that turns it on, filled by the runs */
    mo_exec x;
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
    if (threads > 1 && mo_pool_create(&ss->x.pool, threads) != MO_OK) {
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
    mo_pool_destroy(&(*s)->x.pool);
    free((*s)->x.prof);
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

int mo_session_set_profile(mo_session *s, int on)
{
    validate_input_or_ret(s, MO_EINVAL);
    if (on && !s->x.prof) {
        int cap = 1 + PROF_HEAD_OPS; /* the final pooling */
        for (int i = 0; i < s->bb->nmod; i++)
            cap += 1 + (s->bb->mod[i].se_c > 0);
        if (!(s->x.prof = calloc((size_t)cap, sizeof(*s->x.prof))))
            return mo_fail(MO_ENOMEM, "mo_session_set_profile: out of memory");
        s->x.prof_cap = cap;
    }
    s->x.prof_on = !!on;
    return MO_OK;
}

int mo_session_profile(const mo_session *s, const mo_op_profile **ops, int *n, int *dropped)
{
    validate_input_or_ret(s && ops && n, MO_EINVAL);
    *ops = s->x.prof_n ? s->x.prof : NULL;
    *n = s->x.prof_n;
    if (dropped)
        *dropped = s->x.prof_dropped;
    return MO_OK;
}

void mo_session_profile_reset(mo_session *s)
{
    if (s)
        s->x.prof_n = s->x.prof_dropped = 0;
}

struct mo_exec *mo_session_exec(mo_session *s)
{
    return s ? &s->x : NULL;
}

/* Modules first_mod.. of the backbone on `cur` (h x w, `nominal` input pixels per pixel):
 * one op per module (and one for its squeeze-excite), then the pooling. */
static void run_modules(mo_session *s, int first_mod, const float *cur, ptrdiff_t cur_stride,
                        int h, int w, int nominal, int output_stride, mo_features *out)
{
    const mo_backbone *bb = s->bb;
    /* profile: a resumed run (mo_backbone_run_from) is named by its output stride */
    const char *model = !first_mod ? "backbone" : output_stride == 8 ? "backbone/8" :
                        output_stride == 16 ? "backbone/16" : "backbone/32";
    static const int kinds[] = {[MO_MOD_STEM] = MO_EXEC_STEM3X3, [MO_MOD_DW] = MO_EXEC_DW3X3,
                                [MO_MOD_PW] = MO_EXEC_PW};

    for (int i = first_mod; i < bb->nmod; i++) {
        const mo_module *m = &bb->mod[i];
        const mod_geom g = module_geom(m, h, w, output_stride);
        const int last = m->stage > 0 && i == bb->stage_end[m->stage] - 1;
        float *dst = last ? s->level[m->stage - 1] : cur == s->buf[0] ? s->buf[1] : s->buf[0];
        const int mi = m->stage ? i - bb->stage_end[m->stage - 1] : 0;
        const char *name = !m->stage ? "stem" : m->type == MO_MOD_DW ? "stage%d.%d.dw" :
                           "stage%d.%d.pw";
        mo_exec_op ops[2] = {
            {.kind = kinds[m->type], .dst = dst, .src = cur, .src_rs = cur_stride, .ih = h,
             .iw = w, .cin = m->cin, .cout = m->cout, .stride = g.stride, .dil = g.dil,
             .act = !m->se_c, /* with SE, the ReLU comes after it */
             .w = m->weight, .b = m->bias, .name = name, .arg = {m->stage, mi}},
            {.kind = MO_EXEC_SE, .dst = dst, .ih = g.oh, .iw = g.ow, .cout = m->cout,
             .se_c = m->se_c, .se_w = {m->se_rw, m->se_rb, m->se_ew, m->se_eb},
             .tmp = s->se_tmp, .name = "stage%d.%d.se", .arg = {m->stage, mi}}};
        mo_exec_run(&s->x, &bb->dsp, model, ops, m->se_c ? 2 : 1);
        nominal *= g.stride; /* input pixels per output pixel, nominally */
        const ptrdiff_t dst_stride = (ptrdiff_t)g.ow * m->cout;
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
    const mo_exec_op gap = {.kind = MO_EXEC_GAP, .dst = s->pooled, .src = top->data,
                            .ih = top->h, .iw = top->w, .cout = top->c, .name = "gap"};
    mo_exec_run(&s->x, &bb->dsp, model, &gap, 1);
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
    s->x.prof_n = s->x.prof_dropped = 0; /* a new profile list per frame */
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
