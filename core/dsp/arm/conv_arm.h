/*
 * AArch64 SIMD variants of the kernels of mo_internal/conv.h (internal). Each has the signature of
 * its C reference and gives the same result up to float rounding (the variants use FMA,
 * and sum in their own order); tests/checkdsp holds them to that.
 *
 * Picked by mo_conv_dsp_init() when its cpu_flags have MO_CPU_NEON (always true on an
 * AArch64 CPU; masked off with mo_set_cpu_flags_mask()). AdvSIMD is part of the AArch64
 * base architecture, so dsp/arm/meson.build needs no -m flag.
 *
 * Determinism: as for the x86 variants, every output element gets the same sequence of
 * operations wherever it falls in the call, so splitting a layer over threads gives
 * bit-identical results.
 */
#ifndef MO_DSP_CONV_ARM_H
#define MO_DSP_CONV_ARM_H

#include "mo_internal/conv.h"

/* AdvSIMD fp32 with FMA (MO_CPU_NEON), conv_neon.c */
decl_stem3x3_fn(mo_stem3x3_neon);
decl_dw3x3_fn(mo_dw3x3_neon);
decl_pw_fn(mo_pw_neon);
decl_pw_acc_fn(mo_pw_acc_neon);
decl_gap_fn(mo_gap_neon);
decl_se_fn(mo_se_neon);

/* Dense 3x3 conv: conv3x3_neon.c */
decl_conv3x3_fn(mo_conv3x3_neon);

#endif
