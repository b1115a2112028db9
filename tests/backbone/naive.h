/*
 * Helpers shared by the backbone tests: a seeded RNG and a naive direct convolution
 * in double precision (the reference the kernels and the reparameterization are
 * checked against). Header-only, static functions.
 */
#ifndef MO_TEST_NAIVE_H
#define MO_TEST_NAIVE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline int irand(int lo, int hi) /* inclusive */
{
    return lo + (int)((frand() + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

/*
 * Naive grouped conv, NHWC input (row stride in_stride), PyTorch weight layout
 * [cout][cin/groups][k][k], optional bias and ReLU. Writes out[oh][ow][cout] and, if mag
 * is not NULL, the sum of |products| per element (for a rounding tolerance).
 */
static inline void naive_conv(double *out, double *mag, const float *in, ptrdiff_t in_stride,
                              int ih, int iw, int cin, int cout, int groups, int k, int stride,
                              int pad, int dil, const float *w, const float *bias, int relu)
{
    const int oh = (ih + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    const int ow = (iw + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    const int cpg = cin / groups, opg = cout / groups;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int co = 0; co < cout; co++) {
                const int g = co / opg;
                double acc = bias ? bias[co] : 0.0, m = bias ? fabs(bias[co]) : 0.0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        const int iy = y * stride - pad + ky * dil;
                        const int ix = x * stride - pad + kx * dil;
                        if (iy < 0 || iy >= ih || ix < 0 || ix >= iw)
                            continue;
                        for (int ci = 0; ci < cpg; ci++) {
                            const double a = in[iy * in_stride + ix * cin + g * cpg + ci];
                            const double b = w[(((size_t)co * cpg + ci) * k + ky) * k + kx];
                            acc += a * b;
                            m += fabs(a * b);
                        }
                    }
                if (relu && acc < 0)
                    acc = 0;
                const size_t o = ((size_t)y * ow + x) * cout + co;
                out[o] = acc;
                if (mag)
                    mag[o] = m;
            }
}

#endif
