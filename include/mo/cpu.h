/**
 * @file cpu.h
 * @brief CPU features the SDK's kernels use, and a mask to force lower instruction sets.
 *
 * The convolution kernels exist as a portable C reference and as SIMD variants (x86:
 * AVX2 + FMA, then AVX-512F for the convolutions; AArch64: NEON with FMA). Which ones run
 * is decided once per ::mo_backbone, when mo_backbone_open() is called: it takes the best variants allowed by
 * mo_get_cpu_flags(), that is by the features the running CPU (and OS) support,
 * restricted by the mask of mo_set_cpu_flags_mask(). Every variant gives the result of the C reference up to float
 * rounding (tests/checkdsp).
 *
 * Typical use: `mo_set_cpu_flags_mask(0)` before opening a backbone to run the plain C
 * kernels (e.g. to compare outputs or time the SIMD gain), `mo_set_cpu_flags_mask(
 * MO_CPU_FLAG_AVX2)` to stop at AVX2; `mo_set_cpu_flags_mask(~0u)` restores the default.
 * On AArch64 `mo_set_cpu_flags_mask(0)` (or any mask without ::MO_CPU_FLAG_NEON) gives the
 * C kernels.
 */
#ifndef MO_CPU_H
#define MO_CPU_H

#include "mo/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** CPU feature bits of mo_get_cpu_flags() and mo_set_cpu_flags_mask(). */
enum mo_cpu_flag {
    MO_CPU_FLAG_SSE41 = 1u << 0,  /**< x86 SSE4.1 (no kernel uses it yet) */
    MO_CPU_FLAG_AVX2 = 1u << 1,   /**< x86 AVX2 together with FMA3, with OS support for YMM state */
    MO_CPU_FLAG_AVX512 = 1u << 2, /**< x86 AVX-512F, used together with ::MO_CPU_FLAG_AVX2
                                       (masking AVX2 off also stops AVX-512) */
    MO_CPU_FLAG_NEON = 1u << 8,   /**< Arm AdvSIMD (NEON) with FMA: always present on AArch64 */
    MO_CPU_FLAG_DOTPROD = 1u << 9, /**< Arm dot-product instructions (FEAT_DotProd, Linux
                                        HWCAP_ASIMDDP): detected, for later kernels */
    MO_CPU_FLAG_FP16 = 1u << 10,   /**< Arm half-precision arithmetic (FEAT_FP16, Linux
                                        HWCAP_ASIMDHP): detected, for later kernels */
};

/**
 * @brief Features of the running CPU that this build of the SDK can use, restricted by
 *        the mask of mo_set_cpu_flags_mask().
 *
 * Only features the library was built with kernels for are reported (none when it was
 * configured with `-Dsimd=disabled`); on AArch64, ::MO_CPU_FLAG_DOTPROD and
 * ::MO_CPU_FLAG_FP16 are reported with ::MO_CPU_FLAG_NEON for later kernels (Linux and
 * Android only). Detection runs once; the call is cheap and thread-safe.
 * @return a combination of ::mo_cpu_flag bits (0: the portable C kernels only)
 */
MO_API unsigned mo_get_cpu_flags(void);

/**
 * @brief Restrict the CPU features the SDK may use, process-wide.
 *
 * Affects backbones opened after the call (each picks its kernels in mo_backbone_open()
 * and keeps them); backbones already open are unchanged. Bits the CPU lacks are ignored:
 * a mask can only remove features, never add them. Thread-safe.
 * @param mask ::mo_cpu_flag bits to allow; 0 forces the C reference, `~0u` (the default)
 *        allows everything detected
 */
MO_API void mo_set_cpu_flags_mask(unsigned mask);

#ifdef __cplusplus
}
#endif
#endif
