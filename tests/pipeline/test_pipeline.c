/*
 * Pipeline: frame conversion (every format, strides, odd sizes, BT.601 values, a round
 * trip through YUV), and the pipeline's outputs against the heads run one by one by hand
 * (identical floats), shared vs one pass per head, settings and bad input.
 * Models are generated (random weights), written to a temporary directory.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "detect/detgen.h"
#include "segment/seggen.h"
#include "mo/pipeline.h"

#define IN 64
#define NCLS 7

static char dir[64], bb_path[128], det_path[128], det2_path[128], seg_path[128], seg8_path[128];
static uint8_t *pic; /* 77 x 45 random-ish RGB picture */
enum { PW = 77, PH = 45 };

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/mo-pipe-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* backbone + classification head in one file */
    mg_model bbm;
    mg_build_cls7(&bbm);
    bbm.meta[1][0] = "cls.resize";
    bbm.meta[1][1] = "72";
    bbm.meta[2][0] = "cls.crop";
    bbm.meta[2][1] = "64";
    uint8_t *bytes;
    size_t n = mg_serialize(&bbm, &bytes);
    snprintf(bb_path, sizeof(bb_path), "%s/bb.safetensors", dir);
    write_file(bb_path, bytes, n);
    mo_file *f;
    mo_backbone *bb;
    if (mo_file_open_memory(&f, bytes, n) || mo_backbone_open(&bb, f, NULL))
        return -1;
    char digest[17];
    snprintf(digest, sizeof(digest), "%s", mo_backbone_digest(bb));
    mo_backbone_close(&bb);
    mo_file_close(&f);
    free(bytes);
    mg_free(&bbm);

    mg_model hm;
    json_object *m = dg_small_head(&hm, digest);
    n = dg_serialize(&hm, m, &bytes);
    snprintf(det_path, sizeof(det_path), "%s/det.safetensors", dir);
    write_file(det_path, bytes, n);
    free(bytes);
    dg_meta(m, "mo.backbone_digest", "0123456789abcdef");
    n = dg_serialize(&hm, m, &bytes);
    snprintf(det2_path, sizeof(det2_path), "%s/det-other.safetensors", dir);
    write_file(det2_path, bytes, n);
    free(bytes);
    json_object_put(m);
    mg_free(&hm);

    /* segmentation heads trained at output stride 16 and 8 */
    mg_model sm;
    const head_spec sh = small_seg_head(&sm, 5);
    for (int k = 0; k < 2; k++) {
        n = serialize_seg_head(&sm, &sh, digest, k ? "8" : "16", &bytes);
        char *path = k ? seg8_path : seg_path;
        snprintf(path, 128, "%s/seg%d.safetensors", dir, k ? 8 : 16);
        write_file(path, bytes, n);
        free(bytes);
    }
    mg_free(&sm);

    pic = malloc(PW * PH * 3);
    uint32_t st = 12345;
    for (int i = 0; i < PW * PH * 3; i++) {
        st = st * 1103515245u + 12345u;
        pic[i] = (uint8_t)((st >> 16) & 0xff) / 2 + (uint8_t)((i / 3) % PW);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove(bb_path);
    remove(det_path);
    remove(det2_path);
    remove(seg_path);
    remove(seg8_path);
    rmdir(dir);
    free(pic);
    return 0;
}

/* ------------------------------------------------------------- frames */

static void test_packed_formats(void **state)
{
    (void)state;
    static const int fmts[] = {MO_FRAME_RGB, MO_FRAME_BGR, MO_FRAME_RGBA, MO_FRAME_BGRA};
    uint8_t *out = malloc(PW * PH * 3);
    for (int k = 0; k < 4; k++) {
        const int bpp = k < 2 ? 3 : 4, swap = k & 1;
        const ptrdiff_t stride = PW * bpp + 5;
        uint8_t *buf = malloc((size_t)stride * PH);
        memset(buf, 0xAB, (size_t)stride * PH);
        for (int y = 0; y < PH; y++)
            for (int x = 0; x < PW; x++) {
                const uint8_t *s = pic + (y * PW + x) * 3;
                uint8_t *d = buf + y * stride + x * bpp;
                d[0] = s[swap ? 2 : 0], d[1] = s[1], d[2] = s[swap ? 0 : 2];
                if (bpp == 4)
                    d[3] = (uint8_t)x;
            }
        mo_frame f = {.format = fmts[k], .width = PW, .height = PH, .data = {buf},
                      .stride = {stride}};
        memset(out, 0, PW * PH * 3);
        assert_int_equal(mo_frame_to_rgb(&f, out, PW * 3), MO_OK);
        assert_memory_equal(out, pic, PW * PH * 3);
        mo_image img;
        assert_int_equal(mo_frame_to_image(&f, &img), MO_OK);
        assert_memory_equal(img.data, pic, PW * PH * 3);
        mo_image_free(&img);
        f.stride[0] = PW * bpp - 1;
        assert_int_equal(mo_frame_to_rgb(&f, out, PW * 3), MO_EINVAL);
        free(buf);
    }
    free(out);
}

static int clampi(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

static void test_yuv_values(void **state)
{
    (void)state;
    /* 2x2 blocks of one Y, one chroma pair each */
    static const uint8_t cases[][3] = {{16, 128, 128}, {235, 128, 128}, {0, 128, 128},
                                       {255, 128, 128}, {81, 90, 240}, {145, 54, 34},
                                       {41, 240, 110}, {128, 0, 255}, {128, 255, 0}};
    const int n = (int)(sizeof(cases) / sizeof(cases[0]));
    const int w = 2 * n, h = 2;
    uint8_t yp[2 * 18], uv[18], vu[18], rgb[2 * 18 * 3], rgb2[2 * 18 * 3];
    for (int i = 0; i < n; i++) {
        yp[2 * i] = yp[2 * i + 1] = yp[w + 2 * i] = yp[w + 2 * i + 1] = cases[i][0];
        uv[2 * i] = vu[2 * i + 1] = cases[i][1];
        uv[2 * i + 1] = vu[2 * i] = cases[i][2];
    }
    mo_frame f = {.format = MO_FRAME_NV12, .width = w, .height = h, .data = {yp, uv},
                  .stride = {w, w}};
    assert_int_equal(mo_frame_to_rgb(&f, rgb, w * 3), MO_OK);
    mo_frame g = f;
    g.format = MO_FRAME_NV21;
    g.data[1] = vu;
    assert_int_equal(mo_frame_to_rgb(&g, rgb2, w * 3), MO_OK);
    assert_memory_equal(rgb, rgb2, sizeof(rgb));
    /* I420: the same samples in planes of their own (padded rows) give the same RGB */
    uint8_t up[2 * 9], vp[2 * 9];
    memset(up, 0, sizeof(up)), memset(vp, 0, sizeof(vp));
    for (int i = 0; i < n; i++)
        up[i] = cases[i][1], vp[i] = cases[i][2];
    g = (mo_frame){.format = MO_FRAME_I420, .width = w, .height = h, .data = {yp, up, vp},
                   .stride = {w, n, n}};
    memset(rgb2, 0, sizeof(rgb2));
    assert_int_equal(mo_frame_to_rgb(&g, rgb2, w * 3), MO_OK);
    assert_memory_equal(rgb, rgb2, sizeof(rgb));
    for (int i = 0; i < n; i++) {
        /* the real-valued BT.601 limited-range formula: within 1 of the fixed point */
        const double c = 1.164 * (cases[i][0] > 16 ? cases[i][0] - 16 : 0);
        const double d = cases[i][1] - 128, e = cases[i][2] - 128;
        const int ref[3] = {clampi((int)lround(c + 1.596 * e)),
                            clampi((int)lround(c - 0.813 * e - 0.391 * d)),
                            clampi((int)lround(c + 2.018 * d))};
        for (int k = 0; k < 3; k++) {
            assert_true(abs(rgb[6 * i + k] - ref[k]) <= 1);
            assert_int_equal(rgb[6 * i + k], rgb[3 * w + 6 * i + 3 + k]);
        }
    }
    assert_int_equal(rgb[0], 0);
    assert_int_equal(rgb[3 * 2], 255); /* Y = 235: white */
    /* odd sizes: the last column and row use the last chroma pair */
    mo_frame o = {.format = MO_FRAME_NV12, .width = 3, .height = 3, .data = {yp, uv},
                  .stride = {4, 4}};
    assert_int_equal(mo_frame_to_rgb(&o, rgb, 9), MO_OK);
    o.stride[1] = 3;
    assert_int_equal(mo_frame_to_rgb(&o, rgb, 9), MO_EINVAL);
    o.stride[1] = 4;
    o.data[1] = NULL;
    assert_int_equal(mo_frame_to_rgb(&o, rgb, 9), MO_EINVAL);
    /* I420 of odd size: chroma planes of (3 + 1) / 2 = 2 columns, both required; with
     * U/V rows of 2 it holds the samples of the NV12 frame above (chroma rows of 4, so
     * up[i] = uv[2 i]), whose RGB is still in rgb[0..26] */
    uint8_t rgb3[27];
    o = (mo_frame){.format = MO_FRAME_I420, .width = 3, .height = 3, .data = {yp, up, vp},
                   .stride = {4, 2, 2}};
    assert_int_equal(mo_frame_to_rgb(&o, rgb3, 9), MO_OK);
    assert_memory_equal(rgb3, rgb, sizeof(rgb3));
    o.stride[2] = 1;
    assert_int_equal(mo_frame_to_rgb(&o, rgb3, 9), MO_EINVAL);
    o.stride[2] = 2;
    o.data[2] = NULL;
    assert_int_equal(mo_frame_to_rgb(&o, rgb3, 9), MO_EINVAL);
}

/* RGB -> YUV (BT.601 limited, real-valued, 2x2 chroma average) -> NV12 -> RGB: close. */
static void test_yuv_round_trip(void **state)
{
    (void)state;
    const int w = 64, h = 48;
    uint8_t *rgb = malloc(w * h * 3), *back = malloc(w * h * 3);
    uint8_t *yp = malloc(w * h), *uv = malloc(w * h / 2);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) { /* smooth: 2x2 blocks share colour */
            uint8_t *p = rgb + (y * w + x) * 3;
            p[0] = (uint8_t)(20 + 3 * (x / 2)), p[1] = (uint8_t)(30 + 4 * (y / 2)),
            p[2] = (uint8_t)(200 - 2 * (x / 2) - 2 * (y / 2));
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = rgb + (y * w + x) * 3;
            const double Y = 16 + 0.257 * p[0] + 0.504 * p[1] + 0.098 * p[2];
            yp[y * w + x] = (uint8_t)lround(Y);
            if (!(x & 1) && !(y & 1)) {
                uv[(y / 2) * w + x] = (uint8_t)lround(128 - 0.148 * p[0] - 0.291 * p[1] + 0.439 * p[2]);
                uv[(y / 2) * w + x + 1] = (uint8_t)lround(128 + 0.439 * p[0] - 0.368 * p[1] - 0.071 * p[2]);
            }
        }
    mo_frame f = {.format = MO_FRAME_NV12, .width = w, .height = h, .data = {yp, uv},
                  .stride = {w, w}};
    assert_int_equal(mo_frame_to_rgb(&f, back, w * 3), MO_OK);
    int worst = 0;
    for (int i = 0; i < w * h * 3; i++)
        worst = abs(back[i] - rgb[i]) > worst ? abs(back[i] - rgb[i]) : worst;
    assert_true(worst <= 3);
    free(rgb), free(back), free(yp), free(uv);
}

static void test_frame_errors(void **state)
{
    (void)state;
    uint8_t px[12], out[12];
    mo_frame f = {.format = MO_FRAME_RGB, .width = 2, .height = 2, .data = {px}, .stride = {6}};
    assert_int_equal(mo_frame_to_rgb(&f, out, 6), MO_OK);
    assert_int_equal(mo_frame_to_rgb(&f, out, 5), MO_EINVAL);
    assert_int_equal(mo_frame_to_rgb(NULL, out, 6), MO_EINVAL);
    assert_int_equal(mo_frame_to_rgb(&f, NULL, 6), MO_EINVAL);
    f.format = 17;
    assert_int_equal(mo_frame_to_rgb(&f, out, 6), MO_EINVAL);
    f.format = MO_FRAME_RGB;
    f.width = 0;
    assert_int_equal(mo_frame_to_rgb(&f, out, 6), MO_EINVAL);
    f.width = MO_MAX_INPUT_SIDE + 1;
    assert_int_equal(mo_frame_to_rgb(&f, out, 6), MO_EINVAL);
}

/* ----------------------------------------------------------- pipeline */

typedef struct ref_out {
    mo_class_score top[MO_PIPELINE_MAX_TOPK];
    int ntop;
    mo_detection det[300];
    int ndet;
} ref_out;

/* The heads run one by one by hand, as the apps do. */
static void reference(const mo_pipeline *p, int cls_shared, ref_out *r)
{
    const mo_backbone *bb = mo_pipeline_backbone(p);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_width = ss.max_height = IN;
    ss.workspace_bytes = mo_det_workspace_size(mo_pipeline_det(p));
    mo_session *s;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
    const mo_image img = {.data = pic, .w = PW, .h = PH};
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float in[IN * IN * 3], logits[NCLS];
    mo_features f;
    mo_tensor t = {.data = in, .w = IN, .h = IN};
    assert_int_equal(mo_preprocess_resize(&img, mean, std, &t), MO_OK);
    assert_int_equal(mo_backbone_run(s, &t, 32, &f), MO_OK);
    assert_int_equal(mo_det_run(mo_pipeline_det(p), s, &f, NULL, PW, PH, r->det, 300, &r->ndet),
                     MO_OK);
    if (!cls_shared) {
        mo_tensor c = {.data = in};
        assert_int_equal(mo_preprocess_classify(&img, 72, 64, mean, std, &c), MO_OK);
        assert_int_equal(mo_backbone_run(s, &c, 32, &f), MO_OK);
    }
    assert_int_equal(mo_cls_logits(mo_pipeline_cls(p), &f, logits), MO_OK);
    mo_softmax(logits, NCLS);
    r->ntop = mo_topk(logits, NCLS, 5, r->top);
    mo_session_close(&s);
}

static void run_frame(const mo_pipeline *p, const mo_frame *fr, mo_detection *det,
                      mo_pipeline_result *res)
{
    mo_pipeline_session *s;
    assert_int_equal(mo_pipeline_session_open(&s, p, NULL), MO_OK);
    memset(res, 0, sizeof(*res));
    res->size = sizeof(*res);
    res->detections = det;
    res->det_capacity = 300;
    assert_int_equal(mo_pipeline_run(s, fr, res), MO_OK);
    /* a second run on the session gives the same */
    mo_pipeline_result again = *res;
    mo_detection det2[300];
    again.detections = det2;
    assert_int_equal(mo_pipeline_run(s, fr, &again), MO_OK);
    assert_int_equal(again.num_detections, res->num_detections);
    assert_memory_equal(det2, det, sizeof(mo_detection) * (size_t)res->num_detections);
    mo_pipeline_session_close(&s);
    assert_null(s);
}

static void test_pipeline_vs_heads(void **state)
{
    (void)state;
    const char *heads[] = {det_path};
    const mo_frame rgb = {.format = MO_FRAME_RGB, .width = PW, .height = PH, .data = {pic},
                          .stride = {PW * 3}};
    for (int mode = 0; mode < 4; mode++) {
        mo_pipeline_settings set;
        mo_pipeline_default_settings(&set);
        set.share_backbone = !(mode & 1);
        set.classify_shared = mode >> 1;
        mo_pipeline *p;
        assert_int_equal(mo_pipeline_open(&p, bb_path, heads, 1, &set), MO_OK);
        assert_non_null(mo_pipeline_cls(p));
        assert_non_null(mo_pipeline_det(p));
        assert_int_equal(mo_pipeline_seg_num_classes(p), 0);
        ref_out r;
        reference(p, set.classify_shared, &r);
        mo_detection det[300];
        mo_pipeline_result res;
        run_frame(p, &rgb, det, &res);
        assert_int_equal(res.num_top, r.ntop);
        assert_memory_equal(res.top, r.top, sizeof(mo_class_score) * (size_t)r.ntop);
        assert_int_equal(res.num_detections, r.ndet);
        assert_true(r.ndet > 0);
        assert_memory_equal(det, r.det, sizeof(mo_detection) * (size_t)r.ndet);
        assert_false(res.has_labels);
        assert_true(res.ms_total >= res.ms_backbone);
        mo_pipeline_close(&p);
        assert_null(p);
    }
}

/* A BGRA frame with padded rows and its NV12 version through mo_frame_to_image(): the
 * pipeline sees the same picture as from RGB. */
static void test_pipeline_formats(void **state)
{
    (void)state;
    const char *heads[] = {det_path};
    mo_pipeline *p;
    assert_int_equal(mo_pipeline_open(&p, bb_path, heads, 1, NULL), MO_OK);
    const mo_frame rgb = {.format = MO_FRAME_RGB, .width = PW, .height = PH, .data = {pic},
                          .stride = {PW * 3}};
    mo_detection d1[300], d2[300];
    mo_pipeline_result r1, r2;
    run_frame(p, &rgb, d1, &r1);
    const ptrdiff_t st = PW * 4 + 12;
    uint8_t *bgra = calloc((size_t)st * PH, 1);
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++)
            for (int k = 0; k < 3; k++)
                bgra[y * st + x * 4 + k] = pic[(y * PW + x) * 3 + 2 - k];
    const mo_frame fb = {.format = MO_FRAME_BGRA, .width = PW, .height = PH, .data = {bgra},
                         .stride = {st}};
    run_frame(p, &fb, d2, &r2);
    assert_int_equal(r1.num_detections, r2.num_detections);
    assert_memory_equal(d1, d2, sizeof(mo_detection) * (size_t)r1.num_detections);
    assert_memory_equal(r1.top, r2.top, sizeof(r1.top));
    free(bgra);

    /* NV12 of odd size runs and matches its RGB conversion run as RGB */
    const int w = 31, h = 17;
    uint8_t yp[31 * 17], uv[32 * 9];
    for (int i = 0; i < w * h; i++)
        yp[i] = (uint8_t)(16 + (i * 7) % 220);
    for (int i = 0; i < 32 * 9; i++)
        uv[i] = (uint8_t)(60 + (i * 13) % 140);
    const mo_frame nv = {.format = MO_FRAME_NV12, .width = w, .height = h, .data = {yp, uv},
                         .stride = {w, 32}};
    mo_image img;
    assert_int_equal(mo_frame_to_image(&nv, &img), MO_OK);
    const mo_frame asrgb = {.format = MO_FRAME_RGB, .width = w, .height = h,
                            .data = {img.data}, .stride = {w * 3}};
    run_frame(p, &nv, d1, &r1);
    run_frame(p, &asrgb, d2, &r2);
    assert_int_equal(r1.num_detections, r2.num_detections);
    assert_memory_equal(d1, d2, sizeof(mo_detection) * (size_t)r1.num_detections);
    /* the same samples as I420 (U and V planes split out of the NV12 chroma) */
    uint8_t up[16 * 9], vp[16 * 9];
    for (int i = 0; i < 16 * 9; i++)
        up[i] = uv[2 * i], vp[i] = uv[2 * i + 1];
    const mo_frame i420 = {.format = MO_FRAME_I420, .width = w, .height = h,
                           .data = {yp, up, vp}, .stride = {w, 16, 16}};
    run_frame(p, &i420, d2, &r2);
    assert_int_equal(r1.num_detections, r2.num_detections);
    assert_memory_equal(d1, d2, sizeof(mo_detection) * (size_t)r1.num_detections);
    mo_image_free(&img);
    mo_pipeline_close(&p);
}

static void test_pipeline_errors(void **state)
{
    (void)state;
    /* ABI habits: the library's version is the headers' one; settings carry their size */
    assert_int_equal(mo_version_number(), MO_VERSION_NUMBER);
    char v[32];
    snprintf(v, sizeof(v), "%d.%d.%d", MO_VERSION_MAJOR, MO_VERSION_MINOR, MO_VERSION_PATCH);
    assert_string_equal(mo_version(), v);
    mo_pipeline_settings def;
    mo_pipeline_default_settings(&def);
    assert_int_equal(def.size, sizeof(def));
    mo_pipeline *p = (mo_pipeline *)1;
    const char *two[] = {det_path, det_path}, *other[] = {det2_path}, *none[] = {bb_path};
    assert_int_equal(mo_pipeline_open(&p, bb_path, two, 2, NULL), MO_EINVAL);
    assert_null(p);
    assert_int_equal(mo_pipeline_open(&p, bb_path, other, 1, NULL), MO_EMISMATCH);
    assert_non_null(strstr(mo_last_error(), "det-other"));
    assert_int_equal(mo_pipeline_open(&p, bb_path, none, 1, NULL), MO_EINVAL); /* no head kind */
    assert_int_equal(mo_pipeline_open(&p, "/nonexistent.safetensors", NULL, 0, NULL), MO_EIO);
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 1, NULL), MO_EINVAL);
    assert_int_equal(mo_pipeline_open(NULL, bb_path, NULL, 0, NULL), MO_EINVAL);
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    set.size = 8;
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 0, &set), MO_EINVAL);
    mo_pipeline_default_settings(&set);
    set.top_k = 0;
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 0, &set), MO_EINVAL);
    mo_pipeline_default_settings(&set);
    assert_int_equal(set.threads, 1);
    set.threads = -1;
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 0, &set), MO_EINVAL);
    set.threads = MO_MAX_THREADS + 1;
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 0, &set), MO_EINVAL);
    mo_pipeline_default_settings(&set);
    set.classify = 0;
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 0, &set), MO_OK);
    assert_null(mo_pipeline_cls(p));
    mo_pipeline_close(&p);

    /* classification only; bad results and frames */
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 0, NULL), MO_OK);
    mo_pipeline_session *s;
    assert_int_equal(mo_pipeline_session_open(&s, p, NULL), MO_OK);
    const mo_frame rgb = {.format = MO_FRAME_RGB, .width = PW, .height = PH, .data = {pic},
                          .stride = {PW * 3}};
    mo_pipeline_result res = {.size = sizeof(res)};
    assert_int_equal(mo_pipeline_run(s, &rgb, &res), MO_OK);
    assert_int_equal(res.num_top, 5);
    assert_int_equal(res.num_detections, 0);
    res.size = 4;
    assert_int_equal(mo_pipeline_run(s, &rgb, &res), MO_EINVAL);
    res.size = sizeof(res);
    uint8_t lab[4];
    res.labels = lab;
    res.label_stride = 2;
    assert_int_equal(mo_pipeline_run(s, &rgb, &res), MO_EINVAL);
    res.labels = NULL;
    mo_frame bad = rgb;
    bad.stride[0] = 3;
    assert_int_equal(mo_pipeline_run(s, &bad, &res), MO_EINVAL);
    assert_int_equal(mo_pipeline_run(NULL, &rgb, &res), MO_EINVAL);
    mo_pipeline_session_close(&s);
    mo_pipeline_session_close(NULL);
    mo_pipeline_close(&p);
    mo_pipeline_close(NULL);
}

/* ------------------------------------------------------- versioned settings */

/* A caller's settings struct of `size` bytes: the first `size` bytes of `full`, the rest
 * of the buffer 0xff, so a library that read past `size` would find garbage (negative or
 * huge values its checks refuse). */
static _Alignas(16) unsigned char sbuf[512];
static const void *truncated(const void *full, size_t full_size, size_t size)
{
    assert_true(full_size + 64 <= sizeof(sbuf));
    memset(sbuf, 0xff, sizeof(sbuf));
    memcpy(sbuf, full, size < full_size ? size : full_size);
    memcpy(sbuf, &size, sizeof(size));
    return sbuf;
}
#define TRUNC(s, n) truncated(&(s), sizeof(s), (n))
#define END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

/* Every settings struct starts with its size; defaults set it; a caller built against
 * older headers (a smaller size) gets the defaults for the fields it does not cover; a
 * size above the library's or below its first setting is refused with a message. */
static void test_settings_versions(void **state)
{
    (void)state;
    mo_file *bbf = NULL, *detf = NULL, *segf = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(mo_file_open(&bbf, bb_path), MO_OK);
    assert_int_equal(mo_file_open(&detf, det_path), MO_OK);
    assert_int_equal(mo_file_open(&segf, seg_path), MO_OK);

    /* backbone: one setting (prefix) */
    mo_backbone_settings bs;
    mo_backbone_default_settings(&bs);
    assert_int_equal(bs.size, sizeof(bs));
    assert_int_equal(mo_backbone_open(&bb, bbf, TRUNC(bs, sizeof(bs) + 8)), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "larger than this library's"));
    assert_int_equal(mo_backbone_open(&bb, bbf, TRUNC(bs, sizeof(size_t))), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "too small"));
    assert_int_equal(mo_backbone_open(&bb, bbf, TRUNC(bs, 0)), MO_EINVAL);
    assert_int_equal(mo_backbone_open(&bb, bbf, &bs), MO_OK);

    /* session: an old caller up to min_output_stride; workspace_bytes and threads would
     * be 2^64 - 1 and -1 if read */
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    assert_int_equal(ss.size, sizeof(ss));
    ss.max_height = ss.max_width = 40;
    mo_session *se = NULL;
    assert_int_equal(mo_session_open(&se, bb, TRUNC(ss, END(mo_session_settings,
                                                            min_output_stride))), MO_OK);
    assert_int_equal(mo_session_threads(se), 1);
    size_t wsb = 1;
    assert_null(mo_session_workspace(se, &wsb));
    assert_int_equal(wsb, 0);
    mo_session_close(&se);
    /* a size inside a field covers the fields before it only */
    assert_int_equal(mo_session_open(&se, bb, TRUNC(ss, END(mo_session_settings,
                                                            min_output_stride) + 2)), MO_OK);
    mo_session_close(&se);
    assert_int_equal(mo_session_open(&se, bb, TRUNC(ss, sizeof(ss) + 1)), MO_EINVAL);
    assert_int_equal(mo_session_open(&se, bb, TRUNC(ss, sizeof(size_t) + 2)), MO_EINVAL);
    assert_null(se);

    /* classification: an old caller with resize only; crop is the file's (64) */
    mo_cls_settings cs;
    mo_cls_default_settings(&cs);
    assert_int_equal(cs.size, sizeof(cs));
    cs.resize = 80;
    mo_cls *cls = NULL;
    assert_int_equal(mo_cls_open(&cls, bbf, bb, TRUNC(cs, END(mo_cls_settings, resize))), MO_OK);
    int resize = 0, crop = 0;
    assert_int_equal(mo_cls_preprocess(cls, &resize, &crop, NULL, NULL), MO_OK);
    assert_int_equal(resize, 80);
    assert_int_equal(crop, 64);
    mo_cls_close(&cls);
    cs.crop = 48; /* the whole struct: both set */
    assert_int_equal(mo_cls_open(&cls, bbf, bb, &cs), MO_OK);
    assert_int_equal(mo_cls_preprocess(cls, &resize, &crop, NULL, NULL), MO_OK);
    assert_int_equal(crop, 48);
    mo_cls_close(&cls);
    cs.crop = -1;
    assert_int_equal(mo_cls_open(&cls, bbf, bb, &cs), MO_EINVAL);
    assert_int_equal(mo_cls_open(&cls, bbf, bb, TRUNC(cs, sizeof(cs) + 4)), MO_EINVAL);
    assert_int_equal(mo_cls_open(&cls, bbf, bb, TRUNC(cs, sizeof(size_t))), MO_EINVAL);
    assert_null(cls);

    /* segmentation: one setting, the output stride */
    mo_seg_settings gs;
    mo_seg_default_settings(&gs);
    assert_int_equal(gs.size, sizeof(gs));
    gs.output_stride = 8;
    mo_seg *seg = NULL;
    mo_seg_info info;
    assert_int_equal(mo_seg_open(&seg, segf, bb, &gs), MO_OK);
    assert_int_equal(mo_seg_get_info(seg, &info), MO_OK);
    assert_int_equal(info.output_stride, 8);
    mo_seg_close(&seg);
    assert_int_equal(mo_seg_open(&seg, segf, bb, NULL), MO_OK);
    assert_int_equal(mo_seg_get_info(seg, &info), MO_OK);
    assert_int_equal(info.output_stride, 16); /* the file's */
    mo_seg_close(&seg);
    gs.output_stride = 12;
    assert_int_equal(mo_seg_open(&seg, segf, bb, &gs), MO_EINVAL);
    assert_int_equal(mo_seg_open(&seg, segf, bb, TRUNC(gs, sizeof(gs) + 8)), MO_EINVAL);
    assert_int_equal(mo_seg_open(&seg, segf, bb, TRUNC(gs, sizeof(size_t))), MO_EINVAL);
    assert_null(seg);

    /* detection: the struct of a version before max_classes_per_box (it would be -1, which
     * open refuses, if read); open and post-processing take the default (0). */
    struct det_settings_v0 {
        size_t size;
        double score_thresh;
        int topk_candidates;
        double nms_thresh;
        int detections_per_img;
        int class_agnostic;
        double soft_nms_sigma;
    };
    assert_true(sizeof(struct det_settings_v0) < sizeof(mo_det_settings));
    assert_int_equal(sizeof(struct det_settings_v0), END(mo_det_settings, soft_nms_sigma));
    mo_det_settings ds;
    mo_det_default_settings(&ds);
    assert_int_equal(ds.size, sizeof(ds));
    ds.score_thresh = 0.01;
    ds.detections_per_img = 7;
    mo_det *det = NULL;
    assert_int_equal(mo_det_open(&det, detf, bb, TRUNC(ds, sizeof(struct det_settings_v0))),
                     MO_OK);
    mo_det_close(&det);
    ds.max_classes_per_box = -1;
    assert_int_equal(mo_det_open(&det, detf, bb, &ds), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "max_classes_per_box"));
    assert_int_equal(mo_det_open(&det, detf, bb, TRUNC(ds, sizeof(ds) + 8)), MO_EINVAL);
    assert_int_equal(mo_det_open(&det, detf, bb, TRUNC(ds, sizeof(size_t) + 4)), MO_EINVAL);
    assert_null(det);
    /* post-processing of one run with the v0 struct equals the full struct with the
     * default max_classes_per_box */
    assert_int_equal(mo_det_open(&det, detf, bb, NULL), MO_OK);
    int dw, dh;
    mo_det_input_size(det, &dw, &dh);
    mo_session_default_settings(&ss);
    ss.max_height = dh, ss.max_width = dw, ss.workspace_bytes = mo_det_workspace_size(det);
    assert_int_equal(mo_session_open(&se, bb, &ss), MO_OK);
    float *in = malloc(sizeof(float) * 3 * (size_t)dw * dh);
    for (int i = 0; i < 3 * dw * dh; i++)
        in[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    mo_tensor t = {.data = in, .h = dh, .w = dw, .c = 3, .row_stride = 3 * dw};
    mo_features f;
    assert_int_equal(mo_backbone_run(se, &t, 32, &f), MO_OK);
    mo_detection d0[50], d1[50];
    int n0 = -1, n1 = -2;
    ds.max_classes_per_box = 0;
    assert_int_equal(mo_det_run(det, se, &f, &ds, PW, PH, d0, 50, &n0), MO_OK);
    assert_int_equal(mo_det_run(det, se, &f, TRUNC(ds, sizeof(struct det_settings_v0)), PW,
                                PH, d1, 50, &n1), MO_OK);
    assert_int_equal(n0, n1);
    assert_true(n0 > 0 && n0 <= 7);
    assert_memory_equal(d0, d1, sizeof(mo_detection) * (size_t)n0);
    ds.max_classes_per_box = -1;
    assert_int_equal(mo_det_run(det, se, &f, &ds, PW, PH, d0, 50, &n0), MO_EINVAL);
    free(in);
    mo_session_close(&se);
    mo_det_close(&det);

    /* pipeline: an old caller without `threads` (it would be -1 if read) */
    mo_pipeline_settings ps;
    mo_pipeline_default_settings(&ps);
    ps.top_k = 3;
    mo_pipeline *p = NULL;
    assert_int_equal(mo_pipeline_open(&p, bb_path, NULL, 0,
                                      TRUNC(ps, END(mo_pipeline_settings, top_k))), MO_OK);
    mo_pipeline *p2 = NULL;
    assert_int_equal(mo_pipeline_open(&p2, bb_path, NULL, 0, TRUNC(ps, sizeof(ps) + 8)),
                     MO_EINVAL);
    assert_int_equal(mo_pipeline_open(&p2, bb_path, NULL, 0, TRUNC(ps, sizeof(size_t))),
                     MO_EINVAL);
    assert_null(p2);
    /* the pipeline session: threads from the pipeline (-1), or its own */
    mo_pipeline_session_settings pss;
    mo_pipeline_session_default_settings(&pss);
    assert_int_equal(pss.size, sizeof(pss));
    assert_int_equal(pss.threads, -1);
    mo_pipeline_session *s = NULL;
    assert_int_equal(mo_pipeline_session_open(&s, p, TRUNC(pss, sizeof(size_t))), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "mo_pipeline_session_settings"));
    assert_int_equal(mo_pipeline_session_open(&s, p, TRUNC(pss, sizeof(pss) + 8)), MO_EINVAL);
    pss.threads = MO_MAX_THREADS + 1;
    assert_int_equal(mo_pipeline_session_open(&s, p, &pss), MO_EINVAL);
    assert_null(s);
    const mo_frame rgb = {.format = MO_FRAME_RGB, .width = PW, .height = PH, .data = {pic},
                          .stride = {PW * 3}};
    mo_pipeline_result r1 = {.size = sizeof(r1)}, r2 = {.size = sizeof(r2)};
    assert_int_equal(mo_pipeline_session_open(&s, p, NULL), MO_OK);
    assert_int_equal(mo_pipeline_run(s, &rgb, &r1), MO_OK);
    mo_pipeline_session_close(&s);
    pss.threads = 2; /* a session of its own thread count: the same results */
    assert_int_equal(mo_pipeline_session_open(&s, p, &pss), MO_OK);
    assert_int_equal(mo_pipeline_run(s, &rgb, &r2), MO_OK);
    mo_pipeline_session_close(&s);
    assert_int_equal(r1.num_top, 3); /* top_k of the old caller's struct */
    assert_int_equal(r2.num_top, 3);
    assert_memory_equal(r1.top, r2.top, sizeof(mo_class_score) * 3);
    /* a result struct of older headers (no timings): the fields it has, nothing past its
     * size written; sizes above the library's or below num_top refused */
    assert_int_equal(mo_pipeline_session_open(&s, p, NULL), MO_OK);
    mo_pipeline_result full = {.size = sizeof(full)};
    const size_t old = END(mo_pipeline_result, has_labels);
    mo_pipeline_result *r3 = (mo_pipeline_result *)truncated(&full, sizeof(full), old);
    assert_int_equal(mo_pipeline_run(s, &rgb, r3), MO_OK);
    assert_int_equal(r3->size, old);
    assert_int_equal(r3->num_top, 3);
    assert_memory_equal(r3->top, r1.top, sizeof(mo_class_score) * 3);
    for (size_t i = old; i < sizeof(sbuf); i++)
        assert_int_equal(sbuf[i], 0xff);
    assert_int_equal(mo_pipeline_run(s, &rgb, (mo_pipeline_result *)truncated(
                                                  &full, sizeof(full), sizeof(full) + 8)),
                     MO_EINVAL);
    assert_int_equal(mo_pipeline_run(s, &rgb, (mo_pipeline_result *)truncated(
                                                  &full, sizeof(full), sizeof(size_t))),
                     MO_EINVAL);
    mo_pipeline_session_close(&s);
    mo_pipeline_close(&p);

    mo_backbone_close(&bb);
    mo_file_close(&bbf);
    mo_file_close(&detf);
    mo_file_close(&segf);
}

/* Detection + segmentation (+ classification): one pass at stride 32, stage4 (stride 16)
 * or stages 3-4 (stride 8) recomputed for segmentation; the label map equals a full
 * dilated run on the same input, in both modes. */
static void test_pipeline_segmentation(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        const int os = k ? 8 : 16;
        const char *heads[] = {k ? seg8_path : seg_path, det_path};
        uint8_t *ref = malloc(PW * PH), *lab = malloc((PW + 3) * PH);
        for (int mode = 0; mode < 3; mode++) {
            mo_pipeline_settings set;
            mo_pipeline_default_settings(&set);
            set.share_backbone = mode != 1;
            mo_pipeline *p;
            /* mode 2: segmentation alone (shared size from the settings) */
            assert_int_equal(mo_pipeline_open(&p, bb_path, heads, mode == 2 ? 1 : 2, &set),
                             MO_OK);
            if (mode == 2) {
                mo_pipeline_close(&p);
                set.shared_width = set.shared_height = IN;
                set.classify = 0;
                assert_int_equal(mo_pipeline_open(&p, bb_path, heads, 1, &set), MO_OK);
            }
            assert_int_equal(mo_pipeline_seg_num_classes(p), 5);
            assert_string_equal(mo_pipeline_seg_class_name(p, 1), "c1");
            assert_null(mo_pipeline_seg_class_name(p, 5));
            if (mode == 0) { /* the reference: a full run at the head's stride */
                mo_file *f;
                mo_seg *seg;
                assert_int_equal(mo_file_open(&f, heads[0]), MO_OK);
                assert_int_equal(mo_seg_open(&seg, f, mo_pipeline_backbone(p), NULL), MO_OK);
                mo_session_settings ss;
                mo_session_default_settings(&ss);
                ss.max_width = ss.max_height = IN;
                ss.min_output_stride = os;
                assert_int_equal(mo_seg_workspace_size(seg, IN, IN, os, &ss.workspace_bytes),
                                 MO_OK);
                mo_session *s;
                assert_int_equal(mo_session_open(&s, mo_pipeline_backbone(p), &ss), MO_OK);
                const mo_image img = {.data = pic, .w = PW, .h = PH};
                const float mean[3] = {0.485f, 0.456f, 0.406f};
                const float std[3] = {0.229f, 0.224f, 0.225f};
                float in[IN * IN * 3];
                mo_tensor t = {.data = in, .w = IN, .h = IN};
                mo_features f2;
                assert_int_equal(mo_preprocess_resize(&img, mean, std, &t), MO_OK);
                assert_int_equal(mo_backbone_run(s, &t, os, &f2), MO_OK);
                assert_int_equal(mo_seg_run(seg, s, &f2, PH, PW, ref, PW, NULL), MO_OK);
                mo_session_close(&s);
                mo_seg_close(&seg);
                mo_file_close(&f);
            }
            mo_pipeline_session *s;
            assert_int_equal(mo_pipeline_session_open(&s, p, NULL), MO_OK);
            mo_detection det[300];
            mo_pipeline_result res = {.size = sizeof(res), .detections = det,
                                      .det_capacity = 300, .labels = lab,
                                      .label_stride = PW + 3};
            const mo_frame rgb = {.format = MO_FRAME_RGB, .width = PW, .height = PH,
                                  .data = {pic}, .stride = {PW * 3}};
            assert_int_equal(mo_pipeline_run(s, &rgb, &res), MO_OK);
            assert_true(res.has_labels);
            assert_int_equal(res.num_top, mode == 2 ? 0 : 5);
            if (mode != 2)
                assert_true(res.num_detections > 0);
            for (int y = 0; y < PH; y++)
                assert_memory_equal(lab + y * (PW + 3), ref + y * PW, PW);
            mo_pipeline_session_close(&s);
            mo_pipeline_close(&p);
        }
        free(ref);
        free(lab);
    }
}

/* Threads sharing one pipeline, a session each, give the serial result. */
typedef struct thread_arg {
    const mo_pipeline *p;
    mo_detection det[300];
    uint8_t lab[PW * PH];
    mo_pipeline_result res;
    int rc;
} thread_arg;

static void *thread_run(void *v)
{
    thread_arg *a = v;
    mo_pipeline_session *s = NULL;
    const mo_frame rgb = {.format = MO_FRAME_RGB, .width = PW, .height = PH, .data = {pic},
                          .stride = {PW * 3}};
    a->rc = mo_pipeline_session_open(&s, a->p, NULL);
    for (int i = 0; !a->rc && i < 3; i++) {
        a->res = (mo_pipeline_result){.size = sizeof(a->res), .detections = a->det,
                                      .det_capacity = 300, .labels = a->lab,
                                      .label_stride = PW};
        a->rc = mo_pipeline_run(s, &rgb, &a->res);
    }
    mo_pipeline_session_close(&s);
    return NULL;
}

static void test_pipeline_threads(void **state)
{
    (void)state;
    const char *heads[] = {det_path, seg_path};
    mo_pipeline *p;
    assert_int_equal(mo_pipeline_open(&p, bb_path, heads, 2, NULL), MO_OK);
    static thread_arg serial, par[3];
    serial.p = p;
    thread_run(&serial);
    assert_int_equal(serial.rc, MO_OK);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        par[i].p = p;
        assert_int_equal(pthread_create(&th[i], NULL, thread_run, &par[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(par[i].rc, MO_OK);
        assert_int_equal(par[i].res.num_detections, serial.res.num_detections);
        assert_memory_equal(par[i].det, serial.det,
                            sizeof(mo_detection) * (size_t)serial.res.num_detections);
        assert_memory_equal(par[i].res.top, serial.res.top, sizeof(serial.res.top));
        assert_memory_equal(par[i].lab, serial.lab, sizeof(serial.lab));
    }
    mo_pipeline_close(&p);
    /* sessions whose backbone passes run on 2 threads: the same results */
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    set.threads = 2;
    assert_int_equal(mo_pipeline_open(&p, bb_path, heads, 2, &set), MO_OK);
    static thread_arg two;
    two.p = p;
    thread_run(&two);
    assert_int_equal(two.rc, MO_OK);
    assert_int_equal(two.res.num_detections, serial.res.num_detections);
    assert_memory_equal(two.det, serial.det,
                        sizeof(mo_detection) * (size_t)serial.res.num_detections);
    assert_memory_equal(two.res.top, serial.res.top, sizeof(serial.res.top));
    assert_memory_equal(two.lab, serial.lab, sizeof(serial.lab));
    mo_pipeline_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_formats),
        cmocka_unit_test(test_yuv_values),
        cmocka_unit_test(test_yuv_round_trip),
        cmocka_unit_test(test_frame_errors),
        cmocka_unit_test(test_pipeline_vs_heads),
        cmocka_unit_test(test_pipeline_formats),
        cmocka_unit_test(test_pipeline_errors),
        cmocka_unit_test(test_settings_versions),
        cmocka_unit_test(test_pipeline_segmentation),
        cmocka_unit_test(test_pipeline_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
