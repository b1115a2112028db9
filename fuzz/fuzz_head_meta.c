/*
 * Fuzz target: any bytes as the metadata of a head file (the JSON object stored under
 * "__metadata__"), opened against a fixed MobileOne-S0 backbone as a detection,
 * segmentation and classification head, and through the pipeline's head detection
 * (mo.contents decides the kind: pipeline_internal.h).
 *
 * The file around the input is built here: mo.format, mo.format_version and mo.crc32 are
 * put first in the object, mo.backbone_digest too unless the input has its own, and the
 * tensors of a small head of each kind for the backbone follow (random weights, built once).
 * So the checksums always match and every input reaches the metadata readers
 * (core/meta.c) and the heads' checks of how the fields fit the tensors; with whole files
 * as inputs nearly every mutation would stop at the checksums or the digest. The loader's
 * own parsing of whole files is fuzz_model_file's job. Seeds: fuzz/corpus/head_meta/.
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_internal.h"
#include "detect/detgen.h"
#include "segment/seggen.h"
#include "mo/classify.h"
#include "mo/detect.h"
#include "mo/pipeline.h"
#include "mo/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mo_pipeline *pipe_; /* the fixed backbone, and the pipeline's head detection */
static char *prefix;       /* {"__metadata__":{format, version, crc32, */
static size_t prefix_len;
static char digest_kv[64]; /* "mo.backbone_digest":"...", */
static char *tensors;      /* ,"name":{...},...} */
static size_t tensors_len;
static uint8_t *blob;      /* tensor data */
static size_t blob_len;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_head_meta: %s (%s)\n", what, mo_last_error());
    abort();
}

/* Append to a growing string. */
static void put(char **s, size_t *len, size_t *cap, const char *text)
{
    const size_t n = strlen(text);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        if (!(*s = realloc(*s, *cap)))
            die("out of memory");
    }
    memcpy(*s + *len, text, n + 1);
    *len += n;
}

static void init(void)
{
    /* the backbone, through a file: the pipeline opens it by name */
    mg_model bb;
    mg_build(&bb, "s0", 1, "backbone.");
    uint8_t *bytes;
    const size_t n = mg_serialize(&bb, &bytes);
    mg_free(&bb);
    char path[] = "/tmp/fuzz-head-meta-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0 || write(fd, bytes, n) != (ssize_t)n || close(fd))
        die("cannot write the backbone");
    free(bytes);
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    if (mo_pipeline_open(&pipe_, path, NULL, 0, &set))
        die("cannot open the backbone");
    unlink(path);
    snprintf(digest_kv, sizeof(digest_kv), "\"mo.backbone_digest\":\"%s\",",
             mo_backbone_digest(mo_pipeline_backbone(pipe_)));

    /* small heads of every kind for it (seeds: det.classes 3 names, det.extra_channels
     * [4,4,4,4], det.aspect_ratios of empty lists; seg 3 classes, seg.rates [2]) */
    mg_model h;
    memset(&h, 0, sizeof(h));
    dg_head dh = {.c3 = 256, .c4 = 1024, .k = 3, .nextra = 4, .extra = {4, 4, 4, 4}};
    for (int l = 0; l < 6; l++)
        dh.anchors[l] = 2;
    dg_build(&h, &dh);
    static const head_spec sh = {1024, 2, 2, 3, 1, {2}};
    add_head(&h, &sh);
    mg_add(&h, "cls.linear.weight", 2, 3, 1024, 0, 0, -1, 1);
    mg_add(&h, "cls.linear.bias", 1, 3, 0, 0, 0, -1, 1);

    size_t cap = 0, tcap = 0;
    char line[512];
    put(&prefix, &prefix_len, &cap, "{\"__metadata__\":{\"mo.format\":\"mobileone-sdk\","
                                    "\"mo.format_version\":\"1\",\"mo.crc32\":\"{");
    for (int i = 0; i < h.n; i++)
        blob_len += (size_t)mg_numel(&h.t[i]) * 4;
    if (!(blob = malloc(blob_len)))
        die("out of memory");
    size_t off = 0;
    for (int i = 0; i < h.n; i++) {
        const mg_tensor *t = &h.t[i];
        const size_t b = (size_t)mg_numel(t) * 4;
        memcpy(blob + off, t->data, b);
        /* inside a JSON string: \"name\":\"crc\" */
        snprintf(line, sizeof(line), "%s\\\"%s\\\":\\\"%08lx\\\"", i ? "," : "", t->name,
                 (unsigned long)crc32(0L, (const Bytef *)t->data, (uInt)b));
        put(&prefix, &prefix_len, &cap, line);
        int k = snprintf(line, sizeof(line), ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", t->name);
        for (int d = 0; d < t->ndim; d++)
            k += snprintf(line + k, sizeof(line) - (size_t)k, "%s%lld", d ? "," : "",
                          (long long)t->shape[d]);
        snprintf(line + k, sizeof(line) - (size_t)k, "],\"data_offsets\":[%zu,%zu]}", off,
                 off + b);
        put(&tensors, &tensors_len, &tcap, line);
        off += b;
    }
    put(&prefix, &prefix_len, &cap, "}\",");
    put(&tensors, &tensors_len, &tcap, "}");
    mg_free(&h);
}

/* FUZZ_HEAD_META_VERBOSE=1: say what each open did (to check that seeds reach deep). */
static int verbose = -1;

static void report(const char *what, int r)
{
    if (verbose)
        fprintf(stderr, "  %-8s %s%s%s\n", what, mo_strerror(r), r ? ": " : "",
                r ? mo_last_error() : "");
}

/* The pipeline's head detection opens the kind mo.contents names; when it refuses the file,
 * each head's own open too (they read the fields in their own order). Opening the same head
 * twice would halve the executions a second for nothing. */
static void open_heads(const mo_file *f)
{
    const mo_backbone *bb = mo_pipeline_backbone(pipe_);
    int r = mo_pipeline_add_head(pipe_, f, "input");
    report("pipeline", r);
    if (!r) {
        const mo_det *d = mo_pipeline_det(pipe_);
        int w = 0, h = 0;
        mo_det_input_size(d, &w, &h);
        if (d && (mo_det_workspace_size(d) == 0 || w < 1 || h < 1 || mo_det_num_anchors(d) < 1))
            abort();
        mo_pipeline_drop_heads(pipe_);
    } else {
        mo_det *d = NULL;
        report("det", mo_det_open(&d, f, bb, NULL));
        mo_det_close(&d);
        mo_seg *s = NULL;
        report("seg", r = mo_seg_open(&s, f, bb, NULL));
        if (!r) {
            size_t bytes;
            mo_seg_workspace_size(s, 64, 64, 16, &bytes);
            mo_seg_close(&s);
        }
    }
    mo_cls *c = NULL;
    report("cls", mo_cls_open(&c, f, bb, NULL));
    mo_cls_close(&c);
    float mean[3], std[3];
    if (!mo_file_preprocess(f, mean, std) && !(std[0] > 0 && std[1] > 0 && std[2] > 0))
        abort(); /* a validated std is positive */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pipe_) {
        init();
        verbose = getenv("FUZZ_HEAD_META_VERBOSE") != NULL;
    }
    if (size > 1 << 16)
        return 0;
    /* the input's object, without its opening brace, after ours */
    const uint8_t *brace = memchr(data, '{', size);
    const uint8_t *rest = brace ? brace + 1 : data;
    const size_t rest_len = size - (size_t)(rest - data);
    const int own_digest = memmem(data, size, "mo.backbone_digest", 18) != NULL;
    const size_t dk = own_digest ? 0 : strlen(digest_kv);
    const size_t hl = prefix_len + dk + rest_len + tensors_len;
    const size_t padded = (hl + 7) & ~(size_t)7;
    uint8_t *file = malloc(8 + padded + blob_len);
    if (!file)
        return 0;
    for (int i = 0; i < 8; i++)
        file[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    uint8_t *p = file + 8;
    memcpy(p, prefix, prefix_len);
    p += prefix_len;
    memcpy(p, digest_kv, dk);
    p += dk;
    memcpy(p, rest, rest_len);
    p += rest_len;
    memcpy(p, tensors, tensors_len);
    p += tensors_len;
    memset(p, ' ', padded - hl);
    memcpy(file + 8 + padded, blob, blob_len);
    mo_file *f = NULL;
    const int r = mo_file_open_memory(&f, file, 8 + padded + blob_len);
    report("file", r);
    if (!r) {
        open_heads(f);
        mo_file_close(&f);
    }
    free(file);
    return 0;
}
