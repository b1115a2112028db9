/* The detection head in the pipeline (pipeline/head.h): the shared pass at stride 32, at
 * the head's input size (which then is the shared size). */
#include "head.h"

#include "mo/detect.h"

static int det_open(void **h, const mo_file *f, const mo_backbone *bb, const mo_head_open_ctx *ctx)
{
    (void)ctx;
    return mo_det_open((mo_det **)h, f, bb, NULL);
}

static void det_close(void **h) { mo_det_close((mo_det **)h); }

static int det_needs(const void *h, const mo_pipeline_settings *set, mo_head_needs *n)
{
    (void)set;
    *n = (mo_head_needs){.output_stride = 32, .levels = (1u << 2) | (1u << 3)};
    mo_det_input_size(h, &n->input_w, &n->input_h);
    return MO_OK;
}

static int det_workspace_size(const void *h, int max_h, int max_w, int min_os, size_t *bytes)
{
    (void)max_h, (void)max_w, (void)min_os;
    *bytes = mo_det_workspace_size(h);
    return MO_OK;
}

static int det_run(const void *h, mo_head_job *j)
{
    mo_det_raw raw;
    int r = mo_det_run_raw(h, j->s, j->f, &raw);
    if (r)
        return r;
    j->raw[0] = (mo_tensor){.data = (float *)raw.logits, .h = raw.num_anchors, .w = 1,
                            .c = raw.num_classes, .row_stride = raw.num_classes};
    j->raw[1] = (mo_tensor){.data = (float *)raw.regression, .h = raw.num_anchors, .w = 1,
                            .c = 4, .row_stride = 4};
    return MO_OK;
}

static int det_results(const void *h, mo_head_job *j)
{
    mo_pipeline_result *out = j->out;
    mo_detection none[1];
    return mo_det_postprocess(h, j->s, j->raw[0].data, j->raw[1].data, NULL, j->frame->w,
                              j->frame->h, out->detections ? out->detections : none,
                              out->detections ? out->det_capacity : 0, &out->num_detections);
}

const mo_head_ops mo_head_det_ops = {
    .kind = "det", .what = "detection", .holds = MO_HOLDS_DET,
    .open = det_open, .close = det_close, .needs = det_needs,
    .workspace_size = det_workspace_size, .prepare = NULL, .wanted = NULL,
    .run = det_run, .results = det_results,
};
