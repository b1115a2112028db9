/*
 * The pipeline's head interface (internal to libmo_pipeline, not installed).
 *
 * Every head kind the pipeline can hold (classification, detection, segmentation) is one
 * ::mo_head_ops table in pipeline/head_<kind>.c, listed once in pipeline.c (head_kinds[]).
 * The pipeline knows nothing else about a kind: it opens a head by the kind its file's
 * mo.contents names, plans the session from the heads' needs and workspace sizes, groups
 * the heads into backbone passes, and runs each pass as one loop over its heads.
 *
 * Internal rather than public: the pipeline is its only caller, and the interface hands
 * heads the pipeline's own structs (mo_pipeline_result, the settings); a public vtable
 * would freeze those and the pass planning as ABI. A program that wants a head of its
 * own runs it on mo_features from mo_backbone_run(), which is public.
 */
#ifndef MO_PIPELINE_HEAD_H
#define MO_PIPELINE_HEAD_H

#include "mo/pipeline.h"
#include "mo_internal/loader.h"

/* What a head needs from the backbone pass it runs on. */
typedef struct mo_head_needs {
    int output_stride; /* stride of the features it reads: 32, 16 or 8 */
    unsigned levels;   /* feature levels it reads: bit i = mo_features.level[i]
                          (MO_HEAD_POOLED: the pooled stage4) */
    int input_w;       /* input size the head fixes (detection), or 0: any (the shared size) */
    int input_h;
    int own_input;     /* 1: the head preprocesses the frame itself (prepare) and gets a
                          backbone pass of its own, input_w x input_h */
} mo_head_needs;

#define MO_HEAD_POOLED (1u << 8)

/* What the pipeline hands a head when it opens it. */
typedef struct mo_head_open_ctx {
    const mo_pipeline_settings *set; /* the pipeline's settings */
    const mo_model_info *bb_info;    /* the backbone file's metadata (preprocessing) */
} mo_head_open_ctx;

/* One head run inside a pass. */
typedef struct mo_head_job {
    mo_session *s;                   /* the pass's session; its workspace is the scratch */
    const mo_features *f;            /* the pass's features, at the head's output stride */
    const mo_image *frame;           /* the frame, RGB8 (outputs are at its size) */
    const mo_pipeline_settings *set; /* the pipeline's settings */
    mo_pipeline_result *out;         /* where results() writes */
    mo_tensor raw[2];                /* run() -> results(): views into the workspace */
} mo_head_job;

typedef struct mo_head_ops {
    const char *kind;  /* its name in mo.contents: "cls", "det", "seg" */
    const char *what;  /* for messages: "classification" */
    unsigned holds;    /* its MO_HOLDS_* bit of mo_model_info.contents */
    /* Open the head in f on bb (f may be closed afterwards). */
    int (*open)(void **h, const mo_file *f, const mo_backbone *bb, const mo_head_open_ctx *ctx);
    void (*close)(void **h);
    /* What it needs from the backbone, under the pipeline's settings. */
    int (*needs)(const void *h, const mo_pipeline_settings *set, mo_head_needs *n);
    /* Session workspace for inputs up to max_h x max_w at stride min_os. */
    int (*workspace_size)(const void *h, int max_h, int max_w, int min_os, size_t *bytes);
    /* own_input heads only: the frame to the head's normalized input tensor t. */
    int (*prepare)(const void *h, const mo_image *frame, const float mean[3],
                   const float std[3], mo_tensor *t);
    /* Whether the caller asked for any of its outputs (NULL: always runs). */
    int (*wanted)(const mo_pipeline_result *out);
    /* The head's network on j->f: raw outputs in j->raw (workspace views). */
    int (*run)(const void *h, mo_head_job *j);
    /* Post-processing of j->raw into j->out. */
    int (*results)(const void *h, mo_head_job *j);
} mo_head_ops;

extern const mo_head_ops mo_head_cls_ops;
extern const mo_head_ops mo_head_det_ops;
#ifdef MO_PIPELINE_HAVE_SEG
extern const mo_head_ops mo_head_seg_ops;
#endif

#endif
