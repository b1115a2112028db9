/*
 * x86 SIMD variants of the kernels of mo_internal/conv.h (internal). Each has the signature of
 * its C reference and gives the same result up to float rounding (the variants use FMA,
 * and sum the taps in their own order); tests/checkdsp holds them to that.
 *
 * Picked by mo_conv_dsp_init() when its cpu_flags allow; compiled in a static library
 * per instruction set (-mavx2 -mfma; -mavx512f: dsp/x86/meson.build), so nothing else
 * in the SDK is built for those.
 *
 * Determinism: every variant computes each output element with the same sequence of
 * operations wherever it falls in the call (a full or a partial pixel tile, any row or
 * pixel range), so splitting a layer over threads gives bit-identical results.
 */
#ifndef MO_DSP_CONV_X86_H
#define MO_DSP_CONV_X86_H

#include "mo_internal/conv.h"

/* AVX2 + FMA (MO_CPU_AVX2), conv_avx2.c */
decl_stem3x3_fn(mo_stem3x3_avx2);
decl_dw3x3_fn(mo_dw3x3_avx2);
decl_pw_fn(mo_pw_avx2);
decl_pw_acc_fn(mo_pw_acc_avx2);
decl_gap_fn(mo_gap_avx2);
decl_se_fn(mo_se_avx2);

/* AVX-512F (MO_CPU_AVX512, with MO_CPU_AVX2), conv_avx512.c */
decl_stem3x3_fn(mo_stem3x3_avx512);
decl_dw3x3_fn(mo_dw3x3_avx512);
decl_pw_fn(mo_pw_avx512);
decl_pw_acc_fn(mo_pw_acc_avx512);

/* Dense 3x3 conv: conv3x3_avx2.c, conv3x3_avx512.c */
decl_conv3x3_fn(mo_conv3x3_avx2);
decl_conv3x3_fn(mo_conv3x3_avx512);

#endif
