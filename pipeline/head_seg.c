/* The segmentation head in the pipeline (pipeline/head.h): the shared pass, with the
 * dilated stages recomputed at the head's output stride; the label map at the frame size. */
#include "head.h"

#include "mo/segment.h"

static int seg_open(void **h, const mo_file *f, const mo_backbone *bb, const mo_head_open_ctx *ctx)
{
    mo_seg_settings ss;
    mo_seg_default_settings(&ss);
    ss.output_stride = ctx->set->seg_output_stride; /* 0: the one it was trained at */
    return mo_seg_open((mo_seg **)h, f, bb, &ss);
}

static void seg_close(void **h) { mo_seg_close((mo_seg **)h); }

static int seg_needs(const void *h, const mo_pipeline_settings *set, mo_head_needs *n)
{
    (void)set;
    mo_seg_info info;
    int r = mo_seg_get_info(h, &info);
    *n = (mo_head_needs){.output_stride = info.output_stride, .levels = 1u << 3};
    return r;
}

static int seg_workspace_size(const void *h, int max_h, int max_w, int min_os, size_t *bytes)
{
    return mo_seg_workspace_size(h, max_h, max_w, min_os, bytes);
}

static int seg_wanted(const mo_pipeline_result *out) { return out->labels != NULL; }

/* The head and its upsampling in one call: mo_seg_run() splits the upsampling between the
 * session's threads (mo_seg_upsample_argmax() alone would run it on one), so the label map
 * is written here and results() only reports it. */
static int seg_run(const void *h, mo_head_job *j)
{
    return mo_seg_run(h, j->s, j->f, j->frame->h, j->frame->w, j->out->labels,
                      j->out->label_stride, NULL);
}

static int seg_results(const void *h, mo_head_job *j)
{
    (void)h;
    j->out->has_labels = 1;
    return MO_OK;
}

const mo_head_ops mo_head_seg_ops = {
    .kind = "seg", .what = "segmentation", .holds = MO_HOLDS_SEG,
    .open = seg_open, .close = seg_close, .needs = seg_needs,
    .workspace_size = seg_workspace_size, .prepare = NULL, .wanted = seg_wanted,
    .run = seg_run, .results = seg_results,
};
