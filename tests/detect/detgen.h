/*
 * Test helper: SSDLite head tensors (torchvision names under det.) and model files with
 * any metadata, in memory. Builds on tests/backbone/modelgen.h (tensors, backbones).
 * The layout is written out here from REFERENCE.md section 2, independently of
 * heads/detect/detect.c.
 */
#ifndef MO_TEST_DETGEN_H
#define MO_TEST_DETGEN_H

#include "backbone/modelgen.h"

typedef struct dg_head {
    int c3, c4;          /* backbone stage3 / stage4 channels the head is built for */
    int k;               /* classes incl. background */
    int nextra;
    int extra[6];        /* extra block output channels */
    int anchors[8];      /* per map */
} dg_head;

static inline void dg_conv_bn(mg_model *m, const char *pre, int cin, int cout, int dw)
{
    char name[160];
    const int fan = dw ? 9 : cin;
    const float a = sqrtf(3.0f / (float)fan);
    MG_FMT(name, "%s.0.weight", pre);
    mg_add(m, name, 4, cout, dw ? 1 : cin, dw ? 3 : 1, dw ? 3 : 1, -a, a);
    MG_FMT(name, "%s.1.", pre);
    mg_bn(m, name, cout);
}

static inline void dg_build(mg_model *m, const dg_head *h)
{
    char pre[160];
    int cin = h->c4;
    for (int i = 0; i < h->nextra; i++) {
        const int mid = h->extra[i] / 2;
        MG_FMT(pre, "det.extra.%d.0", i);
        dg_conv_bn(m, pre, cin, mid, 0);
        MG_FMT(pre, "det.extra.%d.1", i);
        dg_conv_bn(m, pre, mid, mid, 1);
        MG_FMT(pre, "det.extra.%d.2", i);
        dg_conv_bn(m, pre, mid, h->extra[i], 0);
        cin = h->extra[i];
    }
    static const char *const head[2] = { "classification", "regression" };
    for (int l = 0; l < 2 + h->nextra; l++) {
        const int c = l == 0 ? h->c3 : l == 1 ? h->c4 : h->extra[l - 2];
        for (int hd = 0; hd < 2; hd++) {
            const int cout = h->anchors[l] * (hd ? 4 : h->k);
            MG_FMT(pre, "det.head.%s_head.module_list.%d.0", head[hd], l);
            dg_conv_bn(m, pre, c, c, 1);
            const float a = sqrtf(3.0f / (float)c);
            MG_FMT(pre, "det.head.%s_head.module_list.%d.1.weight", head[hd], l);
            mg_add(m, pre, 4, cout, c, 1, 1, -a, a);
            MG_FMT(pre, "det.head.%s_head.module_list.%d.1.bias", head[hd], l);
            mg_add(m, pre, 1, cout, 0, 0, 0, -0.5f, 0.5f);
        }
    }
}

/* Serialize tensors + metadata (string values) as a model file; *out is malloc'ed. */
static inline size_t dg_serialize(const mg_model *m, json_object *meta_in, uint8_t **out)
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
    json_object_object_foreach(meta_in, key, val)
        json_object_object_add(meta, key, json_object_get(val));
    json_object_object_add(meta, "mo.format", json_object_new_string("mobileone-sdk"));
    json_object_object_add(meta, "mo.format_version", json_object_new_string("1"));
    json_object_object_add(meta, "mo.crc32",
                           json_object_new_string(json_object_to_json_string_ext(
                               crc, JSON_C_TO_STRING_PLAIN)));
    json_object_object_add(hdr, "__metadata__", meta);
    const char *text = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
    const size_t hl = strlen(text), padded = (hl + 7) & ~(size_t)7;
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

static inline void dg_meta(json_object *meta, const char *key, const char *value)
{
    if (value)
        json_object_object_add(meta, key, json_object_new_string(value));
    else
        json_object_object_del(meta, key);
}

/* The small head of the pipeline tests (profile, alloc-fail, pipeline, threads-shared): built
 * for s0 (stage3 256, stage4 1024 channels), 5 classes with background, extras 64/32/32/16,
 * 6 anchors per map, input 64x64. Fills *hm (free with mg_free) and returns its metadata
 * for the backbone digest (json_object_put); add keys with dg_meta before dg_serialize. */
static inline json_object *dg_small_head(mg_model *hm, const char *digest)
{
    dg_head h = {.c3 = 256, .c4 = 1024, .k = 5, .nextra = 4, .extra = {64, 32, 32, 16}};
    for (int l = 0; l < 6; l++)
        h.anchors[l] = 6;
    memset(hm, 0, sizeof(*hm));
    dg_build(hm, &h);
    json_object *m = json_object_new_object();
    dg_meta(m, "mo.contents", "[\"det\"]");
    dg_meta(m, "mo.variant", "s0");
    dg_meta(m, "mo.backbone_digest", digest);
    dg_meta(m, "det.classes", "[\"__background__\",\"cat\",\"dog\",\"car\",\"N/A\"]");
    dg_meta(m, "det.num_classes", "5");
    dg_meta(m, "det.input_size", "[64,64]");
    dg_meta(m, "det.aspect_ratios", "[[2,3],[2,3],[2,3],[2,3],[2,3],[2,3]]");
    dg_meta(m, "det.extra_channels", "[64,32,32,16]");
    dg_meta(m, "det.bn_eps", "0.001");
    return m;
}

#endif
