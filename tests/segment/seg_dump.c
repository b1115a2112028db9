/*
 * seg_dump: run the C segmentation head on images and write what the parity test compares
 * with the PyTorch reference (tests/segment/seg_parity.py).
 *
 *   seg_dump --model BACKBONE --head HEAD --os S --out DIR [--resize N] IMAGE...
 *
 * Per image i (input order): DIR/i.logits (h x w x K float32, the head's logits at feature
 * resolution, NHWC) and DIR/i.labels (H x W uint8, the label map at the image size), and
 * one line on stdout: `i H W h w K seconds (total, of which the decoding + backbone, the
 * head, the upsampling)` (or `i error MESSAGE`). Input handling is
 * mo-segment's: the whole image normalized at its own size, or with --resize N its shorter
 * side resized to N (Pillow bilinear) first and the labels sampled at the original size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mo/image.h"
#include "mo/segment.h"

static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int write_file(const char *dir, int i, const char *ext, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%d.%s", dir, i, ext);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *head = NULL, *out = NULL;
    int os = 16, resize = 0, first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--head") && i + 1 < argc)
            head = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--os") && i + 1 < argc)
            os = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--resize") && i + 1 < argc)
            resize = atoi(argv[++i]);
        else {
            first = i;
            break;
        }
    }
    if (!model || !head || !out || first >= argc) {
        fprintf(stderr, "usage: seg_dump --model F --head F --os S --out DIR [--resize N] IMAGE...\n");
        return 2;
    }
    mo_file *mf = NULL, *hf = NULL;
    mo_backbone *bb = NULL;
    mo_seg *seg = NULL;
    int r;
    if ((r = mo_file_open(&mf, model)) || (r = mo_file_open(&hf, head)) ||
        (r = mo_backbone_open(&bb, mf, NULL)) || (r = mo_seg_open(&seg, hf, bb, NULL))) {
        fprintf(stderr, "seg_dump: %s (%s)\n", mo_strerror(r), mo_last_error());
        return 2;
    }
    mo_seg_info info;
    mo_seg_get_info(seg, &info);
    mo_session *s = NULL;
    int cap_h = 0, cap_w = 0, failed = 0;
    for (int i = first; i < argc; i++) {
        const int idx = i - first;
        mo_image img = {0}, rs = {0};
        float *in = NULL;
        uint8_t *labels = NULL;
        double t0 = now();
        if ((r = mo_image_load(&img, argv[i])))
            goto fail;
        const mo_image *src = &img;
        if (resize > 0) {
            int w, h;
            if ((r = mo_resize_short_size(img.w, img.h, resize, &w, &h)) ||
                (r = mo_image_resize_pil(&img, w, h, &rs)))
                goto fail;
            src = &rs;
        }
        if (src->h > cap_h || src->w > cap_w) {
            /* grow the session (an app would size it once for its largest input) */
            cap_h = src->h > cap_h ? src->h : cap_h;
            cap_w = src->w > cap_w ? src->w : cap_w;
            mo_session_close(&s);
            mo_session_settings ss;
            mo_session_default_settings(&ss);
            ss.max_height = cap_h;
            ss.max_width = cap_w;
            ss.min_output_stride = os;
            if ((r = mo_seg_workspace_size(seg, cap_h, cap_w, os, &ss.workspace_bytes)) ||
                (r = mo_session_open(&s, bb, &ss)))
                goto fail;
        }
        in = malloc(sizeof(float) * 3 * (size_t)src->w * (size_t)src->h);
        labels = malloc((size_t)img.w * (size_t)img.h);
        if (!in || !labels) {
            r = MO_ENOMEM;
            goto fail;
        }
        mo_tensor t = {.data = in};
        mo_features feats;
        mo_tensor logits;
        if ((r = mo_image_to_tensor(src, 0, 0, src->w, src->h, mean, stdv, &t)) ||
            (r = mo_backbone_run(s, &t, os, &feats)))
            goto fail;
        const double t1 = now();
        if ((r = mo_seg_logits(seg, s, &feats, &logits)))
            goto fail;
        const double t2 = now();
        if ((r = mo_seg_upsample_argmax(&logits, img.h, img.w, labels, img.w, NULL)))
            goto fail;
        const double t3 = now();
        if (write_file(out, idx, "logits", logits.data,
                       sizeof(float) * (size_t)logits.h * (size_t)logits.w * (size_t)logits.c) ||
            write_file(out, idx, "labels", labels, (size_t)img.w * (size_t)img.h)) {
            fprintf(stderr, "seg_dump: cannot write to %s\n", out);
            return 2;
        }
        printf("%d %d %d %d %d %d %.3f %.3f %.3f %.3f\n", idx, img.h, img.w, logits.h, logits.w,
               logits.c, t3 - t0, t1 - t0, t2 - t1, t3 - t2);
        goto next;
    fail:
        failed++;
        printf("%d error %s: %s (%s)\n", idx, argv[i], mo_strerror(r), mo_last_error());
    next:
        fflush(stdout);
        free(in);
        free(labels);
        mo_image_free(&img);
        mo_image_free(&rs);
    }
    mo_session_close(&s);
    mo_seg_close(&seg);
    mo_backbone_close(&bb);
    mo_file_close(&hf);
    mo_file_close(&mf);
    return failed ? 1 : 0;
}
