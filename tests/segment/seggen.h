/*
 * Test helper: DeepLabV3 head tensors (torchvision DeepLabHead names under "seg.") with
 * random weights and BatchNorm, and serialization of tensors with arbitrary metadata, on
 * top of tests/backbone/modelgen.h. Header-only, static functions (abort on failure).
 */
#ifndef MO_TEST_SEGGEN_H
#define MO_TEST_SEGGEN_H

#include "modelgen.h"
#include "mo/segment.h"

#define SG_CHECK(x) \
    do { if (!(x)) { fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #x); abort(); } } while (0)

/* Serialize m, then replace the metadata: `contents` (JSON text) and key/value pairs
 * (NULL-terminated; a NULL value removes the key). Offsets of the data are unchanged. */
static inline size_t serialize_with_meta(const mg_model *m, const char *contents,
                                         const char *const *kv, uint8_t **out)
{
    uint8_t *buf;
    const size_t n = mg_serialize(m, &buf);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)buf[i] << (8 * i);
    char *text = malloc(hl + 1);
    SG_CHECK(text);
    memcpy(text, buf + 8, hl);
    text[hl] = 0;
    json_object *hdr = json_tokener_parse(text), *meta;
    SG_CHECK(hdr);
    SG_CHECK(json_object_object_get_ex(hdr, "__metadata__", &meta));
    if (contents)
        json_object_object_add(meta, "mo.contents", json_object_new_string(contents));
    for (int i = 0; kv && kv[i]; i += 2) {
        if (kv[i + 1])
            json_object_object_add(meta, kv[i], json_object_new_string(kv[i + 1]));
        else
            json_object_object_del(meta, kv[i]);
    }
    const char *nt = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
    const size_t nl = (strlen(nt) + 7) & ~(size_t)7, data = n - 8 - hl;
    uint8_t *o = malloc(8 + nl + data);
    SG_CHECK(o);
    for (int i = 0; i < 8; i++)
        o[i] = (uint8_t)((uint64_t)nl >> (8 * i));
    memset(o + 8, ' ', nl);
    memcpy(o + 8, nt, strlen(nt));
    memcpy(o + 8 + nl, buf + 8 + hl, data);
    json_object_put(hdr);
    free(text);
    free(buf);
    *out = o;
    return 8 + nl + data;
}

/* Head geometry for the generator. */
typedef struct head_spec {
    int cin, a, hc, k, nr;
    int rates[MO_SEG_MAX_RATES];
} head_spec;

static inline void add_conv(mg_model *m, const char *name, int cout, int cin, int ks)
{
    const float s = sqrtf(3.0f / (float)(cin * ks * ks));
    mg_add(m, name, 4, cout, cin, ks, ks, -s, s);
}

/* The seg. tensors of torchvision's DeepLabHead with these sizes. */
static inline void add_head(mg_model *m, const head_spec *h)
{
    char n[128];
    const int nb = h->nr + 2;
    add_conv(m, "seg.0.convs.0.0.weight", h->a, h->cin, 1);
    mg_bn(m, "seg.0.convs.0.1.", h->a);
    for (int i = 1; i <= h->nr; i++) {
        MG_FMT(n, "seg.0.convs.%d.0.weight", i);
        add_conv(m, n, h->a, h->cin, 3);
        MG_FMT(n, "seg.0.convs.%d.1.", i);
        mg_bn(m, n, h->a);
    }
    MG_FMT(n, "seg.0.convs.%d.1.weight", nb - 1);
    add_conv(m, n, h->a, h->cin, 1);
    MG_FMT(n, "seg.0.convs.%d.2.", nb - 1);
    mg_bn(m, n, h->a);
    add_conv(m, "seg.0.project.0.weight", h->a, nb * h->a, 1);
    mg_bn(m, "seg.0.project.1.", h->a);
    add_conv(m, "seg.1.weight", h->hc, h->a, 3);
    mg_bn(m, "seg.2.", h->hc);
    add_conv(m, "seg.4.weight", h->k, h->hc, 1);
    mg_add(m, "seg.4.bias", 1, h->k, 0, 0, 0, -0.5f, 0.5f);
}

static inline char *class_list(int k)
{
    char *s = malloc((size_t)k * 16 + 8);
    SG_CHECK(s);
    size_t o = 0;
    s[o++] = '[';
    for (int i = 0; i < k; i++)
        o += (size_t)sprintf(s + o, "%s\"c%d\"", i ? "," : "", i);
    s[o++] = ']';
    s[o] = 0;
    return s;
}

static inline char *rate_list(const head_spec *h)
{
    char *s = malloc(16 * MO_SEG_MAX_RATES + 8);
    SG_CHECK(s);
    size_t o = 0;
    s[o++] = '[';
    for (int i = 0; i < h->nr; i++)
        o += (size_t)sprintf(s + o, "%s%d", i ? "," : "", h->rates[i]);
    s[o++] = ']';
    s[o] = 0;
    return s;
}

/* The small head of the pipeline tests: s0's 1024 channels, ASPP rates 2/4/6, k classes,
 * built into *m (free with mg_free); returns its geometry. */
static inline head_spec small_seg_head(mg_model *m, int k)
{
    const head_spec h = {1024, 16, 12, k, 3, {2, 4, 6}};
    memset(m, 0, sizeof(*m));
    add_head(m, &h);
    return h;
}

/* Serialize the head m built from h as a seg model file for the backbone digest at the given
 * output stride ("16" or "8"), classes c0.. and h's rates (the pipeline tests' files). */
static inline size_t serialize_seg_head(const mg_model *m, const head_spec *h, const char *digest,
                                        const char *output_stride, uint8_t **out)
{
    char *classes = class_list(h->k), *rates = rate_list(h);
    const char *kv[] = {"mo.variant", "s0", "mo.backbone_digest", digest, "seg.classes",
                        classes, "seg.rates", rates, "seg.output_stride", output_stride,
                        "mo.backbone_form", NULL, NULL};
    const size_t n = serialize_with_meta(m, "[\"seg\"]", kv, out);
    free(classes);
    free(rates);
    return n;
}

#endif
