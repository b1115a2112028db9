/*
 * SSD default boxes, as torchvision 0.14's DefaultBoxGenerator with steps = None.
 *
 * Rounding follows torchvision so the boxes agree to the last bit in practice: scales
 * and width/height pairs are computed in double (Python floats) and rounded to float32
 * once (torch.as_tensor), centres are float32 divisions of (i + 0.5) by the grid size,
 * and the corners are float32 (centre -/+ 0.5 * size) * image size.
 */
#include <math.h>

#include "mo_internal/errors.h"
#include "mo_internal/settings.h"
#include "detect_internal.h"

static void anchor_defaults(mo_anchor_config *c)
{
    *c = (mo_anchor_config){.size = sizeof(*c)};
    c->num_levels = 6;
    for (int l = 0; l < 6; l++) {
        c->num_ratios[l] = 2;
        c->ratios[l][0] = 2;
        c->ratios[l][1] = 3;
    }
    c->min_ratio = 0.2;
    c->max_ratio = 0.95;
    c->clip = 1;
}

MO_API void mo_anchor_config_default_sized(mo_anchor_config *c, size_t size)
{
    mo_anchor_config d;
    anchor_defaults(&d);
    MO_SETTINGS_FILL(c, size, &d);
}

/* The caller's configuration over the defaults: the fields its `size` covers. */
static int take_config(mo_anchor_config *dst, const mo_anchor_config *c, const char *fn)
{
    static const size_t ends[] = {
        MO_FIELD_END(mo_anchor_config, num_levels), MO_FIELD_END(mo_anchor_config, num_ratios),
        MO_FIELD_END(mo_anchor_config, ratios),     MO_FIELD_END(mo_anchor_config, min_ratio),
        MO_FIELD_END(mo_anchor_config, max_ratio),  MO_FIELD_END(mo_anchor_config, num_scales),
        MO_FIELD_END(mo_anchor_config, scales),     MO_FIELD_END(mo_anchor_config, clip)};
    anchor_defaults(dst);
    return MO_SETTINGS_TAKE(dst, c, ends, fn, "mo_anchor_config");
}

int mo_det_check_anchor_config(const mo_anchor_config *c)
{
    if (c->num_levels < 1 || c->num_levels > MO_DET_MAX_LEVELS)
        return mo_fail(MO_EINVAL, "anchor config: %d levels, expected 1..%d", c->num_levels,
                       MO_DET_MAX_LEVELS);
    for (int l = 0; l < c->num_levels; l++) {
        if (c->num_ratios[l] < 0 || c->num_ratios[l] > MO_DET_MAX_RATIOS)
            return mo_fail(MO_EINVAL, "anchor config: level %d has %d aspect ratios, expected "
                           "0..%d", l, c->num_ratios[l], MO_DET_MAX_RATIOS);
        for (int r = 0; r < c->num_ratios[l]; r++)
            if (!(c->ratios[l][r] > 0.0) || !isfinite(c->ratios[l][r]))
                return mo_fail(MO_EINVAL, "anchor config: aspect ratio %g of level %d is not "
                               "a positive number", c->ratios[l][r], l);
    }
    if (c->num_scales) {
        if (c->num_scales != c->num_levels + 1)
            return mo_fail(MO_EINVAL, "anchor config: %d scales for %d levels (need levels + 1)",
                           c->num_scales, c->num_levels);
        for (int k = 0; k < c->num_scales; k++)
            if (!(c->scales[k] >= 0.0) || !isfinite(c->scales[k]))
                return mo_fail(MO_EINVAL, "anchor config: scale %d is %g", k, c->scales[k]);
    } else if (!isfinite(c->min_ratio) || !isfinite(c->max_ratio) || c->min_ratio < 0.0 ||
               c->max_ratio < 0.0) {
        return mo_fail(MO_EINVAL, "anchor config: min/max ratio %g/%g", c->min_ratio,
                       c->max_ratio);
    }
    return MO_OK;
}

MO_API int mo_anchors_per_location(const mo_anchor_config *cfg, int level)
{
    mo_anchor_config full, *c = &full;
    validate_input_or_ret(cfg, MO_EINVAL);
    int err = take_config(&full, cfg, "mo_anchors_per_location");
    if (err)
        return err;
    validate_input_or_ret(level >= 0 && level < c->num_levels &&
                              level < MO_DET_MAX_LEVELS, MO_EINVAL);
    return 2 + 2 * c->num_ratios[level];
}

/* torchvision: scales = [min + (max - min) * k / (L - 1.0) for k < L] + [1.0]; L = 1:
 * [min, max]. */
static double scale_of(const mo_anchor_config *c, int k)
{
    if (c->num_scales)
        return c->scales[k];
    const int L = c->num_levels;
    if (L == 1)
        return k == 0 ? c->min_ratio : c->max_ratio;
    if (k >= L)
        return 1.0;
    const double range = c->max_ratio - c->min_ratio;
    return c->min_ratio + range * k / (L - 1.0);
}

static float clamp01(float v)
{
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

MO_API int mo_anchors_generate(const mo_anchor_config *cfg, const int *grid_h,
                               const int *grid_w, int image_h, int image_w, float *out,
                               int cap, int *n)
{
    validate_input_or_ret(n, MO_EINVAL);
    *n = 0;
    validate_input_or_ret(cfg && grid_h && grid_w, MO_EINVAL);
    mo_anchor_config full, *c = &full;
    int err = take_config(&full, cfg, "mo_anchors_generate");
    if (!err)
        err = mo_det_check_anchor_config(c);
    if (err)
        return err;
    if (image_h < 1 || image_w < 1)
        return mo_fail(MO_EINVAL, "mo_anchors_generate: image size %dx%d", image_w, image_h);
    long long total = 0;
    for (int l = 0; l < c->num_levels; l++) {
        if (grid_h[l] < 1 || grid_w[l] < 1 || grid_h[l] > (1 << 20) || grid_w[l] > (1 << 20))
            return mo_fail(MO_EINVAL, "mo_anchors_generate: grid %d is %dx%d", l, grid_w[l],
                           grid_h[l]);
        total += (long long)grid_h[l] * grid_w[l] * (2 + 2 * c->num_ratios[l]);
    }
    if (total > (1 << 28))
        return mo_fail(MO_EINVAL, "mo_anchors_generate: %lld boxes", total);
    *n = (int)total;
    if (cap < total)
        return mo_fail(MO_EINVAL, "mo_anchors_generate: room for %d boxes, %lld needed", cap,
                       total);
    validate_input_or_ret(out, MO_EINVAL);

    const float fw = (float)image_w, fh = (float)image_h;
    float *o = out;
    for (int l = 0; l < c->num_levels; l++) {
        /* width/height pairs of this level, as torchvision's _generate_wh_pairs */
        float wh[2 + 2 * MO_DET_MAX_RATIOS][2];
        const double s = scale_of(c, l), s1 = scale_of(c, l + 1);
        const double sp = sqrt(s * s1);
        int a = 0;
        wh[a][0] = (float)s;
        wh[a++][1] = (float)s;
        wh[a][0] = (float)sp;
        wh[a++][1] = (float)sp;
        for (int r = 0; r < c->num_ratios[l]; r++) {
            const double q = sqrt(c->ratios[l][r]);
            const double w = s * q, h = s / q;
            wh[a][0] = (float)w;
            wh[a++][1] = (float)h;
            wh[a][0] = (float)h;
            wh[a++][1] = (float)w;
        }
        if (c->clip)
            for (int i = 0; i < a; i++) {
                wh[i][0] = clamp01(wh[i][0]);
                wh[i][1] = clamp01(wh[i][1]);
            }
        const float gh = (float)grid_h[l], gw = (float)grid_w[l];
        for (int i = 0; i < grid_h[l]; i++) {
            const float cy = ((float)i + 0.5f) / gh;
            for (int j = 0; j < grid_w[l]; j++) {
                const float cx = ((float)j + 0.5f) / gw;
                for (int k = 0; k < a; k++) {
                    const float hw = 0.5f * wh[k][0], hh = 0.5f * wh[k][1];
                    o[0] = (cx - hw) * fw;
                    o[1] = (cy - hh) * fh;
                    o[2] = (cx + hw) * fw;
                    o[3] = (cy + hh) * fh;
                    o += 4;
                }
            }
        }
    }
    return MO_OK;
}

MO_API int mo_box_decode(const float *codes, const float *anchors, int n,
                         const float weights[4], float clip, float *boxes)
{
    validate_input_or_ret(n >= 0, MO_EINVAL);
    if (n == 0)
        return MO_OK;
    validate_input_or_ret(codes && anchors && weights && boxes, MO_EINVAL);
    const float wx = weights[0], wy = weights[1], ww = weights[2], wh = weights[3];
    for (int i = 0; i < n; i++) {
        const float *a = anchors + 4 * (size_t)i;
        const float *d = codes + 4 * (size_t)i;
        const float width = a[2] - a[0], height = a[3] - a[1];
        const float ctr_x = a[0] + 0.5f * width, ctr_y = a[1] + 0.5f * height;
        const float dx = d[0] / wx, dy = d[1] / wy;
        float dw = d[2] / ww, dh = d[3] / wh;
        dw = dw > clip ? clip : dw; /* torch.clamp(max=): NaN stays NaN */
        dh = dh > clip ? clip : dh;
        const float px = dx * width + ctr_x, py = dy * height + ctr_y;
        const float pw = expf(dw) * width, ph = expf(dh) * height;
        const float cw = 0.5f * pw, ch = 0.5f * ph;
        float *b = boxes + 4 * (size_t)i;
        b[0] = px - cw;
        b[1] = py - ch;
        b[2] = px + cw;
        b[3] = py + ch;
    }
    return MO_OK;
}
