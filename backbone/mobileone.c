/*
 * MobileOne backbone: architecture table (s0..s4), loading of fused or train-time
 * weights, and the reparameterization of train-time branches into one conv per block
 * (REFERENCE.md section 1, weights/FORMAT.md for the tensor names).
 */
#include "mobileone_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "mo_internal/settings.h"
#include "mo_internal/loader.h"
#include "mo/cpu.h"

/* ------------------------------------------------------------------ tables */

static const int stage_blocks[4] = {2, 8, 10, 1};
static const int stage_base[4] = {64, 128, 256, 512};

static const struct mo_arch {
    const char *name;
    int quarters[4]; /* width multipliers w0..w3 in units of 1/4, so widths are exact */
    int k;           /* conv branches of the train-time blocks (the stem always has one) */
    int se;          /* squeeze-excite on the last 5 blocks of stage3 and on stage4 */
} archs[] = {
    {"s0", {3, 4, 4, 8}, 4, 0},
    {"s1", {6, 6, 8, 10}, 1, 0},
    {"s2", {6, 8, 10, 16}, 1, 0},
    {"s3", {8, 10, 12, 16}, 1, 0},
    {"s4", {12, 14, 14, 16}, 1, 1},
};

#define SE_DIV 16 /* int(c * 0.0625) */

/* ---------------------------------------------------------- reparameterize */

/* The toolkit's BatchNorm fold (core/loader.c), the one the heads use. */
static int bn_scale(const mo_bn *bn, int co, double eps, double *t, double *shift)
{
    return mo_bn_scale(bn->gamma, bn->beta, bn->mean, bn->var, co, eps, t, shift);
}

int mo_reparam(const mo_branches *br, float *w, float *b)
{
    const int kk = br->k * br->k, per = br->cin_g * kk, centre = (br->k / 2) * br->k + br->k / 2;
    double *acc = malloc(sizeof(double) * (size_t)per);
    if (!acc)
        return mo_fail(MO_ENOMEM, "out of memory for the reparameterisation");
    int ret = MO_OK;
    for (int co = 0; co < br->cout && ret == MO_OK; co++) {
        double t, shift, bias = 0.0;
        for (int j = 0; j < per; j++)
            acc[j] = 0.0;
        for (int i = 0; i < br->nconv; i++) {
            if ((ret = bn_scale(&br->conv_bn[i], co, br->eps, &t, &shift)) < 0)
                break;
            const float *src = br->conv_w[i] + (size_t)co * per;
            for (int j = 0; j < per; j++)
                acc[j] += (double)src[j] * t;
            bias += shift;
        }
        if (ret == MO_OK && br->scale_w) {
            if ((ret = bn_scale(&br->scale_bn, co, br->eps, &t, &shift)) == MO_OK) {
                const float *src = br->scale_w + (size_t)co * br->cin_g;
                for (int ci = 0; ci < br->cin_g; ci++)
                    acc[ci * kk + centre] += (double)src[ci] * t;
                bias += shift;
            }
        }
        if (ret == MO_OK && br->has_skip) {
            if ((ret = bn_scale(&br->skip_bn, co, br->eps, &t, &shift)) == MO_OK) {
                acc[(co % br->cin_g) * kk + centre] += t;
                bias += shift;
            }
        }
        if (ret == MO_OK) {
            for (int j = 0; j < per; j++)
                w[(size_t)co * per + j] = (float)acc[j];
            b[co] = (float)bias;
        } else {
            mo_set_error("BatchNorm running_var + eps is not positive, or a BatchNorm value "
                         "is not finite, at channel %d (eps %g)", co, br->eps);
        }
    }
    free(acc);
    return ret;
}

/* ------------------------------------------------------------- loading */

/* What a module looks like in the file, before loading. */
typedef struct mod_spec {
    int groups, k, nconv, has_scale, has_skip;
    char name[32]; /* e.g. "stage2.7." */
} mod_spec;

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static size_t packed_weight_size(const mo_module *m)
{
    switch (m->type) {
    case MO_MOD_STEM: return (size_t)27 * m->cout;
    case MO_MOD_DW: return (size_t)9 * m->cout;
    default: return mo_pw_packed_size(m->cin, m->cout);
    }
}

/* Fill bb->mod[] and specs from the variant's table; returns the packed floats needed. */
static size_t build_modules(mo_backbone *bb, const struct mo_arch *a, mod_spec *spec)
{
    bb->width[0] = 64 * a->quarters[0] / 4;
    if (bb->width[0] > 64)
        bb->width[0] = 64;
    for (int s = 0; s < 4; s++)
        bb->width[s + 1] = stage_base[s] * a->quarters[s] / 4;

    int n = 0;
    mo_module *m = &bb->mod[n];
    *m = (mo_module){.type = MO_MOD_STEM, .stage = 0, .cin = 3, .cout = bb->width[0],
                     .stride = 2};
    spec[n] = (mod_spec){.groups = 1, .k = 3, .nconv = 1, .has_scale = 1, .has_skip = 0};
    snprintf(spec[n].name, sizeof(spec[n].name), "stage0.");
    n++;
    bb->stage_end[0] = n;
    int cin = bb->width[0];
    for (int s = 0; s < 4; s++) {
        const int cout = bb->width[s + 1], nb = stage_blocks[s];
        const int nse = a->se ? (s == 2 ? nb / 2 : s == 3 ? nb : 0) : 0;
        for (int blk = 0; blk < nb; blk++) {
            const int se = blk >= nb - nse, stride = blk == 0 ? 2 : 1;
            bb->mod[n] = (mo_module){.type = MO_MOD_DW, .stage = s + 1, .cin = cin,
                                     .cout = cin, .stride = stride,
                                     .se_c = se ? cin / SE_DIV : 0};
            spec[n] = (mod_spec){.groups = cin, .k = 3, .nconv = a->k, .has_scale = 1,
                                 .has_skip = stride == 1};
            snprintf(spec[n].name, sizeof(spec[n].name), "stage%d.%d.", s + 1, 2 * blk);
            n++;
            bb->mod[n] = (mo_module){.type = MO_MOD_PW, .stage = s + 1, .cin = cin,
                                     .cout = cout, .stride = 1,
                                     .se_c = se ? cout / SE_DIV : 0};
            spec[n] = (mod_spec){.groups = 1, .k = 1, .nconv = a->k, .has_scale = 0,
                                 .has_skip = cin == cout};
            snprintf(spec[n].name, sizeof(spec[n].name), "stage%d.%d.", s + 1, 2 * blk + 1);
            n++;
            cin = cout;
        }
        bb->stage_end[s + 1] = n;
    }
    bb->nmod = n;

    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const mo_module *mm = &bb->mod[i];
        total += align16(packed_weight_size(mm)) + align16((size_t)mm->cout);
        if (mm->se_c)
            total += 2 * align16((size_t)mm->se_c * mm->cout) + align16((size_t)mm->se_c) +
                     align16((size_t)mm->cout);
    }
    return total;
}

typedef struct loader {
    const mo_file *f;
    const char *prefix;
    double eps;
    char name[256];
    mo_loader tk; /* the loader toolkit: reads, shape checks, what was read */
} loader;

static const char *tname(loader *L, const mod_spec *sp, const char *suffix)
{
    snprintf(L->name, sizeof(L->name), "%s%s%s", L->prefix, sp->name, suffix);
    return L->name;
}

/* Read one tensor of 1 dim [n] or 4 dims [a][b][k][k] (k = 0: 1 dim). */
static int read_t(loader *L, const mod_spec *sp, const char *suffix, int64_t a, int64_t b,
                  int k, float *dst)
{
    const int64_t shape[4] = {a, b, k, k};
    return mo_load_tensor(&L->tk, tname(L, sp, suffix), k ? 4 : 1, shape, dst, NULL);
}

static int read_bn(loader *L, const mod_spec *sp, const char *bn_prefix, int c, float *dst,
                   mo_bn *bn)
{
    static const char *const field[4] = {"weight", "bias", "running_mean", "running_var"};
    char suffix[64];
    for (int i = 0; i < 4; i++) {
        snprintf(suffix, sizeof(suffix), "%s%s", bn_prefix, field[i]);
        int ret = read_t(L, sp, suffix, c, 0, 0, dst + (size_t)i * c);
        if (ret < 0)
            return ret;
    }
    *bn = (mo_bn){dst, dst + c, dst + 2 * (size_t)c, dst + 3 * (size_t)c};
    return MO_OK;
}

/* Count the module's tensors by kind; names outside the known kinds are an error. */
static int scan_module(loader *L, const mod_spec *sp, int *n_fused, int *n_unfused, int *n_se)
{
    char pre[192]; /* prefix (<= 128) + module name (< 32) */
    snprintf(pre, sizeof(pre), "%s%s", L->prefix, sp->name);
    const size_t lp = strlen(pre);
    *n_fused = *n_unfused = *n_se = 0;
    const int nt = mo_file_num_tensors(L->f);
    for (int i = 0; i < nt; i++) {
        mo_tensor_info info;
        if (mo_file_tensor_at(L->f, i, &info) < 0)
            return MO_EINVAL;
        if (strncmp(info.name, pre, lp))
            continue;
        const char *rest = info.name + lp;
        if (!strncmp(rest, "reparam_conv.", 13))
            (*n_fused)++;
        else if (!strncmp(rest, "rbr_", 4))
            (*n_unfused)++;
        else if (!strncmp(rest, "se.", 3))
            (*n_se)++;
        else
            return mo_fail(MO_EFORMAT, "unexpected backbone tensor %s", info.name);
    }
    return MO_OK;
}

static int load_unfused(loader *L, const mod_spec *sp, const mo_module *m, float *w, float *b)
{
    const int cg = m->cin / sp->groups, k = sp->k, c = m->cout;
    const size_t per_w = (size_t)c * cg * k * k;
    const size_t need = (size_t)sp->nconv * (per_w + 4 * (size_t)c) +
                        (sp->has_scale ? (size_t)c * cg + 4 * (size_t)c : 0) +
                        (sp->has_skip ? 4 * (size_t)c : 0);
    float *tmp = malloc(sizeof(float) * (need ? need : 1));
    const float **conv_w = malloc(sizeof(*conv_w) * (size_t)(sp->nconv ? sp->nconv : 1));
    mo_bn *conv_bn = malloc(sizeof(*conv_bn) * (size_t)(sp->nconv ? sp->nconv : 1));
    int ret = MO_ENOMEM;
    if (!tmp || !conv_w || !conv_bn) {
        mo_set_error("out of memory reading module %s", sp->name);
        goto done;
    }
    mo_branches br = {.cout = c, .cin_g = cg, .k = k, .nconv = sp->nconv, .conv_w = conv_w,
                      .conv_bn = conv_bn, .has_skip = sp->has_skip, .eps = L->eps};
    float *p = tmp;
    char suffix[64];
    for (int i = 0; i < sp->nconv; i++) {
        snprintf(suffix, sizeof(suffix), "rbr_conv.%d.conv.weight", i);
        if ((ret = read_t(L, sp, suffix, c, cg, k, p)) < 0)
            goto done;
        conv_w[i] = p;
        p += per_w;
        snprintf(suffix, sizeof(suffix), "rbr_conv.%d.bn.", i);
        if ((ret = read_bn(L, sp, suffix, c, p, &conv_bn[i])) < 0)
            goto done;
        p += 4 * (size_t)c;
    }
    if (sp->has_scale) {
        if ((ret = read_t(L, sp, "rbr_scale.conv.weight", c, cg, 1, p)) < 0)
            goto done;
        br.scale_w = p;
        p += (size_t)c * cg;
        if ((ret = read_bn(L, sp, "rbr_scale.bn.", c, p, &br.scale_bn)) < 0)
            goto done;
        p += 4 * (size_t)c;
    }
    if (sp->has_skip) {
        if ((ret = read_bn(L, sp, "rbr_skip.", c, p, &br.skip_bn)) < 0)
            goto done;
        p += 4 * (size_t)c;
    }
    if ((ret = mo_reparam(&br, w, b)) < 0) {
        if (ret == MO_ENOMEM)
            mo_fail(ret, "module %s%s: out of memory", L->prefix, sp->name);
        else
            mo_fail_prefix(ret, "module %s%s", L->prefix, sp->name);
    }
done:
    free(tmp);
    free(conv_w);
    free(conv_bn);
    return ret;
}

static int load_module(loader *L, const mod_spec *sp, mo_module *m)
{
    int n_fused, n_unfused, n_se, ret;
    if ((ret = scan_module(L, sp, &n_fused, &n_unfused, &n_se)) < 0)
        return ret;
    if (n_fused && n_unfused)
        return mo_fail(MO_EFORMAT,
                       "module %s%s mixes fused (reparam_conv) and train-time (rbr_*) tensors",
                       L->prefix, sp->name);
    if (!n_fused && !n_unfused)
        return mo_fail(MO_EFORMAT, "missing tensor %s%sreparam_conv.weight (or rbr_* branches)",
                       L->prefix, sp->name);

    const int cg = m->cin / sp->groups, k = sp->k, c = m->cout;
    const size_t nw = (size_t)c * cg * k * k;
    float *w = malloc(sizeof(float) * nw);
    if (!w)
        return mo_fail(MO_ENOMEM, "out of memory loading %s%s", L->prefix, sp->name);
    if (n_fused) {
        ret = read_t(L, sp, "reparam_conv.weight", c, cg, k, w);
        if (ret == MO_OK)
            ret = read_t(L, sp, "reparam_conv.bias", c, 0, 0, m->bias);
        if (ret == MO_OK && n_fused != 2)
            ret = mo_fail(MO_EFORMAT, "module %s%s has unexpected reparam_conv tensors",
                          L->prefix, sp->name);
    } else {
        ret = load_unfused(L, sp, m, w, m->bias);
        const int expect = sp->nconv * 5 + sp->has_scale * 5 + sp->has_skip * 4;
        if (ret == MO_OK && n_unfused != expect)
            ret = mo_fail(MO_EFORMAT,
                          "module %s%s has %d train-time tensors, MobileOne has %d there",
                          L->prefix, sp->name, n_unfused, expect);
    }
    if (ret == MO_OK) {
        if (m->type == MO_MOD_STEM)
            mo_stem_pack(m->weight, w, c);
        else if (m->type == MO_MOD_DW)
            mo_dw_pack(m->weight, w, c);
        else
            mo_pw_pack(m->weight, w, m->cin, c);
    }
    free(w);
    if (ret < 0)
        return ret;

    if (m->se_c) {
        if ((ret = read_t(L, sp, "se.reduce.weight", m->se_c, c, 1, m->se_rw)) < 0 ||
            (ret = read_t(L, sp, "se.reduce.bias", m->se_c, 0, 0, m->se_rb)) < 0 ||
            (ret = read_t(L, sp, "se.expand.weight", c, m->se_c, 1, m->se_ew)) < 0 ||
            (ret = read_t(L, sp, "se.expand.bias", c, 0, 0, m->se_eb)) < 0)
            return ret;
        if (n_se != 4)
            return mo_fail(MO_EFORMAT, "module %s%s has unexpected se tensors", L->prefix,
                           sp->name);
    } else if (n_se) {
        return mo_fail(MO_EFORMAT, "module %s%s has se tensors, but variant has no SE there",
                       L->prefix, sp->name);
    }
    return MO_OK;
}

/* mo.bn_eps, and the normalization the apps will read (checked here so that a model with a
 * senseless mo.mean or mo.std is refused at open, whoever opens it). */
static int parse_meta(const mo_file *f, double *eps)
{
    float mean[3], std[3];
    int ret = mo_file_meta_number(f, "mo.bn_eps", eps);
    return ret ? ret : mo_file_preprocess(f, mean, std);
}

void mo_backbone_default_settings_sized(mo_backbone_settings *s, size_t size)
{
    const mo_backbone_settings d = {.size = sizeof(d), .prefix = "backbone."};
    MO_SETTINGS_FILL(s, size, &d);
}

int mo_backbone_open(mo_backbone **out, const mo_file *f, const mo_backbone_settings *s)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(f, MO_EINVAL);
    mo_backbone_settings def;
    mo_backbone_default_settings(&def);
    static const size_t ends[] = {MO_FIELD_END(mo_backbone_settings, prefix)};
    int sr = MO_SETTINGS_TAKE(&def, s, ends, "mo_backbone_open", "mo_backbone_settings");
    if (sr)
        return sr;
    if (!def.prefix)
        def.prefix = "backbone.";
    if (strlen(def.prefix) > 128)
        return mo_fail(MO_EINVAL, "mo_backbone_open: prefix longer than 128 characters");

    const char *arch = mo_file_meta(f, "mo.arch");
    if (arch && strcmp(arch, "mobileone"))
        return mo_fail(MO_EUNSUPPORTED, "metadata mo.arch is \"%s\", not \"mobileone\"", arch);
    const char *variant = mo_file_meta(f, "mo.variant");
    if (!variant)
        return mo_fail(MO_EFORMAT, "missing metadata mo.variant");
    const struct mo_arch *a = NULL;
    for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++)
        if (!strcmp(variant, archs[i].name))
            a = &archs[i];
    if (!a)
        return mo_fail(MO_EUNSUPPORTED, "unknown MobileOne variant \"%s\" (s0..s4)", variant);

    loader L = {.f = f, .prefix = def.prefix};
    int ret = parse_meta(f, &L.eps);
    if (ret < 0)
        return ret;
    mo_loader_init(&L.tk, f, "backbone", def.prefix, L.eps);

    mo_backbone *bb = calloc(1, sizeof(*bb));
    mod_spec *spec = calloc(MO_MAX_MODULES, sizeof(*spec));
    if (!bb || !spec) {
        free(bb);
        free(spec);
        return mo_fail(MO_ENOMEM, "out of memory opening the backbone");
    }
    snprintf(bb->variant, sizeof(bb->variant), "%s", a->name);
    const size_t total = build_modules(bb, a, spec);
    bb->mem = aligned_alloc(64, align16(total) * sizeof(float));
    if (!bb->mem) {
        ret = mo_fail(MO_ENOMEM, "out of memory for %zu weights", total);
        goto fail;
    }
    float *p = bb->mem;
    for (int i = 0; i < bb->nmod; i++) {
        mo_module *m = &bb->mod[i];
        m->weight = p;
        p += align16(packed_weight_size(m));
        m->bias = p;
        p += align16((size_t)m->cout);
        if (m->se_c) {
            m->se_rw = p;
            p += align16((size_t)m->se_c * m->cout);
            m->se_rb = p;
            p += align16((size_t)m->se_c);
            m->se_ew = p;
            p += align16((size_t)m->se_c * m->cout);
            m->se_eb = p;
            p += align16((size_t)m->cout);
        }
    }
    for (int i = 0; i < bb->nmod; i++)
        if ((ret = load_module(&L, &spec[i], &bb->mod[i])) < 0)
            goto fail;
    char hint[64];
    snprintf(hint, sizeof(hint), "it is not part of MobileOne-%s", bb->variant);
    if ((ret = mo_loader_check_all(&L.tk, MO_EFORMAT, hint)) < 0)
        goto fail;
    if ((ret = mo_file_digest(f, L.prefix, bb->digest)) < 0)
        goto fail;
    mo_conv_dsp_init(&bb->dsp, mo_get_cpu_flags()); /* SIMD kernels: include/mo/cpu.h */
    free(spec);
    mo_loader_release(&L.tk);
    *out = bb;
    return MO_OK;
fail:
    free(spec);
    mo_loader_release(&L.tk);
    mo_backbone_close(&bb);
    return ret;
}

void mo_backbone_close(mo_backbone **bb)
{
    if (!bb || !*bb)
        return;
    free((*bb)->mem);
    free(*bb);
    *bb = NULL;
}

const char *mo_backbone_variant(const mo_backbone *bb)
{
    return bb ? bb->variant : NULL;
}

int mo_backbone_channels(const mo_backbone *bb, int level)
{
    validate_input_or_ret(bb && level >= 0 && level < MO_NUM_LEVELS, MO_EINVAL);
    return bb->width[level + 1];
}

const char *mo_backbone_digest(const mo_backbone *bb)
{
    return bb ? bb->digest : NULL;
}
