/*
 * The op executor (internal; core/exec.c in libmo_core): the backbone and every head run
 * their layers as arrays of op descriptors through mo_exec_run(), on the session's pool.
 *
 * An op is one call of the kernel table (mo_internal/conv.h, mo_internal/ops.h) over a
 * whole tensor: a pointwise GEMM, a depthwise, stem or dense 3x3 conv, a GEMV, a global
 * mean, squeeze-excite, an activation, a bilinear upsampling (to labels by argmax and/or
 * to softmax probabilities), a softmax over rows, or a head's own chunked callback. The
 * executor cuts it into chunks (output rows, pixels, weight panels, channels or outputs)
 * and runs them on the pool; each op's record goes into the per-operation profile
 * (mo_session_set_profile(), what mo-bench prints).
 *
 * Bit-identical for any thread count: the chunks of an op are a function of the op alone
 * (its kind, sizes and multiply-adds; never of the threads), every kernel gives each
 * element the same operations whatever range of rows, pixels or channels it is asked
 * for, and no op splits a sum. A thread count only decides which thread runs a chunk;
 * consecutive chunks may run as one call (one thread, no pool: all of them; on a pool,
 * the chunks a thread claims at once), whose range is still a union of chunks of that
 * partition.
 *
 * Adding a layer to a head is adding an op to its array: no job struct, no pool call, no
 * profiling code. An op needs only the fields its kind reads (listed per kind below);
 * zero elsewhere.
 */
#ifndef MO_INTERNAL_EXEC_H
#define MO_INTERNAL_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "mo/backbone.h" /* mo_op_profile */
#include "mo_internal/conv.h"
#include "mo_internal/pool.h"

/* What an op computes, and the fields it reads (besides the profile fields). Strides are
 * in floats; a stride of 0 means packed (the natural value given in brackets). */
typedef enum mo_exec_kind {
    /* dst[p][co] = act(b[co] + sum_ci src[p][ci] W[co][ci]) over ih x iw pixels: dst
     * (dst_rs [iw * dst_ps], dst_ps [cout]), src (src_rs [iw * cin]), ih, iw, cin, cout,
     * w (mo_pw_pack()), b, act. Packed dst and src: the kernel's plain GEMM, chunks of
     * pixels (or of weight panels on small maps); otherwise the bias is written and the
     * accumulating GEMM adds onto the strided pixels, chunks of rows. */
    MO_EXEC_PW,
    /* depthwise 3x3: dst (dst_rs [ow * cout]), src (src_rs [iw * cout]), ih, iw, cout,
     * stride, dil [1], w (mo_dw_pack()), b, act; chunks of output rows */
    MO_EXEC_DW3X3,
    /* the backbone's stem (3 -> cout, stride 2): dst, dst_rs, src, src_rs, ih, iw, cout, w,
     * b, act; chunks of output rows */
    MO_EXEC_STEM3X3,
    /* dense 3x3 (decl_conv3x3_fn): dst (dst_rs [ow * dst_ps], dst_ps [cout]), src (src_rs),
     * ih, iw, cin, cout, stride, dil [1], w (mo_conv3x3_pack()), b (NULL: accumulate),
     * act; chunks of output rows */
    MO_EXEC_CONV3X3,
    /* dst[j] = act(b[j] + sum_i w[j][i] src[i]), j < cout, i < cin; chunks of outputs */
    MO_EXEC_GEMV,
    /* the backbone's global average pool (decl_gap_fn): dst, src (packed ih x iw x cout);
     * one chunk */
    MO_EXEC_GAP,
    /* mean in double (decl_mean_fn): dst, src, src_rs, ih, iw, cin; chunks of channels */
    MO_EXEC_MEAN,
    /* squeeze-excite + ReLU in place (decl_se_fn): dst (packed ih x iw x cout), se_c,
     * se_w[4] (reduce weight, bias, expand weight, bias), tmp; one chunk */
    MO_EXEC_SE,
    /* act in place on the first cout floats of each pixel: dst, dst_rs [iw * dst_ps],
     * dst_ps [cout], ih, iw, cout, act; chunks of rows */
    MO_EXEC_ACT,
    /* bilinear upsampling (align_corners=False) of src (ih x iw x cin, src_rs) to oh x ow:
     * labels (argmax, row stride labels_rs bytes [ow]) and/or probs (softmax over the cin
     * classes, packed oh x ow x cin); chunks of output rows */
    MO_EXEC_UPSAMPLE,
    /* softmax of ih rows of cin floats (src, src_rs [cin]) into dst + r dst_rs + j dst_cs
     * (dst_rs [cin], dst_cs [1]); chunks of rows */
    MO_EXEC_SOFTMAX,
    /* fn(ctx, b, e) on units [b, e) of [0, units), inner chunk boundaries on multiples of
     * align [1], chunked by macs (the op's multiply-adds: 0 runs it as one chunk); fn must
     * give every unit the same operations whatever range it gets */
    MO_EXEC_CALL,
} mo_exec_kind;

typedef struct mo_exec_op {
    int kind; /* mo_exec_kind */
    float *dst;
    ptrdiff_t dst_rs, dst_ps, dst_cs;
    const float *src;
    ptrdiff_t src_rs;
    int ih, iw, oh, ow, cin, cout, stride, dil, act;
    const float *w, *b;
    /* MO_EXEC_SE */
    int se_c;
    const float *se_w[4];
    float *tmp;
    /* MO_EXEC_UPSAMPLE */
    uint8_t *labels;
    ptrdiff_t labels_rs;
    float *probs;
    /* MO_EXEC_CALL */
    void (*fn)(void *ctx, size_t b, size_t e);
    void *ctx;
    size_t units, align;
    double macs;
    /* Profile record: name (a printf format taking the three ints of arg) and, when
     * non-zero, overrides of the kind's defaults: prof_kind (e.g. "pw", "dw3x3"), flops
     * (2 x multiply-adds of the kind, all taps), the shape (output h, w, c). An op with
     * no name is timed into the record of the op before it (flops and shape are that
     * op's): one record for a short sequence. */
    const char *name;
    int arg[3];
    const char *prof_kind;
    double flops;
    int prof_h, prof_w, prof_c;
} mo_exec_op;

/* Where ops run and are recorded: a session holds one (mo_session_exec()). */
typedef struct mo_exec {
    mo_pool *pool; /* NULL: every op on the calling thread */
    int prof_on;   /* record each op into prof */
    int prof_cap, prof_n, prof_dropped;
    mo_op_profile *prof;
} mo_exec;

/*
 * Run ops[0 .. n-1] in order on dsp's kernels, each split over x's pool (x NULL: on the
 * caller, nothing recorded); returns when the last is done. `model` names the records
 * ("backbone", "det", ...). Makes no allocation and no system call beyond the pool's.
 */
MO_API void mo_exec_run(mo_exec *x, const mo_conv_dsp *dsp, const char *model,
                        const mo_exec_op *ops, int n);

/* Chunks op is cut into (>= 1; the same for every thread count). */
MO_API int mo_exec_chunks(const mo_exec_op *op);

/* Profile of code outside the ops (post-processing): t0 = mo_exec_prof_begin(x) (0 when
 * x is NULL or does not profile), then if (t0) mo_exec_prof_end(x, t0, ...) appends a
 * record; beyond prof_cap records, prof_dropped counts them. */
MO_API double mo_exec_prof_begin(const mo_exec *x);
MO_API void mo_exec_prof_end(mo_exec *x, double t0, const char *model, const char *kind, int h,
                             int w, int c, double flops, const char *name_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 9, 10)))
#endif
    ;

#endif
