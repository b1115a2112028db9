/*
 * checkdsp: every kernel of core/include/mo_internal/conv.h, for every instruction set that both
 * this build and the running CPU have, against the C reference (the `_c` kernels are the
 * specification). The idea is dav1d's checkasm: for each ISA level, the kernels that
 * mo_conv_dsp_init() replaces at that level (function pointer differs from the level
 * below) are run on the same inputs as the reference and compared.
 *
 * Inputs: random data of four kinds (uniform in [-1, 1]; large values with exponents
 * from 2^-10 to 2^10; all-negative conv outputs, so the ReLU zeroes everything; half
 * zeros) on edge-case geometry: sides 1..n that are not multiples of 8, odd strides,
 * dilations beyond the map size, channel counts around the vector width and MO_PW_NR,
 * padded row strides, and every activation mode the reference has. Buffers end (or
 * start) at an inaccessible page, so a read or write outside them crashes, and row
 * padding is filled with a sentinel that must survive.
 *
 * Tolerance (per output element): |new - c| <= 1e-5 * (|b| + sum |w x|), the sum over the
 * products that make the element, computed by running the reference on absolute values.
 * A float dot product of K terms is off by at most about K * 2^-24 of that sum, and by
 * sqrt(K) * 2^-24 typically; the bound leaves room for K up to a few thousand. SE: 1e-5 *
 * (1 + |x|). Pooling: 1e-6 * (1 + mean |x|).
 *
 * Determinism (what bit-identical threading relies on): each variant must give exactly
 * the same bits when a layer is computed in several row or pixel ranges, in any order.
 *
 * Usage: checkdsp [--seed N] [--kernel NAME] [--bench [--runs N]]
 *   --bench times each kernel per ISA on MobileOne layer shapes (224x224 input) instead.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mo_internal/conv.h"
#include "mo/cpu.h"

/* ------------------------------------------------------------------ setup */

typedef struct isa_level {
    const char *name;
    unsigned flags; /* cumulative: what mo_conv_dsp_init() gets for this level */
    unsigned below; /* the flags of the level it builds on (0: the C reference) */
} isa_level;

/* One ladder per architecture; a build and CPU has the levels of its own only. */
static const isa_level levels[] = {
    {"c", 0, 0},
    {"avx2", MO_CPU_AVX2, 0},
    {"avx512", MO_CPU_AVX2 | MO_CPU_AVX512, MO_CPU_AVX2},
    {"neon", MO_CPU_NEON, 0},
};
#define NLEVELS ((int)(sizeof(levels) / sizeof(levels[0])))

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static int irand(int lo, int hi) /* inclusive */
{
    return lo + (int)(rnd32() % (uint32_t)(hi - lo + 1));
}

static float frand(void) /* [-1, 1) */
{
    return (float)((double)rnd32() / 2147483648.0 - 1.0);
}

static int failures;

/* The case being run, printed if a kernel crashes (reads or writes past a buffer). */
static char current[256];

static void on_crash(int sig)
{
    static const char msg[] = "CRASH in ";
    (void)!write(2, msg, sizeof(msg) - 1);
    (void)!write(2, current, strlen(current));
    (void)!write(2, "\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}
static int act_modes = 2; /* activation values 0 .. act_modes-1 the reference defines */

#define SENTINEL 0x7fc0de5au /* a quiet NaN no kernel produces */

/* ------------------------------------------------------- guarded buffers */

/*
 * A buffer of n floats placed against an inaccessible page: after its end (at_end) or
 * before its start, so reads and writes past either side fault.
 */
typedef struct gbuf {
    void *map;
    size_t len;
    float *p;
} gbuf;

static size_t page_size(void)
{
    static size_t ps;
    if (!ps)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

static float *galloc(gbuf *g, size_t n, int at_end)
{
    const size_t ps = page_size(), bytes = (n ? n : 1) * sizeof(float);
    const size_t body = (bytes + ps - 1) / ps * ps;
    g->len = body + 2 * ps;
    g->map = mmap(NULL, g->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    char *b = (char *)g->map + ps;
    if (mprotect(b, body, PROT_READ | PROT_WRITE)) {
        perror("mprotect");
        exit(2);
    }
    g->p = (float *)(at_end ? b + body - bytes : b);
    return g->p;
}

static void gfree(gbuf *g)
{
    if (g->map)
        munmap(g->map, g->len);
    g->map = NULL;
}

static float *gcopy(gbuf *g, const float *src, size_t n, int at_end)
{
    float *p = galloc(g, n, at_end);
    memcpy(p, src, n * sizeof(float));
    return p;
}

static void fill_sentinel(float *p, size_t n)
{
    const uint32_t s = SENTINEL;
    for (size_t i = 0; i < n; i++)
        memcpy(p + i, &s, sizeof(s));
}

static int is_sentinel(const float *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v == SENTINEL;
}

/* -------------------------------------------------------------- data */

enum { DATA_UNIFORM, DATA_LARGE, DATA_NEGATIVE, DATA_SPARSE, DATA_KINDS };
static const char *const data_names[DATA_KINDS] = {"uniform", "large", "negative", "sparse"};

/* Fill in, weights, bias for a data kind. "negative": inputs >= 0, weights >= 0, bias
 * < 0 is not enough to make outputs negative, so inputs are >= 0 and weights <= 0. */
static void fill(float *p, size_t n, int kind, int role /* 0 input, 1 weight, 2 bias */)
{
    for (size_t i = 0; i < n; i++) {
        float v = frand();
        switch (kind) {
        case DATA_LARGE:
            v = ldexpf(v, irand(-10, 10));
            break;
        case DATA_NEGATIVE:
            v = role == 0 ? fabsf(v) : -fabsf(v);
            break;
        case DATA_SPARSE:
            if (rnd32() & 1)
                v = 0.0f;
            break;
        default:
            break;
        }
        p[i] = v;
    }
}

static float *abs_copy(const float *p, size_t n)
{
    float *q = malloc((n ? n : 1) * sizeof(float));
    if (!q)
        exit(2);
    for (size_t i = 0; i < n; i++)
        q[i] = fabsf(p[i]);
    return q;
}

static float *xmalloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p)
        exit(2);
    return p;
}

/* ------------------------------------------------------------ comparing */

typedef struct stats {
    long cases;
    double worst; /* largest |new - c| / bound seen, in units of the tolerance */
} stats;

/*
 * Compare rows x cols (row stride `stride`) of got with want: |got - want| <= tol *
 * mag[i] + abs_tol (mag with the same layout as want, NULL for abs_tol only). Elements of
 * got in the row padding, from cols to stride, must still be the sentinel.
 */
static int compare(const char *what, const float *got, const float *want, const float *mag,
                   int rows, size_t cols, ptrdiff_t stride, double tol, double abs_tol,
                   stats *st)
{
    for (int y = 0; y < rows; y++)
        for (size_t x = 0; x < (size_t)stride; x++) {
            const size_t i = (size_t)y * stride + x;
            if (x >= cols) {
                if (!is_sentinel(got + i)) {
                    printf("FAIL %s: wrote into row padding at row %d col %zu\n", what, y, x);
                    return 1;
                }
                continue;
            }
            const double bound = tol * (mag ? (double)mag[i] : 0.0) + abs_tol;
            const double d = fabs((double)got[i] - (double)want[i]);
            if (!(d <= bound)) {
                printf("FAIL %s: row %d col %zu: got %.9g, c %.9g (diff %.3g > %.3g)\n", what,
                       y, x, got[i], want[i], d, bound);
                return 1;
            }
            if (bound > 0 && d / bound > st->worst)
                st->worst = d / bound;
        }
    return 0;
}

static int same_bits(const char *what, const float *a, const float *b, size_t n)
{
    if (!memcmp(a, b, n * sizeof(float)))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float))) {
            printf("FAIL %s: split call differs at element %zu (%.9g vs %.9g)\n", what, i,
                   a[i], b[i]);
            break;
        }
    return 1;
}

/* Split [0, n) at up to two random points; returns the number of ranges (1..3). */
static int split_ranges(int n, int r[4])
{
    int a = irand(0, n), b = irand(0, n);
    if (a > b) {
        const int t = a;
        a = b;
        b = t;
    }
    r[0] = 0;
    r[1] = a;
    r[2] = b;
    r[3] = n;
    return 3;
}

/* ------------------------------------------------------------------- stem */

static void check_stem_case(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                            int ih, int iw, int cout, int pad_in, int pad_out, int relu,
                            int kind, stats *st)
{
    const int oh = MO_CONV_OUT(ih, 2), ow = MO_CONV_OUT(iw, 2);
    const ptrdiff_t ss = (ptrdiff_t)iw * 3 + pad_in, ds = (ptrdiff_t)ow * cout + pad_out;
    const size_t nin = (size_t)ih * ss, nout = (size_t)oh * ds;
    float *in = xmalloc(nin), *w = xmalloc(27 * (size_t)cout), *b = xmalloc((size_t)cout);
    float *wp = xmalloc(27 * (size_t)cout);
    fill(in, nin, kind, 0);
    fill(w, 27 * (size_t)cout, kind, 1);
    fill(b, (size_t)cout, kind, 2);
    mo_stem_pack(wp, w, cout);
    const int e = rnd32() & 1;
    gbuf gi, gw, gb, gd, gs;
    const float *gin = gcopy(&gi, in, nin, e), *gwp = gcopy(&gw, wp, 27 * (size_t)cout, !e);
    const float *gbias = gcopy(&gb, b, (size_t)cout, e);
    float *got = galloc(&gd, nout, !e), *split = galloc(&gs, nout, e);
    float *want = xmalloc(nout), *mag = xmalloc(nout);
    fill_sentinel(got, nout);
    fill_sentinel(split, nout);
    ref->stem3x3(want, ds, in, ss, ih, iw, cout, wp, b, relu, 0, oh);
    float *ain = abs_copy(in, nin), *awp = abs_copy(wp, 27 * (size_t)cout),
          *ab = abs_copy(b, (size_t)cout);
    ref->stem3x3(mag, ds, ain, ss, ih, iw, cout, awp, ab, 0, 0, oh);
    char what[160];
    snprintf(what, sizeof(what), "stem %s: %dx%d cout %d pad %d/%d act %d %s", isa, ih, iw,
             cout, pad_in, pad_out, relu, data_names[kind]);
    memcpy(current, what, sizeof(what));
    dut->stem3x3(got, ds, gin, ss, ih, iw, cout, gwp, gbias, relu, 0, oh);
    int r[4];
    const int nr = split_ranges(oh, r);
    for (int k = nr - 1; k >= 0; k--)
        dut->stem3x3(split, ds, gin, ss, ih, iw, cout, gwp, gbias, relu, r[k], r[k + 1]);
    failures += compare(what, got, want, mag, oh, (size_t)ow * cout, ds, 1e-5, 0.0, st);
    failures += same_bits(what, got, split, nout);
    st->cases++;
    free(in); free(w); free(b); free(wp); free(want); free(mag); free(ain); free(awp); free(ab);
    gfree(&gi); gfree(&gw); gfree(&gb); gfree(&gd); gfree(&gs);
}

static void check_stem(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                       stats *st)
{
    static const int couts[] = {1, 3, 7, 8, 9, 15, 16, 17, 24, 33, 48, 64};
    for (int ih = 1; ih <= 9; ih++)
        for (int iw = 1; iw <= 9; iw++)
            check_stem_case(ref, dut, isa, ih, iw, couts[irand(0, 11)], irand(0, 5),
                            irand(0, 9), irand(0, act_modes - 1), irand(0, DATA_KINDS - 1), st);
    for (int i = 0; i < 12; i++)
        for (int kind = 0; kind < DATA_KINDS; kind++)
            check_stem_case(ref, dut, isa, irand(10, 40), irand(10, 40), couts[i],
                            irand(0, 1) * irand(1, 7), irand(0, 1) * irand(1, 9),
                            irand(0, act_modes - 1), kind, st);
    check_stem_case(ref, dut, isa, 224, 224, 48, 0, 0, 1, DATA_UNIFORM, st);
    check_stem_case(ref, dut, isa, 97, 131, 64, 3, 5, 1, DATA_LARGE, st);
}

/* -------------------------------------------------------------- depthwise */

static void check_dw_case(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                          int ih, int iw, int c, int stride, int dil, int pad_in, int pad_out,
                          int relu, int kind, stats *st)
{
    const int oh = MO_CONV_OUT(ih, stride), ow = MO_CONV_OUT(iw, stride);
    const ptrdiff_t ss = (ptrdiff_t)iw * c + pad_in, ds = (ptrdiff_t)ow * c + pad_out;
    const size_t nin = (size_t)ih * ss, nout = (size_t)oh * ds, nw = 9 * (size_t)c;
    float *in = xmalloc(nin), *w = xmalloc(nw), *b = xmalloc((size_t)c), *wp = xmalloc(nw);
    fill(in, nin, kind, 0);
    fill(w, nw, kind, 1);
    fill(b, (size_t)c, kind, 2);
    mo_dw_pack(wp, w, c);
    const int e = rnd32() & 1;
    gbuf gi, gw, gb, gd, gs;
    const float *gin = gcopy(&gi, in, nin, e), *gwp = gcopy(&gw, wp, nw, !e);
    const float *gbias = gcopy(&gb, b, (size_t)c, e);
    float *got = galloc(&gd, nout, !e), *split = galloc(&gs, nout, e);
    float *want = xmalloc(nout), *mag = xmalloc(nout);
    fill_sentinel(got, nout);
    fill_sentinel(split, nout);
    ref->dw3x3(want, ds, in, ss, ih, iw, c, stride, dil, wp, b, relu, 0, oh);
    float *ain = abs_copy(in, nin), *awp = abs_copy(wp, nw), *ab = abs_copy(b, (size_t)c);
    ref->dw3x3(mag, ds, ain, ss, ih, iw, c, stride, dil, awp, ab, 0, 0, oh);
    char what[192];
    snprintf(what, sizeof(what), "dw3x3 %s: %dx%d c %d stride %d dil %d pad %d/%d act %d %s",
             isa, ih, iw, c, stride, dil, pad_in, pad_out, relu, data_names[kind]);
    memcpy(current, what, sizeof(what));
    dut->dw3x3(got, ds, gin, ss, ih, iw, c, stride, dil, gwp, gbias, relu, 0, oh);
    int r[4];
    const int nr = split_ranges(oh, r);
    for (int k = 0; k < nr; k++) {
        const int j = (k + 1) % nr; /* out of order */
        dut->dw3x3(split, ds, gin, ss, ih, iw, c, stride, dil, gwp, gbias, relu, r[j],
                   r[j + 1]);
    }
    failures += compare(what, got, want, mag, oh, (size_t)ow * c, ds, 1e-5, 0.0, st);
    failures += same_bits(what, got, split, nout);
    st->cases++;
    free(in); free(w); free(b); free(wp); free(want); free(mag); free(ain); free(awp); free(ab);
    gfree(&gi); gfree(&gw); gfree(&gb); gfree(&gd); gfree(&gs);
}

static void check_dw(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                     stats *st)
{
    static const int chans[] = {1, 3, 5, 7, 8, 9, 15, 16, 17, 31, 48, 64, 100, 163, 200, 257};
    const int nch = (int)(sizeof(chans) / sizeof(chans[0]));
    static const int dils[] = {1, 2, 3, 4, 5, 9};
    /* every small map, both strides, every dilation (stride 2 only with dilation 1, as
     * the network uses it, plus a few dilated stride-2 cases) */
    for (int ih = 1; ih <= 9; ih += 1)
        for (int iw = 1; iw <= 9; iw += 2)
            for (int di = 0; di < 6; di++) {
                const int stride = di == 0 ? irand(1, 2) : (rnd32() % 8 == 0 ? 2 : 1);
                check_dw_case(ref, dut, isa, ih, iw, chans[irand(0, nch - 1)], stride, dils[di],
                              irand(0, 1) * irand(1, 9), irand(0, 1) * irand(1, 9),
                              irand(0, act_modes - 1), irand(0, DATA_KINDS - 1), st);
            }
    for (int i = 0; i < nch; i++)
        for (int kind = 0; kind < DATA_KINDS; kind++)
            check_dw_case(ref, dut, isa, irand(5, 30), irand(5, 30), chans[i], irand(1, 2),
                          dils[irand(0, 5)], irand(0, 1) * irand(1, 9),
                          irand(0, 1) * irand(1, 9), irand(0, act_modes - 1), kind, st);
    /* MobileOne shapes */
    check_dw_case(ref, dut, isa, 112, 112, 48, 2, 1, 0, 0, 1, DATA_UNIFORM, st);
    check_dw_case(ref, dut, isa, 28, 28, 128, 1, 1, 0, 0, 1, DATA_UNIFORM, st);
    check_dw_case(ref, dut, isa, 14, 14, 256, 1, 2, 0, 0, 1, DATA_LARGE, st);
    check_dw_case(ref, dut, isa, 14, 14, 1024, 1, 4, 0, 0, 0, DATA_UNIFORM, st);
    check_dw_case(ref, dut, isa, 7, 7, 1024, 1, 1, 8, 16, 1, DATA_SPARSE, st);
    check_dw_case(ref, dut, isa, 9, 11, 512, 1, 1, 0, 0, 1, DATA_UNIFORM, st);
    check_dw_case(ref, dut, isa, 12, 10, 2048, 2, 1, 0, 0, 0, DATA_LARGE, st);
    check_dw_case(ref, dut, isa, 9, 9, 1024, 1, 2, 0, 0, 1, DATA_SPARSE, st);
    /* stride 2 over 64 or more channels (pixel order in the AVX-512 variant): channel
     * counts with every kind of tail after the 32-channel steps */
    static const int s2_chans[] = {64, 65, 80, 96, 100, 127, 200, 640};
    for (int i = 0; i < (int)(sizeof(s2_chans) / sizeof(s2_chans[0])); i++)
        check_dw_case(ref, dut, isa, irand(3, 29), irand(3, 29), s2_chans[i], 2, 1,
                      irand(0, 1) * irand(1, 9), irand(0, 1) * irand(1, 9),
                      irand(0, act_modes - 1), i % DATA_KINDS, st);
}

/* -------------------------------------------------------------- pointwise */

static void check_pw_case(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                          int n, int cin, int cout, int relu, int kind, stats *st)
{
    const size_t nin = (size_t)n * cin, nout = (size_t)n * cout, nw = (size_t)cin * cout;
    const size_t np = mo_pw_packed_size(cin, cout);
    float *in = xmalloc(nin), *w = xmalloc(nw), *b = xmalloc((size_t)cout), *wp = xmalloc(np);
    fill(in, nin, kind, 0);
    fill(w, nw, kind, 1);
    fill(b, (size_t)cout, kind, 2);
    mo_pw_pack(wp, w, cin, cout);
    const int e = rnd32() & 1;
    gbuf gi, gw, gb, gd, gs;
    const float *gin = gcopy(&gi, in, nin, e), *gwp = gcopy(&gw, wp, np, !e);
    const float *gbias = gcopy(&gb, b, (size_t)cout, e);
    float *got = galloc(&gd, nout, !e), *split = galloc(&gs, nout, e);
    float *want = xmalloc(nout), *mag = xmalloc(nout);
    fill_sentinel(got, nout);
    fill_sentinel(split, nout);
    ref->pw(want, in, (size_t)n, cin, cout, wp, b, relu);
    float *ain = abs_copy(in, nin), *awp = abs_copy(wp, np), *ab = abs_copy(b, (size_t)cout);
    ref->pw(mag, ain, (size_t)n, cin, cout, awp, ab, 0);
    char what[160];
    snprintf(what, sizeof(what), "pw %s: n %d cin %d cout %d act %d %s", isa, n, cin, cout,
             relu, data_names[kind]);
    memcpy(current, what, sizeof(what));
    dut->pw(got, gin, (size_t)n, cin, cout, gwp, gbias, relu);
    int r[4];
    const int nr = split_ranges(n, r);
    for (int k = nr - 1; k >= 0; k--)
        dut->pw(split + (size_t)r[k] * cout, gin + (size_t)r[k] * cin,
                (size_t)(r[k + 1] - r[k]), cin, cout, gwp, gbias, relu);
    failures += compare(what, got, want, mag, n, (size_t)cout, cout, 1e-5, 0.0, st);
    failures += same_bits(what, got, split, nout);
    st->cases++;
    free(in); free(w); free(b); free(wp); free(want); free(mag); free(ain); free(awp); free(ab);
    gfree(&gi); gfree(&gw); gfree(&gb); gfree(&gd); gfree(&gs);
}

static void check_pw(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                     stats *st)
{
    static const int ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 49, 97, 196};
    static const int cins[] = {1, 2, 3, 7, 8, 15, 16, 17, 48, 255, 256, 257, 300, 513};
    static const int couts[] = {1, 5, 8, 15, 16, 17, 31, 32, 33, 48, 100};
    for (int i = 0; i < 13; i++)
        for (int j = 0; j < 14; j++)
            check_pw_case(ref, dut, isa, ns[i], cins[j], couts[irand(0, 10)],
                          irand(0, act_modes - 1), irand(0, DATA_KINDS - 1), st);
    for (int l = 0; l < 11; l++)
        for (int kind = 0; kind < DATA_KINDS; kind++)
            check_pw_case(ref, dut, isa, ns[irand(0, 12)], cins[irand(0, 13)], couts[l],
                          irand(0, act_modes - 1), kind, st);
    /* several pixel blocks and input-channel slices; MobileOne shapes */
    check_pw_case(ref, dut, isa, 3001, 48, 48, 1, DATA_UNIFORM, st);
    check_pw_case(ref, dut, isa, 1029, 1024, 33, 0, DATA_UNIFORM, st);
    check_pw_case(ref, dut, isa, 49, 2048, 64, 1, DATA_LARGE, st);
    check_pw_case(ref, dut, isa, 196, 256, 256, 1, DATA_UNIFORM, st);
    check_pw_case(ref, dut, isa, 784, 128, 128, 1, DATA_SPARSE, st);
    /* the pixels after the last full tile with it as two tiles (12 + 1 at 49, 12 + 4 at
     * 196, 12 + 11 ...); 7x7 with 5 MB of weights (s2 stage4.1: weight prefetch), an odd
     * panel count (the lone last panel prefetches too) */
    check_pw_case(ref, dut, isa, 49, 640, 2048, 1, DATA_UNIFORM, st);
    check_pw_case(ref, dut, isa, 196, 640, 640, 1, DATA_LARGE, st);
    check_pw_case(ref, dut, isa, 49, 300, 1040, act_modes - 1, DATA_UNIFORM, st);
    check_pw_case(ref, dut, isa, 25, 257, 100, 1, DATA_SPARSE, st);
    check_pw_case(ref, dut, isa, 23, 64, 48, 0, DATA_UNIFORM, st);
    check_pw_case(ref, dut, isa, 18, 513, 33, 1, DATA_UNIFORM, st);
}

/*
 * Accumulating pointwise: dst rows padded (the padding must keep its sentinel), src rows
 * padded or all the same row (src_stride 0). The bias-in-dst form must give the bits of
 * the plain pointwise kernel of the same ISA, as the contract says.
 */
static void check_pw_acc_case(const mo_conv_dsp *ref, const mo_conv_dsp *dut,
                              const char *isa, int n, int cin, int cout, int pad_in,
                              int pad_out, int kind, stats *st)
{
    const ptrdiff_t lds = pad_in < 0 ? 0 : cin + pad_in, ldd = cout + pad_out;
    const size_t nin = lds ? (size_t)n * lds : (size_t)cin, nout = (size_t)n * ldd;
    const size_t nw = (size_t)cin * cout, np = mo_pw_packed_size(cin, cout);
    float *in = xmalloc(nin), *w = xmalloc(nw), *wp = xmalloc(np), *d0 = xmalloc(nout);
    fill(in, nin, kind, 0);
    fill(w, nw, kind, 1);
    fill_sentinel(d0, nout);
    for (int p = 0; p < n; p++)
        fill(d0 + (size_t)p * ldd, (size_t)cout, kind, 2);
    mo_pw_pack(wp, w, cin, cout);
    float *want = xmalloc(nout), *mag = xmalloc(nout);
    memcpy(want, d0, nout * sizeof(float));
    ref->pw_acc(want, ldd, in, lds, (size_t)n, cin, cout, wp);
    float *ain = abs_copy(in, nin), *awp = abs_copy(wp, np);
    for (size_t i = 0; i < nout; i++)
        mag[i] = is_sentinel(d0 + i) ? 0.0f : fabsf(d0[i]);
    ref->pw_acc(mag, ldd, ain, lds, (size_t)n, cin, cout, awp);
    const int e = rnd32() & 1;
    gbuf gi, gw, gd, gs;
    const float *gin = gcopy(&gi, in, nin, e), *gwp = gcopy(&gw, wp, np, !e);
    float *got = gcopy(&gd, d0, nout, !e), *split = gcopy(&gs, d0, nout, e);
    char what[160];
    snprintf(what, sizeof(what), "pw_acc %s: n %d cin %d cout %d src_stride %td dst_stride %td %s",
             isa, n, cin, cout, lds, ldd, data_names[kind]);
    memcpy(current, what, sizeof(what));
    dut->pw_acc(got, ldd, gin, lds, (size_t)n, cin, cout, gwp);
    int r[4];
    const int nr = split_ranges(n, r);
    for (int k = nr - 1; k >= 0; k--)
        dut->pw_acc(split + (size_t)r[k] * ldd, ldd, gin + (size_t)r[k] * lds, lds,
                    (size_t)(r[k + 1] - r[k]), cin, cout, gwp);
    failures += compare(what, got, want, mag, n, (size_t)cout, ldd, 1e-5, 0.0, st);
    failures += same_bits(what, got, split, nout);
    if (lds == cin && ldd == cout) { /* bias in dst == the bias argument of pw */
        float *viapw = xmalloc(nout), *bias = xmalloc((size_t)cout);
        memcpy(bias, d0, (size_t)cout * sizeof(float));
        for (int p = 0; p < n; p++)
            memcpy(split + (size_t)p * cout, bias, (size_t)cout * sizeof(float));
        dut->pw_acc(split, ldd, gin, lds, (size_t)n, cin, cout, gwp);
        dut->pw(viapw, gin, (size_t)n, cin, cout, gwp, bias, MO_ACT_NONE);
        failures += same_bits(what, split, viapw, nout);
        free(viapw);
        free(bias);
    }
    st->cases++;
    free(in); free(w); free(wp); free(d0); free(want); free(mag); free(ain); free(awp);
    gfree(&gi); gfree(&gw); gfree(&gd); gfree(&gs);
}

static void check_pw_acc(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                         stats *st)
{
    static const int ns[] = {1, 2, 3, 5, 6, 7, 12, 13, 49, 97};
    static const int cins[] = {1, 3, 8, 16, 17, 255, 256, 257, 513};
    static const int couts[] = {1, 5, 15, 16, 17, 21, 32, 33, 48, 100};
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 9; j++)
            check_pw_acc_case(ref, dut, isa, ns[i], cins[j], couts[irand(0, 9)],
                              irand(-1, 2) * irand(0, 5), irand(0, 1) * irand(1, 40),
                              irand(0, DATA_KINDS - 1), st);
    /* the segmentation head's shapes: branches side by side (dst stride 4 x 256), taps
     * over zero padding (src stride 0), classifier with 21 outputs */
    check_pw_acc_case(ref, dut, isa, 1029, 1024, 256, 0, 768, DATA_UNIFORM, st);
    check_pw_acc_case(ref, dut, isa, 64, 1024, 256, -1, 768, DATA_SPARSE, st);
    check_pw_acc_case(ref, dut, isa, 300, 256, 21, 0, 0, DATA_LARGE, st);
    check_pw_acc_case(ref, dut, isa, 3001, 48, 48, 0, 0, DATA_UNIFORM, st);
}

/* ------------------------------------------------------------- dense 3x3 */

/*
 * Dense 3x3 conv into strided output pixels (the padding after cout in each pixel and
 * after the row must keep its sentinel), from padded input rows, stride 1 or 2, dilations
 * beyond the map; the bias argument or the accumulating form (start values in dst), every
 * activation. The magnitude for the tolerance: the reference on absolute values.
 */
static void check_conv3x3_case(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                               int ih, int iw, int cin, int cout, int stride, int dil,
                               int pad_in, int pad_px, int pad_row, int use_bias, int relu,
                               int kind, stats *st)
{
    const int oh = MO_CONV_OUT(ih, stride), ow = MO_CONV_OUT(iw, stride);
    const ptrdiff_t ss = (ptrdiff_t)iw * cin + pad_in, dp = cout + pad_px;
    const ptrdiff_t ds = (ptrdiff_t)ow * dp + pad_row;
    const size_t nin = (size_t)ih * ss, nout = (size_t)oh * ds, nw = 9 * (size_t)cin * cout;
    const size_t np = mo_conv3x3_packed_size(cin, cout);
    float *in = xmalloc(nin), *w = xmalloc(nw), *b = xmalloc((size_t)cout), *wp = xmalloc(np);
    float *d0 = xmalloc(nout);
    fill(in, nin, kind, 0);
    fill(w, nw, kind, 1);
    fill(b, (size_t)cout, kind, 2);
    mo_conv3x3_pack(wp, w, cin, cout);
    /* start values of the accumulating form, sentinel in the padding of pixels and rows */
    fill_sentinel(d0, nout);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            fill(d0 + (size_t)y * ds + (size_t)x * dp, (size_t)cout, kind, 2);
    const int e = rnd32() & 1;
    gbuf gi, gw, gb, gd, gs;
    const float *gin = gcopy(&gi, in, nin, e), *gwp = gcopy(&gw, wp, np, !e);
    const float *gbias = use_bias ? gcopy(&gb, b, (size_t)cout, e) : NULL;
    if (!use_bias)
        gb.map = NULL;
    float *got = gcopy(&gd, d0, nout, !e), *split = gcopy(&gs, d0, nout, e);
    float *want = xmalloc(nout), *mag = xmalloc(nout);
    memcpy(want, d0, nout * sizeof(float));
    ref->conv3x3(want, ds, dp, in, ss, ih, iw, cin, cout, stride, dil, wp, use_bias ? b : NULL,
                 relu, 0, oh);
    float *ain = abs_copy(in, nin), *awp = abs_copy(wp, np), *ab = abs_copy(b, (size_t)cout);
    for (size_t i = 0; i < nout; i++)
        mag[i] = is_sentinel(d0 + i) ? 0.0f : fabsf(d0[i]);
    ref->conv3x3(mag, ds, dp, ain, ss, ih, iw, cin, cout, stride, dil, awp,
                 use_bias ? ab : NULL, 0, 0, oh);
    char what[224];
    snprintf(what, sizeof(what),
             "conv3x3 %s: %dx%d cin %d cout %d stride %d dil %d pad %d/%d/%d %s act %d %s", isa,
             ih, iw, cin, cout, stride, dil, pad_in, pad_px, pad_row,
             use_bias ? "bias" : "acc", relu, data_names[kind]);
    memcpy(current, what, sizeof(what));
    dut->conv3x3(got, ds, dp, gin, ss, ih, iw, cin, cout, stride, dil, gwp, gbias, relu, 0, oh);
    int r[4];
    const int nr = split_ranges(oh, r);
    for (int k = 0; k < nr; k++) {
        const int j = (k + 1) % nr; /* out of order */
        dut->conv3x3(split, ds, dp, gin, ss, ih, iw, cin, cout, stride, dil, gwp, gbias, relu,
                     r[j], r[j + 1]);
    }
    /* each pixel's padding must keep the sentinel: compare pixel by pixel */
    int bad = 0;
    for (int y = 0; y < oh && !bad; y++) {
        for (int x = 0; x < ow && !bad; x++) {
            const size_t o = (size_t)y * ds + (size_t)x * dp;
            bad = compare(what, got + o, want + o, mag + o, 1, (size_t)cout, dp, 1e-5, 0.0, st);
        }
        for (ptrdiff_t i = (ptrdiff_t)ow * dp; i < ds && !bad; i++)
            if (!is_sentinel(got + (size_t)y * ds + i)) {
                printf("FAIL %s: wrote into row padding at row %d\n", what, y);
                bad = 1;
            }
    }
    failures += bad;
    failures += same_bits(what, got, split, nout);
    st->cases++;
    free(in); free(w); free(b); free(wp); free(d0); free(want); free(mag); free(ain);
    free(awp); free(ab);
    gfree(&gi); gfree(&gw); gfree(&gb); gfree(&gd); gfree(&gs);
}

static void check_conv3x3(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                          stats *st)
{
    static const int cins[] = {1, 2, 3, 4, 5, 8, 16, 17, 31, 64, 255, 257};
    static const int couts[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 48};
    static const int dils[] = {1, 2, 3, 4, 6, 12};
    /* small maps: every side 1..9, both strides, dilations up to beyond the map */
    for (int ih = 1; ih <= 9; ih += 2)
        for (int iw = 1; iw <= 9; iw++)
            for (int di = 0; di < 6; di++)
                check_conv3x3_case(ref, dut, isa, ih, iw, cins[irand(0, 11)],
                                   couts[irand(0, 9)], irand(1, 2), dils[di],
                                   irand(0, 1) * irand(1, 9), irand(0, 1) * irand(1, 20),
                                   irand(0, 1) * irand(1, 9), irand(0, 1),
                                   irand(0, act_modes - 1), irand(0, DATA_KINDS - 1), st);
    for (int i = 0; i < 10; i++)
        for (int kind = 0; kind < DATA_KINDS; kind++)
            check_conv3x3_case(ref, dut, isa, irand(5, 24), irand(5, 24), cins[irand(0, 11)],
                               couts[i], irand(1, 2), dils[irand(0, 5)],
                               irand(0, 1) * irand(1, 9), irand(0, 1) * irand(1, 20),
                               irand(0, 1) * irand(1, 9), irand(0, 1), irand(0, act_modes - 1),
                               kind, st);
    /* several row blocks and input-channel slices; the segmentation head's layout (ASPP
     * branch in a 4-branch concatenation buffer, the 3x3 head conv) */
    check_conv3x3_case(ref, dut, isa, 40, 30, 300, 48, 1, 3, 0, 3 * 48, 0, 1, 0, DATA_UNIFORM,
                       st);
    check_conv3x3_case(ref, dut, isa, 13, 17, 520, 40, 1, 6, 5, 120, 0, 0, 0, DATA_LARGE, st);
    check_conv3x3_case(ref, dut, isa, 21, 17, 128, 64, 1, 1, 0, 0, 0, 1, 1, DATA_SPARSE, st);
    check_conv3x3_case(ref, dut, isa, 33, 31, 96, 33, 2, 1, 7, 2, 3, 1, 1, DATA_UNIFORM, st);
    check_conv3x3_case(ref, dut, isa, 9, 9, 1024, 16, 1, 12, 0, 48, 0, 0, 0, DATA_UNIFORM, st);
}

/* ------------------------------------------------------------ SE and pool */

static void check_se_case(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                          int n, int c, int cr, int kind, stats *st)
{
    const size_t nx = (size_t)n * c;
    float *x = xmalloc(nx), *rw = xmalloc((size_t)cr * c), *rb = xmalloc((size_t)cr);
    float *ew = xmalloc((size_t)c * cr), *eb = xmalloc((size_t)c);
    float *tmp = xmalloc((size_t)(c + cr)), *want = xmalloc(nx), *mag = xmalloc(nx);
    fill(x, nx, kind, 0);
    fill(rw, (size_t)cr * c, kind, 1);
    fill(rb, (size_t)cr, kind, 2);
    fill(ew, (size_t)c * cr, kind, 1);
    fill(eb, (size_t)c, kind, 2);
    for (size_t i = 0; i < nx; i++)
        mag[i] = fabsf(x[i]);
    memcpy(want, x, nx * sizeof(float));
    ref->se(want, (size_t)n, c, cr, rw, rb, ew, eb, tmp);
    const int e = rnd32() & 1;
    gbuf gx, gt;
    float *got = gcopy(&gx, x, nx, e), *gtmp = galloc(&gt, (size_t)(c + cr), !e);
    char what[128];
    snprintf(what, sizeof(what), "se %s: n %d c %d cr %d %s", isa, n, c, cr, data_names[kind]);
    memcpy(current, what, sizeof(what));
    dut->se(got, (size_t)n, c, cr, rw, rb, ew, eb, gtmp);
    failures += compare(what, got, want, mag, n, (size_t)c, c, 1e-5, 1e-5, st);
    st->cases++;
    free(x); free(rw); free(rb); free(ew); free(eb); free(tmp); free(want); free(mag);
    gfree(&gx); gfree(&gt);
}

static void check_se(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                     stats *st)
{
    static const int cases[][3] = {{1, 16, 1}, {4, 64, 4}, {49, 1024, 64}, {196, 896, 56},
                                   {7, 33, 2}, {3, 9, 1}, {13, 200, 12}};
    for (int i = 0; i < 7; i++)
        for (int kind = 0; kind < DATA_KINDS; kind++)
            check_se_case(ref, dut, isa, cases[i][0], cases[i][1], cases[i][2], kind, st);
}

static void check_gap(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                      stats *st)
{
    static const int cases[][2] = {{1, 1}, {1, 1024}, {49, 1024}, {3, 7}, {4096, 48},
                                   {5, 9}, {17, 15}, {2, 17}, {196, 1280}};
    for (int i = 0; i < 9; i++)
        for (int kind = 0; kind < DATA_KINDS; kind++) {
            const int n = cases[i][0], c = cases[i][1];
            float *x = xmalloc((size_t)n * c), *want = xmalloc((size_t)c);
            float *mag = xmalloc((size_t)c);
            fill(x, (size_t)n * c, kind, 0);
            ref->gap(want, x, (size_t)n, c);
            float *ax = abs_copy(x, (size_t)n * c);
            ref->gap(mag, ax, (size_t)n, c);
            for (int ch = 0; ch < c; ch++)
                mag[ch] += 1.0f;
            const int e = rnd32() & 1;
            gbuf gx, gd;
            const float *gin = gcopy(&gx, x, (size_t)n * c, e);
            float *got = galloc(&gd, (size_t)c, !e);
            char what[96];
            snprintf(what, sizeof(what), "gap %s: n %d c %d %s", isa, n, c, data_names[kind]);
            memcpy(current, what, sizeof(what));
            dut->gap(got, gin, (size_t)n, c);
            failures += compare(what, got, want, mag, 1, (size_t)c, c, 1e-6, 0.0, st);
            st->cases++;
            free(x); free(want); free(mag); free(ax);
            gfree(&gx); gfree(&gd);
        }
}

/* ------------------------------------------------------- head operators */
/* GEMV, upsample, upsample + argmax, softmax (mo_internal/ops.h): every variant must give
 * the bits of the reference (same operations, no FMA), for any split of the rows; the
 * reference itself is checked against double precision (and expf) within a tolerance. */

/* n bytes against an inaccessible page (after the end or before the start). */
static uint8_t *galloc_bytes(gbuf *g, size_t n, int at_end)
{
    const size_t ps = page_size(), body = ((n ? n : 1) + ps - 1) / ps * ps;
    g->len = body + 2 * ps;
    g->map = mmap(NULL, g->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    uint8_t *b = (uint8_t *)g->map + ps;
    if (mprotect(b, body, PROT_READ | PROT_WRITE)) {
        perror("mprotect");
        exit(2);
    }
    g->p = NULL;
    return at_end ? b + body - n : b;
}

static int same_floats(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(got + i, want + i, sizeof(float))) {
            printf("FAIL %s: element %zu: got %.9g, c %.9g (not the same bits)\n", what, i,
                   got[i], want[i]);
            return 1;
        }
    return 0;
}

static void check_gemv(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                       stats *st)
{
    static const int cases[][2] = {{1, 1}, {3, 5}, {4, 16}, {7, 17}, {5, 15}, {9, 33},
                                   {6, 31}, {128, 128}, {128, 1024}, {1000, 1024}, {2, 1280},
                                   {13, 47}};
    for (int i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++)
        for (int kind = 0; kind < DATA_KINDS; kind++) {
            const int n = cases[i][0], k = cases[i][1], act = irand(0, act_modes - 1);
            float *w = xmalloc((size_t)n * k), *x = xmalloc((size_t)k), *b = xmalloc((size_t)n);
            float *want = xmalloc((size_t)n), *split = xmalloc((size_t)n);
            fill(w, (size_t)n * k, kind, 1);
            fill(x, (size_t)k, kind, 0);
            fill(b, (size_t)n, kind, 2);
            ref->gemv(want, w, b, x, n, k, act);
            char what[96];
            snprintf(what, sizeof(what), "gemv %s: %d x %d act %d %s", isa, n, k, act,
                     data_names[kind]);
            memcpy(current, what, sizeof(what));
            /* the reference against double precision */
            for (int j = 0; j < n; j++) {
                double s = b[j], mag = fabs(b[j]);
                for (int q = 0; q < k; q++) {
                    s += (double)w[(size_t)j * k + q] * x[q];
                    mag += fabs((double)w[(size_t)j * k + q] * x[q]);
                }
                s = act >= 1 && s < 0 ? 0 : s;
                s = act == 2 && s > 6 ? 6 : s;
                if (!(fabs(s - want[j]) <= 1e-5 * mag + 1e-30)) {
                    printf("FAIL %s: reference row %d: %.9g, double %.9g\n", what, j, want[j], s);
                    failures++;
                    break;
                }
            }
            const int e = rnd32() & 1;
            gbuf gw, gx, gb, gy;
            const float *gwp = gcopy(&gw, w, (size_t)n * k, e);
            const float *gxp = gcopy(&gx, x, (size_t)k, !e);
            const float *gbp = gcopy(&gb, b, (size_t)n, e);
            float *got = galloc(&gy, (size_t)n, !e);
            dut->gemv(got, gwp, gbp, gxp, n, k, act);
            failures += same_floats(what, got, want, (size_t)n);
            int r[4];
            split_ranges(n, r);
            for (int s = 0; s < 3; s++)
                dut->gemv(split + r[s], w + (size_t)r[s] * k, b + r[s], x, r[s + 1] - r[s], k,
                          act);
            failures += same_bits(what, split, want, (size_t)n);
            st->cases++;
            free(w); free(x); free(b); free(want); free(split);
            gfree(&gw); gfree(&gx); gfree(&gb); gfree(&gy);
        }
}

/* ih iw c oh ow */
static const int up_cases[][5] = {{1, 1, 1, 3, 5},   {3, 5, 7, 17, 9},    {4, 4, 3, 4, 4},
                                  {5, 3, 9, 2, 2},   {7, 9, 21, 64, 61},  {2, 3, 256, 5, 7},
                                  {16, 16, 8, 64, 64}, {3, 3, 33, 100, 1}, {32, 32, 21, 512, 512},
                                  {1, 7, 2, 1, 130}, {9, 1, 17, 70, 3},   {6, 5, 100, 23, 71}};
#define N_UP_CASES ((int)(sizeof(up_cases) / sizeof(up_cases[0])))

static void check_upsample(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                           stats *st)
{
    for (int i = 0; i < N_UP_CASES; i++)
        for (int kind = 0; kind < DATA_KINDS; kind++) {
            const int ih = up_cases[i][0], iw = up_cases[i][1], c = up_cases[i][2];
            const int oh = up_cases[i][3], ow = up_cases[i][4];
            const ptrdiff_t ss = (ptrdiff_t)iw * c + irand(0, 3), ds = (ptrdiff_t)ow * c + irand(0, 3);
            const size_t sn = (size_t)(ih - 1) * ss + (size_t)iw * c;
            const size_t dn = (size_t)oh * ds;
            float *s = xmalloc(sn), *want = xmalloc(dn), *split = xmalloc(dn);
            fill(s, sn, kind, 0);
            fill_sentinel(want, dn);
            fill_sentinel(split, dn);
            ref->upsample(want, ds, s, ss, ih, iw, c, oh, ow, 0, oh);
            char what[128];
            snprintf(what, sizeof(what), "upsample %s: %dx%dx%d -> %dx%d %s", isa, ih, iw, c, oh,
                     ow, data_names[kind]);
            memcpy(current, what, sizeof(what));
            /* the reference against torch's formula in double */
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    const double fy = ih == oh ? y : fmax(0.0, (y + 0.5) * ih / oh - 0.5);
                    const double fx = iw == ow ? x : fmax(0.0, (x + 0.5) * iw / ow - 0.5);
                    int y0 = (int)fy, x0 = (int)fx;
                    y0 = y0 > ih - 1 ? ih - 1 : y0;
                    x0 = x0 > iw - 1 ? iw - 1 : x0;
                    const int y1 = y0 + (y0 < ih - 1), x1 = x0 + (x0 < iw - 1);
                    const double ly = fy - y0, lx = fx - x0;
                    for (int ch = 0; ch < c; ch += 1 + c / 8) {
                        const float *r0 = s + y0 * ss, *r1 = s + y1 * ss;
                        const double a = r0[x0 * c + ch], b = r0[x1 * c + ch];
                        const double p = r1[x0 * c + ch], q = r1[x1 * c + ch];
                        const double v = (a * (1 - lx) + b * lx) * (1 - ly) + (p * (1 - lx) + q * lx) * ly;
                        const double mag = fabs(a) + fabs(b) + fabs(p) + fabs(q);
                        if (!(fabs(v - want[y * ds + x * c + ch]) <= 1e-5 * mag + 1e-30)) {
                            printf("FAIL %s: reference (%d,%d,%d) %.9g, double %.9g\n", what, y, x,
                                   ch, want[y * ds + x * c + ch], v);
                            failures++;
                            y = oh;
                            break;
                        }
                    }
                    if (y == oh)
                        break;
                }
            const int e = rnd32() & 1;
            gbuf gs, gd;
            const float *gsp = gcopy(&gs, s, sn, e);
            float *got = galloc(&gd, dn, !e);
            fill_sentinel(got, dn);
            dut->upsample(got, ds, gsp, ss, ih, iw, c, oh, ow, 0, oh);
            failures += compare(what, got, want, NULL, oh, (size_t)ow * c, ds, 0.0, 0.0, st);
            failures += same_floats(what, got, want, dn);
            int r[4];
            split_ranges(oh, r);
            for (int q = 2; q >= 0; q--)
                dut->upsample(split, ds, s, ss, ih, iw, c, oh, ow, r[q], r[q + 1]);
            failures += same_bits(what, split, want, dn);
            st->cases++;
            free(s); free(want); free(split);
            gfree(&gs); gfree(&gd);
        }
}

static void check_upsample_argmax(const mo_conv_dsp *ref, const mo_conv_dsp *dut,
                                  const char *isa, stats *st)
{
    for (int i = 0; i < N_UP_CASES; i++)
        for (int kind = 0; kind < DATA_KINDS; kind++) {
            const int ih = up_cases[i][0], iw = up_cases[i][1], c = up_cases[i][2];
            const int oh = up_cases[i][3], ow = up_cases[i][4];
            const ptrdiff_t ss = (ptrdiff_t)iw * c + irand(0, 3), ds = ow + irand(0, 3);
            const size_t sn = (size_t)(ih - 1) * ss + (size_t)iw * c, dn = (size_t)oh * ds;
            float *s = xmalloc(sn), *up = xmalloc((size_t)oh * ow * c);
            uint8_t *want = malloc(dn), *split = malloc(dn);
            if (!want || !split)
                exit(2);
            fill(s, sn, kind, 0);
            if (kind == DATA_SPARSE) /* ties: whole pixels of equal values */
                for (size_t q = 0; q < sn; q++)
                    s[q] = s[q] != 0.0f ? 0.5f : 0.0f;
            memset(want, 0xAB, dn);
            memset(split, 0xAB, dn);
            ref->upsample_argmax(want, ds, s, ss, ih, iw, c, oh, ow, 0, oh);
            ref->upsample(up, (ptrdiff_t)ow * c, s, ss, ih, iw, c, oh, ow, 0, oh);
            char what[128];
            snprintf(what, sizeof(what), "upsample_argmax %s: %dx%dx%d -> %dx%d %s", isa, ih, iw,
                     c, oh, ow, data_names[kind]);
            memcpy(current, what, sizeof(what));
            /* the reference: the first maximum of the upsampled values */
            for (int p = 0; p < oh * ow; p++) {
                const float *v = up + (size_t)p * c;
                int best = 0;
                for (int ch = 1; ch < c; ch++)
                    if (v[ch] > v[best])
                        best = ch;
                if (want[(p / ow) * ds + p % ow] != best) {
                    printf("FAIL %s: reference label %d at pixel %d, argmax of upsample %d\n",
                           what, want[(p / ow) * ds + p % ow], p, best);
                    failures++;
                    break;
                }
            }
            const int e = rnd32() & 1;
            gbuf gs, gd;
            const float *gsp = gcopy(&gs, s, sn, e);
            uint8_t *got = galloc_bytes(&gd, dn, !e);
            memset(got, 0xAB, dn);
            dut->upsample_argmax(got, ds, gsp, ss, ih, iw, c, oh, ow, 0, oh);
            if (memcmp(got, want, dn)) {
                for (size_t q = 0; q < dn; q++)
                    if (got[q] != want[q]) {
                        printf("FAIL %s: byte %zu (row %zu col %zu): got %d, c %d\n", what, q,
                               q / ds, q % ds, got[q], want[q]);
                        break;
                    }
                failures++;
            }
            int r[4];
            split_ranges(oh, r);
            for (int q = 2; q >= 0; q--)
                dut->upsample_argmax(split, ds, s, ss, ih, iw, c, oh, ow, r[q], r[q + 1]);
            if (memcmp(split, want, dn)) {
                printf("FAIL %s: split call differs\n", what);
                failures++;
            }
            st->cases++;
            free(s); free(up); free(want); free(split);
            gfree(&gs); gfree(&gd);
        }
}

/* mo_ops_exp() against exp() in double: relative error and subnormals. */
static void check_exp_reference(void)
{
    double worst = 0.0;
    for (int i = 0; i <= 2000000; i++) {
        const float x = i == 2000000 ? 0.0f : -104.5f * (float)i / 2000000.0f;
        const double want = exp((double)x), got = mo_ops_exp(x);
        const double err = fabs(got - want);
        const double ulp = want >= 0x1p-126 ? ldexp(1.0, ilogb(want) - 23) : 0x1p-149;
        if (err / ulp > worst)
            worst = err / ulp;
    }
    const float nan = NAN;
    const int nan_ok = isnan(mo_ops_exp(nan)) && mo_ops_exp(-1000.0f) == 0.0f &&
                       mo_ops_exp(-INFINITY) == 0.0f && mo_ops_exp(0.0f) == 1.0f;
    printf("exp      c     worst error %.3f ulp (x in [-104.5, 0]), NaN/-inf/0: %s\n", worst,
           nan_ok ? "ok" : "FAILED");
    if (!(worst <= 2.0) || !nan_ok)
        failures++;
}

static void check_softmax(const mo_conv_dsp *ref, const mo_conv_dsp *dut, const char *isa,
                          stats *st)
{
    static int exp_checked;
    if (!exp_checked++)
        check_exp_reference();
    static const int cases[][2] = {{1, 1}, {3, 91}, {3234, 91}, {5, 21}, {2, 16}, {4, 17},
                                   {3, 1000}, {7, 5}, {9, 33}, {2, 2}, {19, 1100}, {17, 300}};
    for (int i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++)
        for (int kind = 0; kind < DATA_KINDS; kind++)
            for (int layout = 0; layout < 3; layout++) { /* rows, class-major, in place */
                const int n = cases[i][0], k = cases[i][1];
                const ptrdiff_t ss = k + (layout == 2 ? 0 : irand(0, 3));
                const ptrdiff_t rs = layout == 1 ? 1 : layout == 2 ? ss : k + irand(0, 3);
                const ptrdiff_t cs = layout == 1 ? n : 1;
                const size_t sn = (size_t)(n - 1) * ss + k;
                const size_t dn = layout == 1 ? (size_t)n * k : (size_t)(n - 1) * rs + k;
                float *s = xmalloc(sn), *want = xmalloc(dn), *split = xmalloc(dn);
                fill(s, sn, kind, 0);
                if (kind == DATA_LARGE) /* logits far apart: exponentials down to 0 */
                    for (size_t q = 0; q < sn; q++)
                        s[q] *= 0.2f;
                char what[128];
                snprintf(what, sizeof(what), "softmax %s: %d x %d %s %s", isa, n, k,
                         layout == 1 ? "class-major" : layout == 2 ? "in place" : "rows",
                         data_names[kind]);
                memcpy(current, what, sizeof(what));
                fill_sentinel(want, dn);
                fill_sentinel(split, dn);
                if (layout == 2)
                    memcpy(want, s, sn * sizeof(float));
                ref->softmax(want, rs, cs, layout == 2 ? want : s, ss, (size_t)n, k);
                /* the reference against double precision */
                for (int r = 0; r < n && r < 50; r++) {
                    const float *x = s + (size_t)r * ss;
                    double m = x[0], sum = 0.0;
                    for (int j = 1; j < k; j++)
                        m = x[j] > m ? x[j] : m;
                    for (int j = 0; j < k; j++)
                        sum += exp((double)x[j] - m);
                    for (int j = 0; j < k; j++) {
                        const double p = exp((double)x[j] - m) / sum;
                        const double got = want[r * rs + j * cs];
                        /* x - m is rounded to float first (as torch): |x - m| 2^-24 more */
                        const double tol = (8.0 + k + fabs((double)x[j] - m)) * 6e-8;
                        if (!(fabs(got - p) <= tol * p + 0x1p-148)) {
                            printf("FAIL %s: reference row %d class %d: %.9g, double %.9g\n",
                                   what, r, j, got, p);
                            failures++;
                            r = n;
                            break;
                        }
                    }
                }
                const int e = rnd32() & 1;
                gbuf gs, gd;
                float *got = galloc(&gd, dn, !e);
                fill_sentinel(got, dn);
                const float *gsp;
                if (layout == 2) {
                    memcpy(got, s, sn * sizeof(float));
                    gsp = got;
                } else {
                    gsp = gcopy(&gs, s, sn, e);
                }
                dut->softmax(got, rs, cs, gsp, ss, (size_t)n, k);
                failures += same_floats(what, got, want, dn); /* padding: still the sentinel */
                int r[4];
                split_ranges(n, r);
                if (layout == 2)
                    memcpy(split, s, sn * sizeof(float));
                for (int q = 2; q >= 0; q--)
                    dut->softmax(split + r[q] * rs, rs, cs,
                                 (layout == 2 ? split : s) + (size_t)r[q] * ss, ss,
                                 (size_t)(r[q + 1] - r[q]), k);
                failures += same_bits(what, split, want, dn);
                st->cases++;
                free(s); free(want); free(split);
                gfree(&gd);
                if (layout != 2)
                    gfree(&gs);
            }
}

/* ------------------------------------------------------------- the table */

typedef void check_fn(const mo_conv_dsp *, const mo_conv_dsp *, const char *, stats *);

#define FN_OFFSET(f) offsetof(mo_conv_dsp, f)
static const struct kernel {
    const char *name;
    size_t off; /* of the function pointer in mo_conv_dsp */
    check_fn *check;
} kernels[] = {
    {"stem3x3", FN_OFFSET(stem3x3), check_stem},
    {"dw3x3", FN_OFFSET(dw3x3), check_dw},
    {"pw", FN_OFFSET(pw), check_pw},
    {"pw_acc", FN_OFFSET(pw_acc), check_pw_acc},
    {"conv3x3", FN_OFFSET(conv3x3), check_conv3x3},
    {"se", FN_OFFSET(se), check_se},
    {"gap", FN_OFFSET(gap), check_gap},
    {"gemv", FN_OFFSET(gemv), check_gemv},
    {"upsample", FN_OFFSET(upsample), check_upsample},
    {"upsample_argmax", FN_OFFSET(upsample_argmax), check_upsample_argmax},
    {"softmax", FN_OFFSET(softmax), check_softmax},
};
#define NKERNELS ((int)(sizeof(kernels) / sizeof(kernels[0])))

static void *fn_at(const mo_conv_dsp *d, size_t off)
{
    void *p;
    memcpy(&p, (const char *)d + off, sizeof(p));
    return p;
}

/* Does the reference clamp at 6 for activation 2 (MO_ACT_RELU6, detection branch)? */
static int probe_relu6(void)
{
    mo_conv_dsp c;
    mo_conv_dsp_init(&c, 0);
    float w[MO_PW_NR] = {1.0f}, b = 0.0f, x = 10.0f, y = 0.0f;
    c.pw(&y, &x, 1, 1, 1, w, &b, 2);
    return y == 6.0f;
}

/* -------------------------------------------------------------- benchmark */

/* CPU time of this thread: on a shared machine, time the kernel does not get the CPU is
 * not counted (what other processes do to the caches still is: hence best of N). */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct bench_case {
    const char *kernel; /* name in kernels[] */
    const char *label;
    int a, b, c, d, e; /* stem: ih iw cout; dw: ih iw c stride dil; pw: n cin cout; gap: n c;
                        * conv3x3: side cin cout dil stride */
} bench_case;

/* MobileOne layers at a 224x224 input (s0 unless marked). */
static const bench_case bench_cases[] = {
    {"stem3x3", "224x224 -> 48", 224, 224, 48, 0, 0},
    {"stem3x3", "224x224 -> 64 (s1-s4)", 224, 224, 64, 0, 0},
    {"dw3x3", "112x112x48 s2", 112, 112, 48, 2, 1},
    {"dw3x3", "56x56x48 s1", 56, 56, 48, 1, 1},
    {"dw3x3", "28x28x128 s1", 28, 28, 128, 1, 1},
    {"dw3x3", "14x14x256 s1", 14, 14, 256, 1, 1},
    {"dw3x3", "14x14x256 s1 d2 (os16)", 14, 14, 256, 1, 2},
    {"dw3x3", "28x28x256 s1 d2 (os8)", 28, 28, 256, 1, 2},
    {"dw3x3", "56x56x96 s1 (s1)", 56, 56, 96, 1, 1},
    {"dw3x3", "14x14x512 s1 (s1)", 14, 14, 512, 1, 1},
    {"dw3x3", "28x28x640 s1 (s2)", 28, 28, 640, 1, 1},
    {"dw3x3", "14x14x896 s2 (s4)", 14, 14, 896, 2, 1},
    {"pw", "3136px 48->48", 3136, 48, 48, 0, 0},
    {"pw", "784px 128->128", 784, 128, 128, 0, 0},
    {"pw", "196px 256->256", 196, 256, 256, 0, 0},
    {"pw", "49px 256->1024", 49, 256, 1024, 0, 0},
    {"pw", "49px 512->1280 (s1)", 49, 512, 1280, 0, 0},
    {"pw", "196px 640->640 (s2)", 196, 640, 640, 0, 0},
    {"pw", "49px 640->2048 (s2)", 49, 640, 2048, 0, 0},
    {"pw_acc", "1024px 1024->256 (seg)", 1024, 1024, 256, 0, 0},
    {"conv3x3", "32x32 1024->256 d6 (seg)", 32, 1024, 256, 6, 1},
    {"conv3x3", "32x32 1024->256 d18 (seg)", 32, 1024, 256, 18, 1},
    {"conv3x3", "32x32 256->256 d1 (seg)", 32, 256, 256, 1, 1},
    {"se", "49px 2048 / 128 (s4)", 49, 2048, 128, 0, 0},
    {"gap", "49px x 1024", 49, 1024, 0, 0, 0},
    /* head operators: gemv n k; upsample(_argmax) ih iw c oh ow; softmax n k class-major */
    {"gemv", "1000 x 1024 (classifier)", 1000, 1024, 0, 0, 0},
    {"gemv", "128 x 1024 (seg pooling)", 128, 1024, 0, 0, 0},
    {"upsample", "32x32x21 -> 512x512", 32, 32, 21, 512, 512},
    {"upsample_argmax", "32x32x21 -> 512x512", 32, 32, 21, 512, 512},
    {"softmax", "3234 x 91 class-major", 3234, 91, 1, 0, 0},
    {"softmax", "65536 x 21 rows", 65536, 21, 0, 0, 0},
};

/* Time one call of kernel k on case bc with dsp d; best of `runs` batches, in seconds. */
static double bench_one(const mo_conv_dsp *d, const bench_case *bc, int runs, double *macs)
{
    size_t nin, nout, nw, nb;
    const char *k = bc->kernel;
    int oh = 0, ow = 0;
    if (!strcmp(k, "stem3x3")) {
        oh = MO_CONV_OUT(bc->a, 2), ow = MO_CONV_OUT(bc->b, 2);
        nin = (size_t)bc->a * bc->b * 3, nout = (size_t)oh * ow * bc->c;
        nw = 27 * (size_t)bc->c, nb = (size_t)bc->c;
        *macs = 27.0 * (double)nout;
    } else if (!strcmp(k, "dw3x3")) {
        oh = MO_CONV_OUT(bc->a, bc->d), ow = MO_CONV_OUT(bc->b, bc->d);
        nin = (size_t)bc->a * bc->b * bc->c, nout = (size_t)oh * ow * bc->c;
        nw = 9 * (size_t)bc->c, nb = (size_t)bc->c;
        *macs = 9.0 * (double)nout;
    } else if (!strcmp(k, "pw") || !strcmp(k, "pw_acc")) {
        nin = (size_t)bc->a * bc->b, nout = (size_t)bc->a * bc->c;
        nw = mo_pw_packed_size(bc->b, bc->c), nb = (size_t)bc->c;
        *macs = (double)bc->a * bc->b * bc->c;
    } else if (!strcmp(k, "conv3x3")) {
        oh = ow = MO_CONV_OUT(bc->a, bc->e);
        nin = (size_t)bc->a * bc->a * bc->b, nout = (size_t)oh * ow * bc->c;
        nw = mo_conv3x3_packed_size(bc->b, bc->c), nb = (size_t)bc->c;
        *macs = 0;
        for (int t = 0; t < 9; t++) { /* taps that read the image */
            int ya, yb, xa, xb;
            mo_conv3x3_range(bc->a, bc->e, (t / 3 - 1) * bc->d, &ya, &yb);
            mo_conv3x3_range(bc->a, bc->e, (t % 3 - 1) * bc->d, &xa, &xb);
            *macs += (double)(yb - ya) * (xb - xa) * bc->b * bc->c;
        }
    } else if (!strcmp(k, "se")) {
        nin = (size_t)bc->a * bc->b, nout = nin;
        nw = 2 * (size_t)bc->b * bc->c, nb = (size_t)(bc->b + bc->c);
        *macs = 2.0 * bc->b * bc->c + 2.0 * (double)nin;
    } else if (!strcmp(k, "gemv")) {
        nin = (size_t)bc->b, nout = (size_t)bc->a, nw = (size_t)bc->a * bc->b, nb = (size_t)bc->a;
        *macs = (double)nw;
    } else if (!strcmp(k, "upsample") || !strcmp(k, "upsample_argmax")) {
        nin = (size_t)bc->a * bc->b * bc->c, nout = (size_t)bc->d * bc->e * bc->c, nw = 1, nb = 1;
        *macs = 6.0 * (double)bc->d * bc->e * bc->c;
    } else if (!strcmp(k, "softmax")) {
        nin = (size_t)bc->a * bc->b, nout = nin, nw = 1, nb = 1;
        *macs = (double)nin;
    } else {
        nin = (size_t)bc->a * bc->b, nout = (size_t)bc->b, nw = 1, nb = 1;
        *macs = (double)nin;
    }
    float *in = xmalloc(nin), *out = xmalloc(nout), *w = xmalloc(nw), *b = xmalloc(nb);
    float *tmp = xmalloc(nb);
    fill(in, nin, DATA_UNIFORM, 0);
    fill(w, nw, DATA_UNIFORM, 1);
    fill(b, nb, DATA_UNIFORM, 2);
    double best = 1e30;
    int reps = 1;
    for (int r = -1; r < runs; r++) {
        const double t0 = now_s();
        for (int i = 0; i < reps; i++) {
            if (!strcmp(k, "stem3x3"))
                d->stem3x3(out, (ptrdiff_t)ow * bc->c, in, (ptrdiff_t)bc->b * 3, bc->a, bc->b,
                           bc->c, w, b, 1, 0, oh);
            else if (!strcmp(k, "dw3x3"))
                d->dw3x3(out, (ptrdiff_t)ow * bc->c, in, (ptrdiff_t)bc->b * bc->c, bc->a, bc->b,
                         bc->c, bc->d, bc->e, w, b, 1, 0, oh);
            else if (!strcmp(k, "pw"))
                d->pw(out, in, (size_t)bc->a, bc->b, bc->c, w, b, 1);
            else if (!strcmp(k, "pw_acc"))
                d->pw_acc(out, bc->c, in, bc->b, (size_t)bc->a, bc->b, bc->c, w);
            else if (!strcmp(k, "conv3x3"))
                d->conv3x3(out, (ptrdiff_t)ow * bc->c, bc->c, in, (ptrdiff_t)bc->a * bc->b,
                           bc->a, bc->a, bc->b, bc->c, bc->e, bc->d, w, b, 1, 0, oh);
            else if (!strcmp(k, "se")) {
                memcpy(out, in, nin * sizeof(float));
                d->se(out, (size_t)bc->a, bc->b, bc->c, w, b, w + (size_t)bc->b * bc->c,
                      b + bc->c, tmp);
            } else if (!strcmp(k, "gemv"))
                d->gemv(out, w, b, in, bc->a, bc->b, 0);
            else if (!strcmp(k, "upsample"))
                d->upsample(out, (ptrdiff_t)bc->e * bc->c, in, (ptrdiff_t)bc->b * bc->c, bc->a,
                            bc->b, bc->c, bc->d, bc->e, 0, bc->d);
            else if (!strcmp(k, "upsample_argmax"))
                d->upsample_argmax((uint8_t *)out, bc->e, in, (ptrdiff_t)bc->b * bc->c, bc->a,
                                   bc->b, bc->c, bc->d, bc->e, 0, bc->d);
            else if (!strcmp(k, "softmax"))
                d->softmax(out, bc->c ? 1 : bc->b, bc->c ? bc->a : 1, in, bc->b, (size_t)bc->a,
                           bc->b);
            else
                d->gap(out, in, (size_t)bc->a, bc->b);
        }
        const double t = (now_s() - t0) / reps;
        if (r < 0) { /* warm-up; pick repetitions for ~5 ms per batch */
            reps = t > 0 ? (int)(0.005 / t) : 1000;
            reps = reps < 1 ? 1 : reps > 100000 ? 100000 : reps;
        } else if (t < best) {
            best = t;
        }
    }
    free(in); free(out); free(w); free(b); free(tmp);
    return best;
}

static int run_bench(const char *only, int runs)
{
    char load[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(load, sizeof(load), f))
            strcpy(load, "?");
        fclose(f);
        load[strcspn(load, "\n")] = 0;
    }
    printf("checkdsp --bench: thread CPU time, best of %d batches of ~5 ms; load average %s\n",
           runs, load);
    printf("%-8s %-26s %-5s %10s %9s %8s\n", "kernel", "shape", "isa", "us/call", "GMAC/s",
           "vs c");
    const unsigned have = mo_get_cpu_flags();
    for (size_t i = 0; i < sizeof(bench_cases) / sizeof(bench_cases[0]); i++) {
        const bench_case *bc = &bench_cases[i];
        if (only && strcmp(only, bc->kernel))
            continue;
        size_t off = 0;
        for (int k = 0; k < NKERNELS; k++)
            if (!strcmp(kernels[k].name, bc->kernel))
                off = kernels[k].off;
        double tc = 0;
        void *prev = NULL;
        for (int l = 0; l < NLEVELS; l++) {
            if ((levels[l].flags & have) != levels[l].flags)
                continue;
            mo_conv_dsp d;
            mo_conv_dsp_init(&d, levels[l].flags);
            if (fn_at(&d, off) == prev)
                continue; /* not replaced at this level */
            prev = fn_at(&d, off);
            double macs;
            const double t = bench_one(&d, bc, runs, &macs);
            if (l == 0)
                tc = t;
            printf("%-8s %-26s %-5s %10.1f %9.2f %7.2fx\n", bc->kernel, bc->label,
                   levels[l].name, t * 1e6, macs / t * 1e-9, tc > 0 ? tc / t : 0.0);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const char *only = NULL;
    int bench = 0, runs = 15;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bench"))
            bench = 1;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng = strtoull(argv[++i], NULL, 0) | 1;
        else if (!strcmp(argv[i], "--kernel") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--seed N] [--kernel NAME] [--bench [--runs N]]\n",
                    argv[0]);
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
    if (bench)
        return run_bench(only, runs);

    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    if (probe_relu6())
        act_modes = 3;
    const unsigned have = mo_get_cpu_flags();
    printf("checkdsp: seed 0x%llx, activation modes 0..%d, cpu flags 0x%x\n",
           (unsigned long long)rng, act_modes - 1, have);
    mo_conv_dsp ref;
    mo_conv_dsp_init(&ref, 0);
    int tested = 0;
    for (int l = 1; l < NLEVELS; l++) {
        if ((levels[l].flags & have) != levels[l].flags) {
            printf("%-5s not available (CPU or build): skipped\n", levels[l].name);
            continue;
        }
        mo_conv_dsp lower, dut;
        mo_conv_dsp_init(&lower, levels[l].below);
        mo_conv_dsp_init(&dut, levels[l].flags);
        for (int k = 0; k < NKERNELS; k++) {
            if (only && strcmp(only, kernels[k].name))
                continue;
            if (fn_at(&dut, kernels[k].off) == fn_at(&lower, kernels[k].off))
                continue; /* this level does not replace the kernel */
            stats st = {0, 0.0};
            const int before = failures;
            kernels[k].check(&ref, &dut, levels[l].name, &st);
            printf("%-8s %-5s %5ld cases, worst error %.3f of the tolerance: %s\n",
                   kernels[k].name, levels[l].name, st.cases, st.worst,
                   failures == before ? "ok" : "FAILED");
            tested++;
        }
    }
    if (!tested)
        printf("no SIMD kernel in this build or on this CPU: only the C reference runs\n");
    if (failures)
        printf("checkdsp: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
