/*
 * Dense 3x3 convolution (contract: decl_conv3x3_fn in mo_internal/conv.h): the portable C
 * reference, the weight packing and the choice of variant.
 *
 * The reference is the definition written out: per output row, each tap that reads the
 * image is one accumulating pointwise product (mo_pw_acc_c) over the run of columns where
 * it does, reading every stride-th input pixel. Each element thus gets its start value,
 * then its valid taps in order, each over the input channels in order.
 */
#include "mo_internal/conv.h"

#include <string.h>

#if defined(MO_HAVE_AVX2)
#include "x86/conv_x86.h"
#endif
#if defined(MO_HAVE_NEON)
#include "arm/conv_arm.h"
#endif

size_t mo_conv3x3_packed_size(int cin, int cout)
{
    return 9 * mo_pw_packed_size(cin, cout);
}

void mo_conv3x3_pack(float *dst, const float *w, int cin, int cout)
{
    const size_t tap = mo_pw_packed_size(cin, cout);
    for (int t = 0; t < 9; t++)
        mo_pw_pack_strided(dst + (size_t)t * tap, w + t, cin, cout, (ptrdiff_t)9 * cin, 9);
}

decl_conv3x3_fn(mo_conv3x3_c)
{
    const int ow = MO_CONV_OUT(iw, stride);
    const size_t tap = mo_pw_packed_size(cin, cout);
    for (int y = y0; y < y1; y++) {
        float *drow = dst + (ptrdiff_t)y * dst_stride;
        if (bias)
            for (int x = 0; x < ow; x++)
                memcpy(drow + (ptrdiff_t)x * dst_pixel, bias, (size_t)cout * sizeof(float));
        for (int t = 0; t < 9; t++) {
            const int dy = (t / 3 - 1) * dil, dx = (t % 3 - 1) * dil;
            const int iy = y * stride + dy;
            if (iy < 0 || iy >= ih)
                continue;
            int xa, xb;
            mo_conv3x3_range(iw, stride, dx, &xa, &xb);
            if (xa == xb)
                continue;
            mo_pw_acc_c(drow + (ptrdiff_t)xa * dst_pixel, dst_pixel,
                        src + (ptrdiff_t)iy * src_stride + ((ptrdiff_t)xa * stride + dx) * cin,
                        (ptrdiff_t)stride * cin, (size_t)(xb - xa), cin, cout,
                        weight + (size_t)t * tap);
        }
        if (relu)
            for (int x = 0; x < ow; x++) {
                float *restrict o = drow + (ptrdiff_t)x * dst_pixel;
                for (int co = 0; co < cout; co++) {
                    float v = o[co] > 0.0f ? o[co] : 0.0f;
                    if (relu == MO_ACT_RELU6)
                        v = v < 6.0f ? v : 6.0f;
                    o[co] = v;
                }
            }
    }
}

void mo_conv3x3_dsp_init(mo_conv_dsp *dsp, unsigned cpu_flags)
{
    dsp->conv3x3 = mo_conv3x3_c;
    (void)cpu_flags;
#if defined(MO_HAVE_AVX2)
    if (!(cpu_flags & MO_CPU_AVX2))
        return;
    dsp->conv3x3 = mo_conv3x3_avx2;
#endif
#if defined(MO_HAVE_AVX512)
    if (!(cpu_flags & MO_CPU_AVX512))
        return;
    dsp->conv3x3 = mo_conv3x3_avx512;
#endif
#if defined(MO_HAVE_NEON)
    if (!(cpu_flags & MO_CPU_NEON))
        return;
    dsp->conv3x3 = mo_conv3x3_neon;
#endif
}
