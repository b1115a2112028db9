/*
 * Internal to libmo_segment (not installed): the loaded head, the workspace layout and
 * the head's convolutions (seg_kernels.c).
 *
 * Every product runs on the backbone's pointwise kernels (core/include/mo_internal/conv.h, reached
 * through ::mo_conv_dsp, so the SIMD variant follows the CPU flags and
 * mo_set_cpu_flags_mask() like the backbone's): ::mo_pw_fn where a layer writes packed
 * rows from its bias, ::mo_pw_acc_fn where it adds into strided rows (ASPP branch outputs
 * side by side in one concatenation buffer). The dense 3x3 convolutions (ASPP's dilated
 * branches, the head's 3x3 conv) run on the table's ::mo_conv3x3_fn (padded taps skipped,
 * output pixels strided); seg_conv3x3_acc() below builds the same convolution from one
 * ::mo_pw_acc_fn product per tap, for the unclipped path (clip = 0) and the tests.
 */
#ifndef MO_SEG_INTERNAL_H
#define MO_SEG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mo_internal/conv.h"
#include "mo/segment.h"

/* ------------------------------------------------------------------ kernels */

/* Weights are packed for ::mo_pw_acc_fn / ::mo_pw_fn by the kernel table's
 * mo_pw_pack_strided() (mo_internal/conv.h), the backbone's packer. */

/*
 * dst += 3x3 convolution of src, stride 1, dilation = padding = rate, no bias, computed
 * with gemm (the dispatched ::mo_pw_acc_fn).
 * src: h x w x cin, pixel (y, x) at src + y * src_row + x * cin.
 * dst: h x w x cout, pixel (y, x) at dst + (y * w + x) * ldd.
 * bp9: the 9 taps (ky, kx row-major) packed by mo_pw_pack_strided(), mo_pw_packed_size(cin, cout)
 * floats each.
 * clip = 1: each tap runs only over the output pixels where it reads the image; a tap
 * that reads only padding (rate >= h or w) is skipped entirely.
 * clip = 0: every tap runs over every pixel, reading `zeros` (cin floats of 0) for the
 * padding; the result is equal (the tests check it: every element gets the same
 * operations, plus exact additions of 0), only slower.
 */
void seg_conv3x3_acc(mo_pw_acc_fn *gemm, float *dst, ptrdiff_t ldd, const float *src,
                     ptrdiff_t src_row, int h, int w, int cin, int cout, int rate,
                     const float *bp9, int clip, const float *zeros);

/* The same on output rows [ry0, ry1) only (0 <= ry0 <= ry1 <= h): every element gets the
 * operations it gets from seg_conv3x3_acc(), so rows can be split between threads. */
void seg_conv3x3_acc_rows(mo_pw_acc_fn *gemm, float *dst, ptrdiff_t ldd, const float *src,
                          ptrdiff_t src_row, int h, int w, int cin, int cout, int rate,
                          const float *bp9, int clip, const float *zeros, int ry0, int ry1);

/* Multiply-adds of seg_conv3x3_acc() on an h x w map. */
enum seg_tap_mode {
    SEG_TAPS_ALL = 0,   /* every tap over every pixel (zero padding computed) */
    SEG_TAPS_WHOLE = 1, /* taps that can only read padding skipped, others over all pixels */
    SEG_TAPS_CLIP = 2,  /* each tap over the pixels where it reads the image (what runs) */
};
uint64_t seg_conv3x3_macs(int h, int w, int cin, int cout, int rate, int mode);

/* --------------------------------------------------------------- the head */

struct mo_seg {
    int k;    /* classes */
    int cin;  /* backbone stage4 channels */
    int a;    /* ASPP branch channels */
    int hc;   /* 3x3 head conv channels */
    int nr;   /* dilated branches */
    int rates[MO_SEG_MAX_RATES];
    int os;   /* output stride the head was trained at */
    char **names;
    mo_conv_dsp dsp; /* the backbone's kernels for this CPU (at open) */
    float *mem; /* every weight below, one block */
    float *b0_w, *b0_b;                   /* 1x1 branch: packed cin -> a, bias */
    float *r_w[MO_SEG_MAX_RATES];         /* dilated branches: 9 packed taps cin -> a */
    float *r_b[MO_SEG_MAX_RATES];
    float *pool_w, *pool_b;               /* pooling branch: [a][cin] plain, bias */
    float *proj_w, *proj_b;               /* projection of branches 0..nr: packed (nr+1)a -> a */
    float *projp_w;                       /* projection of the pooling branch: [a][a] plain */
    float *head_w, *head_b;               /* 3x3 conv: 9 packed taps a -> hc */
    float *cls_w, *cls_b;                 /* classifier: packed hc -> k, bias */
};

/* Workspace of one run on an h x w feature map, in floats from the (64-byte aligned)
 * workspace start; every region starts on a 64-byte boundary. */
typedef struct seg_layout {
    size_t cat;    /* h w x max((nr+1) a, hc): branch outputs side by side, later the 3x3 conv */
    size_t proj;   /* h w x a: projection */
    size_t logits; /* h w x k */
    size_t pooled; /* cin: mean of the features */
    size_t pvec;   /* a: pooling branch output */
    size_t pbias;  /* a: projection bias + projection of the pooling branch */
    size_t zeros;  /* max(cin, a): padding for the unclipped path */
    size_t total;  /* floats in all; 0 when the size overflows */
} seg_layout;

seg_layout seg_workspace_layout(const mo_seg *seg, size_t npix);

/* The head at feature resolution (aspp.c). clip = 1: the dense 3x3 convs on ::mo_conv3x3_fn
 * (what runs); clip = 0: on seg_conv3x3_acc() with every tap over zero padding (the same
 * bits while both kernels give each element one multiply-add per input channel in order,
 * as the C, AVX2 and NEON ones do; the tests check it). ws holds
 * seg_workspace_layout(seg, h * w).total floats. Returns the logits (in ws). Each step is
 * recorded in the profile of `s` when it profiles (NULL: never). */
float *seg_forward(const mo_seg *seg, mo_session *s, const mo_tensor *x, float *ws, int clip);

#endif
