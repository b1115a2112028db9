/*
 * The loader toolkit (mo_internal/loader.h): tensors by name with shape checks, the one
 * BatchNorm fold, conv reading, the record of what was read, the backbone-pairing rule and
 * the model-info struct.
 */
#include "mo_internal/loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "mo_internal/meta.h"

/* ------------------------------------------------------------------ tensors */

void mo_loader_init(mo_loader *L, const mo_file *f, const char *what, const char *prefix,
                    double bn_eps)
{
    memset(L, 0, sizeof(*L));
    L->f = f;
    L->what = what;
    L->prefix = prefix;
    L->bn_eps = bn_eps;
}

void mo_loader_release(mo_loader *L)
{
    if (!L)
        return;
    free(L->seen);
    free(L->bn);
    L->seen = NULL;
    L->bn = NULL;
    L->nseen = L->cap = 0;
    L->bn_cap = 0;
}

static void fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

static int remember(mo_loader *L, const char *name)
{
    if (L->nseen == L->cap) {
        const int cap = L->cap ? 2 * L->cap : 64;
        void *p = realloc(L->seen, sizeof(*L->seen) * (size_t)cap);
        if (!p)
            return mo_fail(MO_ENOMEM, "%s: out of memory", L->what);
        L->seen = p;
        L->cap = cap;
    }
    snprintf(L->seen[L->nseen++], sizeof(L->seen[0]), "%s", name);
    return MO_OK;
}

int mo_load_tensor(mo_loader *L, const char *name, int ndim, const int64_t *shape, float *dst,
                   const char *why)
{
    validate_input_or_ret(L && L->f && name && dst && ndim >= 0 && ndim <= MO_MAX_DIMS &&
                          (shape || !ndim), MO_EINVAL);
    mo_tensor_info info;
    if (mo_file_tensor(L->f, name, &info))
        return mo_fail(MO_EFORMAT, "%s: tensor %s is missing", L->what, name);
    int same = info.ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = info.shape[i] == shape[i];
    if (!same) {
        char got[96], exp[96];
        fmt_shape(got, sizeof(got), info.ndim, info.shape);
        fmt_shape(exp, sizeof(exp), ndim, shape);
        return mo_fail(MO_EMISMATCH, "%s does not fit: %s is %s, expected %s%s%s%s", L->what,
                       name, got, exp, why ? " (" : "", why ? why : "", why ? ")" : "");
    }
    int ret = mo_file_read_f32(L->f, name, ndim, shape, dst);
    return ret ? ret : remember(L, name);
}

int mo_load_shape(mo_loader *L, const char *name, int ndim, int64_t max_dim, int64_t *shape)
{
    validate_input_or_ret(L && L->f && name && shape && ndim > 0 && ndim <= MO_MAX_DIMS,
                          MO_EINVAL);
    mo_tensor_info info;
    if (mo_file_tensor(L->f, name, &info))
        return mo_fail(MO_EFORMAT, "%s: tensor %s is missing", L->what, name);
    if (info.ndim != ndim)
        return mo_fail(MO_EMISMATCH, "%s: tensor %s has %d dims, expected %d", L->what, name,
                       info.ndim, ndim);
    for (int i = 0; i < ndim; i++) {
        if (info.shape[i] < 1 || info.shape[i] > max_dim)
            return mo_fail(MO_EMISMATCH, "%s: tensor %s has dimension %lld (accepted: 1..%lld)",
                           L->what, name, (long long)info.shape[i], (long long)max_dim);
        shape[i] = info.shape[i];
    }
    return MO_OK;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

int mo_loader_check_all(mo_loader *L, int code, const char *hint)
{
    validate_input_or_ret(L && L->f && L->prefix, MO_EINVAL);
    const size_t lp = strlen(L->prefix);
    const int nt = mo_file_num_tensors(L->f);
    /* sorted once: an unfused backbone has ~1200 tensors */
    if (L->nseen > 1)
        qsort(L->seen, (size_t)L->nseen, sizeof(L->seen[0]), cmp_name);
    for (int t = 0; t < nt; t++) {
        mo_tensor_info info;
        if (mo_file_tensor_at(L->f, t, &info) || strncmp(info.name, L->prefix, lp))
            continue;
        char key[sizeof(L->seen[0])];
        snprintf(key, sizeof(key), "%s", info.name);
        const int known = L->nseen && bsearch(key, L->seen, (size_t)L->nseen,
                                              sizeof(L->seen[0]), cmp_name) != NULL;
        if (!known)
            return mo_fail(code, "%s does not fit: the file has tensor %s, but %s", L->what,
                           info.name, hint);
    }
    return MO_OK;
}

/* ---------------------------------------------------------------- BatchNorm */

int mo_bn_scale(const float *gamma, const float *beta, const float *mean, const float *var,
                int i, double eps, double *t, double *shift)
{
    const double v = (double)var[i] + eps;
    if (!(v > 0.0) || !isfinite(v) || !isfinite(gamma[i]) || !isfinite(beta[i]) ||
        !isfinite(mean[i]))
        return MO_EFORMAT;
    *t = (double)gamma[i] / sqrt(v);
    *shift = (double)beta[i] - (double)mean[i] * *t;
    return MO_OK;
}

int mo_bn_fold(float *w, float *b, const float *conv_bias, int cout, size_t per, const float *bn,
               double eps, const char *bn_name)
{
    const float *gamma = bn, *beta = bn + cout, *mean = bn + 2 * (size_t)cout,
                *var = bn + 3 * (size_t)cout;
    for (int o = 0; o < cout; o++) {
        double t, shift;
        if (mo_bn_scale(gamma, beta, mean, var, o, eps, &t, &shift))
            return mo_fail(MO_EFORMAT, "%s.running_var[%d] + eps = %g is not positive, or a "
                           "BatchNorm value of channel %d is not finite", bn_name, o,
                           (double)var[o] + eps, o);
        float *wr = w + (size_t)o * per;
        for (size_t j = 0; j < per; j++)
            wr[j] = (float)((double)wr[j] * t);
        b[o] = (float)(conv_bias ? shift + (double)conv_bias[o] * t : shift);
    }
    return MO_OK;
}

int mo_load_conv(mo_loader *L, const char *conv, const char *bn, int cout, int cin_g, int k,
                 float *w, float *b, const char *why)
{
    validate_input_or_ret(L && conv && w && b && cout > 0 && cin_g > 0 && k > 0, MO_EINVAL);
    char name[256], why2[512];
    const int64_t ws[4] = {cout, cin_g, k, k}, bs[1] = {cout};
    snprintf(name, sizeof(name), "%s.weight", conv);
    int ret = mo_load_tensor(L, name, 4, ws, w, why);
    if (ret)
        return ret;
    if (!bn) {
        snprintf(name, sizeof(name), "%s.bias", conv);
        return mo_load_tensor(L, name, 1, bs, b, why);
    }
    if (L->bn_cap < 4 * (size_t)cout) {
        float *p = realloc(L->bn, sizeof(float) * 4 * (size_t)cout);
        if (!p)
            return mo_fail(MO_ENOMEM, "%s: out of memory", L->what);
        L->bn = p;
        L->bn_cap = 4 * (size_t)cout;
    }
    static const char *const part[4] = {"weight", "bias", "running_mean", "running_var"};
    snprintf(why2, sizeof(why2), "BatchNorm of %s%s%s", conv, why ? ": " : "", why ? why : "");
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "%s.%s", bn, part[i]);
        if ((ret = mo_load_tensor(L, name, 1, bs, L->bn + (size_t)i * cout, why2)))
            return ret;
    }
    return mo_bn_fold(w, b, NULL, cout, (size_t)cin_g * k * k, L->bn, L->bn_eps, bn);
}

/* ------------------------------------------------------------------ pairing */

int mo_pair_check(const mo_file *f, const char *what, const char *bb_variant,
                  const char *bb_digest)
{
    validate_input_or_ret(f && what && bb_variant && bb_digest, MO_EINVAL);
    const char *variant = mo_file_meta(f, "mo.variant");
    const char *digest = mo_file_meta(f, "mo.backbone_digest");
    char own[17] = "";
    int ret = mo_file_digest(f, "backbone.", own);
    if (ret && ret != MO_EFORMAT) /* EFORMAT: no backbone tensor in the file */
        return ret;
    if (!own[0] && !variant)
        return mo_fail(MO_EFORMAT, "%s: a head-only file must name its backbone (metadata "
                       "mo.variant is missing)", what);
    if (!own[0] && !digest)
        return mo_fail(MO_EFORMAT, "%s: a head-only file must name its backbone (metadata "
                       "mo.backbone_digest is missing)", what);
    const char *want = digest ? digest : own; /* both present: both are checked below */
    if ((variant && strcmp(variant, bb_variant)) || strcmp(want, bb_digest) ||
        (own[0] && strcmp(own, bb_digest)))
        return mo_fail(MO_EMISMATCH, "%s names backbone MobileOne-%s %s, but this backbone "
                       "is MobileOne-%s %s (other weights, or the same stored differently, "
                       "e.g. F16 or unfused)", what, variant ? variant : bb_variant,
                       strcmp(want, bb_digest) ? want : own, bb_variant, bb_digest);
    mo_set_error("%s", "");
    return MO_OK;
}

/* ------------------------------------------------------------------ model info */

static int side_pair(const mo_file *f, const char *key, int *h, int *w)
{
    double v[2];
    int n, ret = mo_meta_list(f, key, v, 2, &n);
    if (!ret && n == 2) {
        *h = (int)v[0];
        *w = (int)v[1];
    }
    return ret;
}

int mo_model_info_read(const mo_file *f, const char *head, mo_model_info *info)
{
    validate_input_or_ret(f && info, MO_EINVAL);
    memset(info, 0, sizeof(*info));
    static const char *const kinds[4] = {"backbone", "cls", "det", "seg"};
    int ret;
    info->has_contents = mo_file_meta(f, "mo.contents") != NULL;
    for (int i = 0; i < 4 && info->has_contents; i++) {
        int found;
        if ((ret = mo_meta_contains(f, kinds[i], &found)))
            return ret;
        info->contents |= found ? 1u << i : 0u;
    }
    info->variant = mo_file_meta(f, "mo.variant");
    info->backbone_digest = mo_file_meta(f, "mo.backbone_digest");
    double resize = 256, crop = 224, os = 16;
    if ((ret = mo_file_preprocess(f, info->mean, info->std)) ||
        (ret = side_pair(f, "mo.input_size", &info->input_h, &info->input_w)) ||
        (ret = mo_file_meta_number(f, "cls.resize", &resize)) ||
        (ret = mo_file_meta_number(f, "cls.crop", &crop)) ||
        (ret = mo_file_meta_number(f, "seg.output_stride", &os)))
        return ret;
    if ((info->contents & MO_HOLDS_DET) &&
        (ret = side_pair(f, "det.input_size", &info->input_h, &info->input_w)))
        return ret;
    info->cls_resize = (int)resize;
    info->cls_crop = (int)crop;
    info->seg_output_stride = (int)os;
    if (!head)
        return MO_OK;
    int bit = 0;
    for (int i = 1; i < 4; i++)
        bit = !strcmp(head, kinds[i]) ? 1 << i : bit;
    validate_input_or_ret(bit, MO_EINVAL);
    static const char *const what[4] = {"", "classification", "detection", "segmentation"};
    const int k = bit == MO_HOLDS_CLS ? 1 : bit == MO_HOLDS_DET ? 2 : 3;
    if (!(info->contents & (unsigned)bit))
        return mo_fail(MO_EFORMAT, "the file holds no %s head (mo.contents=%s lacks \"%s\")",
                       what[k], info->has_contents ? mo_file_meta(f, "mo.contents")
                                                   : "(missing)", head);
    char key[16];
    snprintf(key, sizeof(key), "%s.classes", head);
    return mo_meta_names(f, key, &info->classes, &info->num_classes);
}

int mo_head_begin(const mo_file *f, const char *head, const char *what, const char *bb_variant,
                  const char *bb_digest, mo_model_info *info)
{
    validate_input_or_ret(f && head && what && info, MO_EINVAL);
    memset(info, 0, sizeof(*info));
    int found, ret = mo_meta_contains(f, head, &found);
    if (ret && ret != MO_EFORMAT)
        return ret;
    if (ret || !found)
        return mo_fail(MO_EFORMAT, "the file holds no %s (mo.contents=%s lacks \"%s\")", what,
                       mo_file_meta(f, "mo.contents") ? mo_file_meta(f, "mo.contents")
                                                      : "(missing)", head);
    if ((ret = mo_pair_check(f, what, bb_variant, bb_digest)))
        return ret;
    return mo_model_info_read(f, head, info);
}

void mo_model_info_release(mo_model_info *info)
{
    if (!info)
        return;
    free(info->classes); /* one block (mo_meta_names) */
    info->classes = NULL;
    info->num_classes = 0;
}
