/* Classification head: global average pool (computed by the backbone as mo_features.pooled),
 * then a linear layer. Softmax and top-k are small pure functions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/backbone.h"
#include "mo_internal/conv.h"
#include "mo_internal/errors.h"
#include "mo_internal/exec.h"
#include "mo_internal/loader.h"
#include "mo_internal/settings.h"
#include "mo/classify.h"
#include "mo/cpu.h"

struct mo_cls {
    int k, c;
    float *weight; /* [k][c] */
    float *bias;   /* [k] */
    char **names;  /* [k] */
    int resize, crop;       /* cls.resize, cls.crop */
    float mean[3], std[3];  /* mo.mean, mo.std */
    mo_conv_dsp dsp;        /* the kernel table for this CPU (at open): GEMV */
};

void mo_cls_close(mo_cls **pc)
{
    if (!pc || !*pc)
        return;
    mo_cls *c = *pc;
    free(c->names); /* one block (mo_meta_names) */
    free(c->weight);
    free(c->bias);
    free(c);
    *pc = NULL;
}

/* Pairing, metadata and the linear layer, through the loader toolkit (core/loader.c). A
 * crop whose session would exceed mo_limits.model_memory_bytes is refused here, before
 * anyone allocates it. */
void mo_cls_default_settings_sized(mo_cls_settings *s, size_t size)
{
    const mo_cls_settings d = {.size = sizeof(d)};
    MO_SETTINGS_FILL(s, size, &d);
}

int mo_cls_open(mo_cls **out, const mo_file *f, const mo_backbone *bb, const mo_cls_settings *s)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(f && bb, MO_EINVAL);
    mo_cls_settings set;
    mo_cls_default_settings(&set);
    static const size_t ends[] = {MO_FIELD_END(mo_cls_settings, resize),
                                  MO_FIELD_END(mo_cls_settings, crop)};
    int ret = MO_SETTINGS_TAKE(&set, s, ends, "mo_cls_open", "mo_cls_settings");
    if (ret)
        return ret;
    if (set.resize < 0 || set.resize > MO_MAX_INPUT_SIDE || set.crop < 0 ||
        set.crop > MO_MAX_INPUT_SIDE)
        return mo_fail(MO_EINVAL, "mo_cls_open: settings resize %d or crop %d outside "
                                  "0..%d (0: the file's)", set.resize, set.crop,
                       MO_MAX_INPUT_SIDE);
    mo_model_info info;
    ret = mo_head_begin(f, "cls", "classification head", mo_backbone_variant(bb),
                        mo_backbone_digest(bb), &info);
    if (ret)
        return ret;
    mo_cls *c = calloc(1, sizeof(*c));
    if (!c) {
        mo_model_info_release(&info);
        return mo_fail(MO_ENOMEM, "out of memory");
    }
    mo_conv_dsp_init(&c->dsp, mo_get_cpu_flags()); /* mo/cpu.h: honours the flags mask */
    mo_loader L;
    mo_loader_init(&L, f, "classification head", "cls.", 0.0);
    c->names = info.classes;
    c->k = info.num_classes;
    c->resize = set.resize ? set.resize : info.cls_resize;
    c->crop = set.crop ? set.crop : info.cls_crop;
    memcpy(c->mean, info.mean, sizeof(c->mean));
    memcpy(c->std, info.std, sizeof(c->std));
    c->c = mo_backbone_channels(bb, MO_NUM_LEVELS - 1);
    if ((ret = mo_meta_check_memory(bb, c->crop, c->crop, 32,
                                    sizeof(float) * (size_t)c->k, "cls.crop")))
        goto fail;
    c->weight = malloc(sizeof(float) * (size_t)c->k * (size_t)c->c);
    c->bias = malloc(sizeof(float) * (size_t)c->k);
    if (!c->weight || !c->bias) {
        ret = mo_fail(MO_ENOMEM, "out of memory");
        goto fail;
    }
    char why[128];
    snprintf(why, sizeof(why), "%d classes (cls.classes) x MobileOne-%s stage4's %d channels",
             c->k, mo_backbone_variant(bb), c->c);
    const int64_t ws[2] = {c->k, c->c}, bs[1] = {c->k};
    if ((ret = mo_load_tensor(&L, "cls.linear.weight", 2, ws, c->weight, why)) ||
        (ret = mo_load_tensor(&L, "cls.linear.bias", 1, bs, c->bias, why)) ||
        (ret = mo_loader_check_all(&L, MO_EMISMATCH, "the head is one linear layer "
                                   "(cls.linear.weight, cls.linear.bias)")))
        goto fail;
    mo_loader_release(&L);
    *out = c;
    return MO_OK;
fail:
    mo_loader_release(&L);
    mo_cls_close(&c);
    return ret;
}

int mo_cls_num_classes(const mo_cls *c)
{
    return c ? c->k : 0;
}

const char *mo_cls_class_name(const mo_cls *c, int i)
{
    return c && i >= 0 && i < c->k ? c->names[i] : NULL;
}

int mo_cls_preprocess(const mo_cls *c, int *resize, int *crop, float mean[3], float std[3])
{
    validate_input_or_ret(c, MO_EINVAL);
    if (resize)
        *resize = c->resize;
    if (crop)
        *crop = c->crop;
    for (int i = 0; i < 3; i++) {
        if (mean)
            mean[i] = c->mean[i];
        if (std)
            std[i] = c->std[i];
    }
    return MO_OK;
}

int mo_cls_logits(const mo_cls *c, const mo_features *f, float *logits)
{
    validate_input_or_ret(c && f && f->pooled && logits, MO_EINVAL);
    if (f->level[MO_NUM_LEVELS - 1].c != c->c)
        return mo_fail(MO_EINVAL, "features have %d channels, the head expects %d",
                       f->level[MO_NUM_LEVELS - 1].c, c->c);
    /* the kernel table's GEMV (mo_internal/ops.h): 16 partial sums added pairwise, the same
     * bits on every CPU */
    c->dsp.gemv(logits, c->weight, c->bias, f->pooled, c->k, c->c, MO_ACT_NONE);
    return MO_OK;
}

int mo_cls_run(const mo_cls *c, mo_session *s, const mo_features *f, float *logits)
{
    validate_input_or_ret(c && f && f->pooled && logits, MO_EINVAL);
    if (f->level[MO_NUM_LEVELS - 1].c != c->c)
        return mo_cls_logits(c, f, logits); /* the error */
    /* one GEMV op: classes over the session's pool (a 1000 x 1024 layer: 4 MB of weights) */
    const mo_exec_op fc = {.kind = MO_EXEC_GEMV, .dst = logits, .src = f->pooled, .cin = c->c,
                           .cout = c->k, .w = c->weight, .b = c->bias, .name = "cls.fc"};
    mo_exec_run(mo_session_exec(s), &c->dsp, "cls", &fc, 1);
    return MO_OK;
}

void mo_softmax(float *x, int n)
{
    if (!x || n <= 0)
        return;
    float m = x[0];
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] = (float)(x[i] / sum);
}

int mo_topk(const float *p, int n, int k, mo_class_score *out)
{
    validate_input_or_ret(p && out && n >= 0 && k >= 0, MO_EINVAL);
    if (k > n)
        k = n;
    if (k == 0)
        return 0;
    /* Insertion into a sorted list of k: k is small (top-5), n is the class count. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m == k && !(p[i] > out[m - 1].prob))
            continue;
        int j = m < k ? m++ : m - 1;
        while (j > 0 && p[i] > out[j - 1].prob) {
            out[j] = out[j - 1];
            j--;
        }
        out[j].index = i;
        out[j].prob = p[i];
    }
    return m;
}
