/*
 * CPU feature detection and the process-wide mask (include/mo/cpu.h).
 *
 * Only features the build has kernels for are reported: MO_HAVE_AVX2 and MO_HAVE_AVX512
 * are defined by core/meson.build when core/dsp/x86 is compiled (option simd).
 * AVX-512 is reported only together with AVX2 (the kernels form a ladder). GCC's and clang's
 * __builtin_cpu_supports() check the OS's XSAVE support of YMM state as well as CPUID.
 *
 * AArch64 (MO_HAVE_NEON, core/dsp/arm): AdvSIMD is part of the base architecture, so
 * NEON is always reported. Dot product and fp16 arithmetic are optional; on Linux and
 * Android the kernel reports them in the AT_HWCAP auxiliary vector (getauxval), which is
 * read without executing any of those instructions. Elsewhere (e.g. Apple) they are not
 * reported yet. No kernel uses them yet.
 */
#include "mo/cpu.h"

#include <stdatomic.h>

#if defined(MO_HAVE_NEON) && defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
/* Bits of AT_HWCAP on arm64 Linux (asm/hwcap.h; given here for older headers). */
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1ul << 10)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#endif

#include "mo_internal/conv.h"

/* The public bits and the ones mo_conv_dsp_init() takes are the same numbers. */
_Static_assert((unsigned)MO_CPU_FLAG_SSE41 == MO_CPU_SSE41 &&
                   (unsigned)MO_CPU_FLAG_AVX2 == MO_CPU_AVX2 &&
                   (unsigned)MO_CPU_FLAG_AVX512 == MO_CPU_AVX512 &&
                   (unsigned)MO_CPU_FLAG_NEON == MO_CPU_NEON &&
                   (unsigned)MO_CPU_FLAG_DOTPROD == MO_CPU_DOTPROD &&
                   (unsigned)MO_CPU_FLAG_FP16 == MO_CPU_FP16,
               "mo/cpu.h and mo_internal/conv.h disagree on CPU flag bits");

static atomic_uint cpu_mask = ~0u;

static unsigned detect(void)
{
    unsigned flags = 0;
#if defined(MO_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        flags |= MO_CPU_FLAG_AVX2;
#endif
#if defined(MO_HAVE_AVX512) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if ((flags & MO_CPU_FLAG_AVX2) && __builtin_cpu_supports("avx512f"))
        flags |= MO_CPU_FLAG_AVX512;
#endif
#if defined(MO_HAVE_NEON) && defined(__aarch64__)
    flags |= MO_CPU_FLAG_NEON;
#if defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    if (hw & HWCAP_ASIMDDP)
        flags |= MO_CPU_FLAG_DOTPROD;
    if (hw & HWCAP_ASIMDHP)
        flags |= MO_CPU_FLAG_FP16;
#endif
#endif
    return flags;
}

unsigned mo_get_cpu_flags(void)
{
    return detect() & atomic_load_explicit(&cpu_mask, memory_order_relaxed);
}

void mo_set_cpu_flags_mask(unsigned mask)
{
    atomic_store_explicit(&cpu_mask, mask, memory_order_relaxed);
}
