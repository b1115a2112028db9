/*
 * Test helper: build MobileOne model files in memory (random weights, fused or
 * train-time form), edit them (drop, add, reshape tensors; change metadata) and
 * serialize them as weights/FORMAT.md files for mo_file_open_memory().
 *
 * The architecture is written out here from REFERENCE.md's table on purpose (not taken
 * from backbone/mobileone.c), so the loader is checked against an independent copy.
 */
#ifndef MO_TEST_MODELGEN_H
#define MO_TEST_MODELGEN_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <zlib.h>

#include "naive.h"

/* snprintf that aborts on truncation (test names are short; this also keeps
 * -Wformat-truncation quiet since the result is used). */
#define MG_FMT(buf, ...) \
    do { if (snprintf((buf), sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf)) abort(); } while (0)

typedef struct mg_tensor {
    char name[128];
    int ndim;
    int64_t shape[4];
    float *data;
} mg_tensor;

typedef struct mg_model {
    mg_tensor *t;
    int n, cap;
    char variant[16];
    char form[16];
    const char *bn_eps; /* metadata mo.bn_eps, or NULL */
    const char *arch;   /* metadata mo.arch, or NULL to omit */
    const char *meta[8][2]; /* extra metadata key/value pairs (NULL-terminated) */
    const char *contents;   /* metadata mo.contents, default ["backbone"] */
} mg_model;

/* REFERENCE.md section 1: widths stem/s1/s2/s3/s4, conv branches, SE */
static const struct mg_variant {
    const char *name;
    int width[5];
    int k, se;
} mg_variants[5] = {
    {"s0", {48, 48, 128, 256, 1024}, 4, 0},
    {"s1", {64, 96, 192, 512, 1280}, 1, 0},
    {"s2", {64, 96, 256, 640, 2048}, 1, 0},
    {"s3", {64, 128, 320, 768, 2048}, 1, 0},
    {"s4", {64, 192, 448, 896, 2048}, 1, 1},
};

static inline const struct mg_variant *mg_find_variant(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(mg_variants[i].name, name))
            return &mg_variants[i];
    return NULL;
}

static inline int64_t mg_numel(const mg_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

static inline mg_tensor *mg_find(mg_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name))
            return &m->t[i];
    return NULL;
}

/* Add (or replace) a tensor filled with uniform values in [lo, hi]. */
static inline mg_tensor *mg_add(mg_model *m, const char *name, int ndim, int64_t d0, int64_t d1,
                                int64_t d2, int64_t d3, float lo, float hi)
{
    mg_tensor *t = mg_find(m, name);
    if (!t) {
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 256;
            m->t = realloc(m->t, sizeof(*m->t) * (size_t)m->cap);
            if (!m->t)
                abort();
        }
        t = &m->t[m->n++];
        MG_FMT(t->name, "%s", name);
    } else {
        free(t->data);
    }
    const int64_t dims[4] = {d0, d1, d2, d3};
    t->ndim = ndim;
    for (int i = 0; i < 4; i++)
        t->shape[i] = i < ndim ? dims[i] : 0;
    const int64_t n = mg_numel(t);
    t->data = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!t->data)
        abort();
    for (int64_t i = 0; i < n; i++)
        t->data[i] = lo + (frand() + 1.0f) * 0.5f * (hi - lo);
    return t;
}

/* Remove every tensor whose name starts with prefix; returns how many. */
static inline int mg_remove(mg_model *m, const char *prefix)
{
    int removed = 0;
    for (int i = 0; i < m->n;) {
        if (!strncmp(m->t[i].name, prefix, strlen(prefix))) {
            free(m->t[i].data);
            m->t[i] = m->t[--m->n];
            removed++;
        } else {
            i++;
        }
    }
    return removed;
}

static inline void mg_free(mg_model *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->t[i].data);
    free(m->t);
    memset(m, 0, sizeof(*m));
}

static inline void mg_bn(mg_model *m, const char *pre, int c)
{
    char name[160];
    MG_FMT(name, "%sweight", pre);
    mg_add(m, name, 1, c, 0, 0, 0, 0.5f, 1.5f);
    MG_FMT(name, "%sbias", pre);
    mg_add(m, name, 1, c, 0, 0, 0, -0.2f, 0.2f);
    MG_FMT(name, "%srunning_mean", pre);
    mg_add(m, name, 1, c, 0, 0, 0, -0.2f, 0.2f);
    MG_FMT(name, "%srunning_var", pre);
    mg_add(m, name, 1, c, 0, 0, 0, 0.5f, 2.0f);
}

/* One MobileOneBlock under `pre` (e.g. "backbone.stage1.3."). */
static inline void mg_module(mg_model *m, const char *pre, int cin, int cout, int k, int groups,
                             int stride, int nconv, int se, int fused)
{
    char name[160];
    const int cg = cin / groups;
    /* weights scaled so activations stay O(1) through the network */
    const int nb = nconv + (k > 1) + (cin == cout && stride == 1);
    const float a = sqrtf(6.0f / (float)(cg * k * k)) / (fused ? 1.0f : (float)nb);
    if (fused) {
        MG_FMT(name, "%sreparam_conv.weight", pre);
        mg_add(m, name, 4, cout, cg, k, k, -a, a);
        MG_FMT(name, "%sreparam_conv.bias", pre);
        mg_add(m, name, 1, cout, 0, 0, 0, -0.2f, 0.2f);
    } else {
        for (int i = 0; i < nconv; i++) {
            MG_FMT(name, "%srbr_conv.%d.conv.weight", pre, i);
            mg_add(m, name, 4, cout, cg, k, k, -a, a);
            MG_FMT(name, "%srbr_conv.%d.bn.", pre, i);
            mg_bn(m, name, cout);
        }
        if (k > 1) {
            MG_FMT(name, "%srbr_scale.conv.weight", pre);
            mg_add(m, name, 4, cout, cg, 1, 1, -a, a);
            MG_FMT(name, "%srbr_scale.bn.", pre);
            mg_bn(m, name, cout);
        }
        if (cin == cout && stride == 1) {
            MG_FMT(name, "%srbr_skip.", pre);
            mg_bn(m, name, cout);
        }
    }
    if (se) {
        const int r = cout / 16;
        MG_FMT(name, "%sse.reduce.weight", pre);
        mg_add(m, name, 4, r, cout, 1, 1, -0.1f, 0.1f);
        MG_FMT(name, "%sse.reduce.bias", pre);
        mg_add(m, name, 1, r, 0, 0, 0, -0.2f, 0.2f);
        MG_FMT(name, "%sse.expand.weight", pre);
        mg_add(m, name, 4, cout, r, 1, 1, -0.3f, 0.3f);
        MG_FMT(name, "%sse.expand.bias", pre);
        mg_add(m, name, 1, cout, 0, 0, 0, 0.0f, 1.0f);
    }
}

/* A whole backbone under `prefix` (normally "backbone."). */
static inline void mg_build(mg_model *m, const char *variant, int fused, const char *prefix)
{
    const struct mg_variant *v = mg_find_variant(variant);
    static const int blocks[4] = {2, 8, 10, 1};
    char pre[128];
    memset(m, 0, sizeof(*m));
    MG_FMT(m->variant, "%s", variant);
    MG_FMT(m->form, "%s", fused ? "fused" : "unfused");
    m->arch = "mobileone";
    if (!v)
        abort();
    MG_FMT(pre, "%sstage0.", prefix);
    mg_module(m, pre, 3, v->width[0], 3, 1, 2, 1, 0, fused);
    int cin = v->width[0];
    for (int s = 0; s < 4; s++) {
        const int nse = v->se ? (s == 2 ? 5 : s == 3 ? 1 : 0) : 0;
        for (int b = 0; b < blocks[s]; b++) {
            const int se = b >= blocks[s] - nse, stride = b ? 1 : 2;
            MG_FMT(pre, "%sstage%d.%d.", prefix, s + 1, 2 * b);
            mg_module(m, pre, cin, cin, 3, cin, stride, v->k, se, fused);
            MG_FMT(pre, "%sstage%d.%d.", prefix, s + 1, 2 * b + 1);
            mg_module(m, pre, cin, v->width[s + 1], 1, 1, 1, v->k, se, fused);
            cin = v->width[s + 1];
        }
    }
}

/* The backbone file of the pipeline tests: fused s0 with a linear classification head over
 * 7 classes "a".."g"; meta[0] is taken, add resize/crop from meta[1] on. */
static inline void mg_build_cls7(mg_model *m)
{
    mg_build(m, "s0", 1, "backbone.");
    mg_add(m, "cls.linear.weight", 2, 7, 1024, 0, 0, -0.1f, 0.1f);
    mg_add(m, "cls.linear.bias", 1, 7, 0, 0, 0, -0.1f, 0.1f);
    m->contents = "[\"backbone\",\"cls\"]";
    m->meta[0][0] = "cls.classes";
    m->meta[0][1] = "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\"]";
}

/* Serialize as a model file; *out is malloc'ed. Returns the size. */
static inline size_t mg_serialize(const mg_model *m, uint8_t **out)
{
    json_object *hdr = json_object_new_object(), *meta = json_object_new_object();
    json_object *crc = json_object_new_object();
    uint64_t off = 0;
    for (int i = 0; i < m->n; i++) {
        const mg_tensor *t = &m->t[i];
        const uint64_t bytes = (uint64_t)mg_numel(t) * 4;
        json_object *o = json_object_new_object(), *shape = json_object_new_array();
        json_object *offs = json_object_new_array();
        json_object_object_add(o, "dtype", json_object_new_string("F32"));
        for (int d = 0; d < t->ndim; d++)
            json_object_array_add(shape, json_object_new_int64(t->shape[d]));
        json_object_object_add(o, "shape", shape);
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + bytes)));
        json_object_object_add(o, "data_offsets", offs);
        json_object_object_add(hdr, t->name, o);
        char hex[9];
        snprintf(hex, sizeof(hex), "%08lx",
                 (unsigned long)crc32(0L, (const Bytef *)t->data, (uInt)bytes));
        json_object_object_add(crc, t->name, json_object_new_string(hex));
        off += bytes;
    }
    json_object_object_add(meta, "mo.format", json_object_new_string("mobileone-sdk"));
    json_object_object_add(meta, "mo.format_version", json_object_new_string("1"));
    json_object_object_add(meta, "mo.crc32",
                           json_object_new_string(json_object_to_json_string_ext(
                               crc, JSON_C_TO_STRING_PLAIN)));
    json_object_object_add(meta, "mo.contents",
                           json_object_new_string(m->contents ? m->contents : "[\"backbone\"]"));
    for (int i = 0; i < 8 && m->meta[i][0]; i++)
        json_object_object_add(meta, m->meta[i][0], json_object_new_string(m->meta[i][1]));
    if (m->arch)
        json_object_object_add(meta, "mo.arch", json_object_new_string(m->arch));
    if (m->variant[0])
        json_object_object_add(meta, "mo.variant", json_object_new_string(m->variant));
    json_object_object_add(meta, "mo.backbone_form", json_object_new_string(m->form));
    if (m->bn_eps)
        json_object_object_add(meta, "mo.bn_eps", json_object_new_string(m->bn_eps));
    json_object_object_add(hdr, "__metadata__", meta);
    const char *text = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
    size_t hl = strlen(text);
    const size_t padded = (hl + 7) & ~(size_t)7;
    const size_t total = 8 + padded + off;
    uint8_t *buf = malloc(total);
    if (!buf)
        abort();
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, text, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    uint8_t *p = buf + 8 + padded;
    for (int i = 0; i < m->n; i++) {
        const size_t bytes = (size_t)mg_numel(&m->t[i]) * 4;
        memcpy(p, m->t[i].data, bytes);
        p += bytes;
    }
    json_object_put(crc);
    json_object_put(hdr);
    *out = buf;
    return total;
}

#endif
