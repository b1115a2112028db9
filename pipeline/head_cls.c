/* The classification head in the pipeline (pipeline/head.h): its own exact preprocessing
 * and pass by default, or the pooled stage4 of the shared pass (classify_shared). */
#include "head.h"

#include "mo/classify.h"
#include "mo_internal/errors.h"

static int cls_open(void **h, const mo_file *f, const mo_backbone *bb, const mo_head_open_ctx *ctx)
{
    /* The crop and resize the head's file asks for; a file without them takes the
     * backbone file's (which are ImageNet's when it has none either). */
    mo_cls_settings cs;
    mo_cls_default_settings(&cs);
    if (!mo_file_meta(f, "cls.resize"))
        cs.resize = ctx->bb_info->cls_resize;
    if (!mo_file_meta(f, "cls.crop"))
        cs.crop = ctx->bb_info->cls_crop;
    return mo_cls_open((mo_cls **)h, f, bb, &cs);
}

static void cls_close(void **h) { mo_cls_close((mo_cls **)h); }

static int cls_needs(const void *h, const mo_pipeline_settings *set, mo_head_needs *n)
{
    int crop = 0;
    int r = mo_cls_preprocess(h, NULL, &crop, NULL, NULL);
    *n = (mo_head_needs){.output_stride = 32, .levels = MO_HEAD_POOLED};
    if (!set->classify_shared)
        n->own_input = 1, n->input_w = n->input_h = crop;
    return r;
}

static int cls_workspace_size(const void *h, int max_h, int max_w, int min_os, size_t *bytes)
{
    (void)max_h, (void)max_w, (void)min_os;
    *bytes = sizeof(float) * (size_t)mo_cls_num_classes(h); /* the logits */
    return MO_OK;
}

static int cls_prepare(const void *h, const mo_image *frame, const float mean[3],
                       const float std[3], mo_tensor *t)
{
    int resize = 0, crop = 0;
    mo_cls_preprocess(h, &resize, &crop, NULL, NULL);
    return mo_preprocess_classify(frame, resize, crop, mean, std, t);
}

static int cls_run(const void *h, mo_head_job *j)
{
    const int k = mo_cls_num_classes(h);
    size_t bytes = 0;
    float *logits = mo_session_workspace(j->s, &bytes);
    if (!logits || bytes < sizeof(float) * (size_t)k)
        return mo_fail(MO_EINVAL, "pipeline: workspace too small for %d class logits", k);
    j->raw[0] = (mo_tensor){.data = logits, .h = 1, .w = 1, .c = k, .row_stride = k};
    return mo_cls_run(h, j->s, j->f, logits);
}

static int cls_results(const void *h, mo_head_job *j)
{
    (void)h;
    const int k = j->raw[0].c;
    mo_softmax(j->raw[0].data, k);
    const int r = mo_topk(j->raw[0].data, k, j->set->top_k, j->out->top);
    if (r < 0)
        return r;
    j->out->num_top = r;
    return MO_OK;
}

const mo_head_ops mo_head_cls_ops = {
    .kind = "cls", .what = "classification", .holds = MO_HOLDS_CLS,
    .open = cls_open, .close = cls_close, .needs = cls_needs,
    .workspace_size = cls_workspace_size, .prepare = cls_prepare, .wanted = NULL,
    .run = cls_run, .results = cls_results,
};
