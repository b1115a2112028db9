/*
 * det_dump: the C detection pipeline's intermediate results, for tests/detect/coco_parity.py.
 *
 *   det_dump --backbone FILE [--head FILE] --out DIR [--score T] [--raw] [--input]
 *            [--post-raw] IMAGE...
 *
 * Per image, one JSON line on stdout:
 *   {"image": STEM, "w": W, "h": H, "dets": [[x1, y1, x2, y2, score, label], ...]}
 * --raw      also writes DIR/STEM.raw.f32: N x K logits then N x 4 codes (float32)
 * --input    also writes DIR/STEM.input.f32: the preprocessed h x w x 3 input
 * --post-raw instead of running the network, reads DIR/STEM.ref.f32 (same layout as
 *            .raw.f32, written by the reference) and only post-processes it
 * DIR/anchors.f32 receives the default boxes (N x 4) once.
 * Exit status 0, or 1 on the first error (with a message on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/detect.h"
#include "mo/image.h"

static const char *stem_of(const char *path, char *buf, size_t size)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, size, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = 0;
    return buf;
}

static int write_f32(const char *path, const float *a, size_t n, const float *b, size_t m)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(a, sizeof(float), n, f) == n && (!b || fwrite(b, sizeof(float), m, f) == m);
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int fail(const char *what, int r)
{
    fprintf(stderr, "det_dump: %s: %s (%s)\n", what, mo_strerror(r), mo_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *bb_path = NULL, *head_path = NULL, *dir = NULL;
    int raw = 0, input = 0, post_raw = 0, first = argc;
    mo_det_settings set;
    mo_det_default_settings(&set);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backbone") && i + 1 < argc)
            bb_path = argv[++i];
        else if (!strcmp(argv[i], "--head") && i + 1 < argc)
            head_path = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--score") && i + 1 < argc)
            set.score_thresh = atof(argv[++i]);
        else if (!strcmp(argv[i], "--raw"))
            raw = 1;
        else if (!strcmp(argv[i], "--input"))
            input = 1;
        else if (!strcmp(argv[i], "--post-raw"))
            post_raw = 1;
        else {
            first = i;
            break;
        }
    }
    if (!bb_path || !dir) {
        fprintf(stderr, "usage: det_dump --backbone FILE [--head FILE] --out DIR [--score T] "
                        "[--raw] [--input] [--post-raw] IMAGE...\n");
        return 2;
    }
    mo_file *fb = NULL, *fh = NULL;
    mo_backbone *bb = NULL;
    mo_det *det = NULL;
    mo_session *s = NULL;
    int r;
    if ((r = mo_file_open(&fb, bb_path)) || (r = mo_backbone_open(&bb, fb, NULL)))
        return fail(bb_path, r);
    if (head_path && (r = mo_file_open(&fh, head_path)))
        return fail(head_path, r);
    if ((r = mo_det_open(&det, fh ? fh : fb, bb, &set)))
        return fail("mo_det_open", r);
    int iw, ih;
    mo_det_input_size(det, &iw, &ih);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_width = iw;
    ss.max_height = ih;
    ss.workspace_bytes = mo_det_workspace_size(det);
    if ((r = mo_session_open(&s, bb, &ss)))
        return fail("mo_session_open", r);
    const int N = mo_det_num_anchors(det), K = mo_det_num_classes(det);
    char path[4096], stem[1024];
    snprintf(path, sizeof(path), "%s/anchors.f32", dir);
    if (write_f32(path, mo_det_anchors(det), 4 * (size_t)N, NULL, 0))
        return fprintf(stderr, "det_dump: cannot write %s\n", path), 1;

    float mean[3], std[3];
    mo_det_normalization(det, mean, std);
    float *in = malloc(sizeof(float) * 3 * (size_t)iw * ih);
    float *ref = malloc(sizeof(float) * (size_t)N * (K + 4));
    mo_detection *dets = malloc(sizeof(*dets) * 1000);
    if (!in || !ref || !dets)
        return fprintf(stderr, "det_dump: out of memory\n"), 1;
    for (int i = first; i < argc; i++) {
        stem_of(argv[i], stem, sizeof(stem));
        mo_image img = { 0 };
        if ((r = mo_image_load(&img, argv[i])))
            return fail(argv[i], r);
        int n = 0;
        if (post_raw) {
            snprintf(path, sizeof(path), "%s/%s.ref.f32", dir, stem);
            FILE *f = fopen(path, "rb");
            size_t got = f ? fread(ref, sizeof(float), (size_t)N * (K + 4), f) : 0;
            if (f)
                fclose(f);
            if (got != (size_t)N * (K + 4))
                return fprintf(stderr, "det_dump: cannot read %s\n", path), 1;
            r = mo_det_postprocess(det, s, ref, ref + (size_t)N * K, NULL, img.w, img.h, dets,
                                   1000, &n);
        } else {
            mo_tensor t = { .data = in, .w = iw, .h = ih };
            mo_features feats;
            mo_det_raw out;
            if ((r = mo_preprocess_resize(&img, mean, std, &t)) ||
                (r = mo_backbone_run(s, &t, 32, &feats)) ||
                (r = mo_det_run_raw(det, s, &feats, &out)))
                return fail(argv[i], r);
            if (input) {
                snprintf(path, sizeof(path), "%s/%s.input.f32", dir, stem);
                if (write_f32(path, in, 3 * (size_t)iw * ih, NULL, 0))
                    return fprintf(stderr, "det_dump: cannot write %s\n", path), 1;
            }
            if (raw) {
                snprintf(path, sizeof(path), "%s/%s.raw.f32", dir, stem);
                if (write_f32(path, out.logits, (size_t)N * K, out.regression, (size_t)N * 4))
                    return fprintf(stderr, "det_dump: cannot write %s\n", path), 1;
            }
            r = mo_det_postprocess(det, s, out.logits, out.regression, NULL, img.w, img.h, dets,
                                   1000, &n);
        }
        if (r)
            return fail(argv[i], r);
        printf("{\"image\": \"%s\", \"w\": %d, \"h\": %d, \"dets\": [", stem, img.w, img.h);
        for (int j = 0; j < n; j++)
            printf("%s[%.9g, %.9g, %.9g, %.9g, %.9g, %d]", j ? ", " : "", dets[j].x1, dets[j].y1,
                   dets[j].x2, dets[j].y2, dets[j].score, dets[j].label);
        printf("]}\n");
        mo_image_free(&img);
    }
    free(in);
    free(ref);
    free(dets);
    mo_session_close(&s);
    mo_det_close(&det);
    mo_backbone_close(&bb);
    mo_file_close(&fh);
    mo_file_close(&fb);
    return 0;
}
