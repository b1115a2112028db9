/*
 * preprocess_dump: decode images and run the classification preprocessing, writing raw
 * results for tools/preprocess_parity.py.
 *
 *   preprocess_dump OUTDIR RESIZE CROP IMAGE...
 *
 * For image number i (0-based, in argument order) it writes
 *   OUTDIR/i.rgb  int32 w, int32 h, then w*h*3 bytes: the decoded image
 *   OUTDIR/i.u8   CROP*CROP*3 bytes: resized and cropped levels (NHWC)
 *   OUTDIR/i.f32  CROP*CROP*3 float32: ImageNet-normalized tensor (NHWC)
 * or OUTDIR/i.err with the error message. Exit status 0 unless arguments are wrong.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/image.h"

static int write_file(const char *dir, int i, const char *ext, const void *a, size_t na,
                      const void *b, size_t nb)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%d.%s", dir, i, ext);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    int bad = fwrite(a, 1, na, f) != na;
    if (b)
        bad |= fwrite(b, 1, nb, f) != nb;
    bad |= fclose(f) != 0;
    if (bad)
        fprintf(stderr, "%s: write error\n", path);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUTDIR RESIZE CROP IMAGE...\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    const int resize = atoi(argv[2]), crop = atoi(argv[3]);
    if (resize < 1 || crop < 1) {
        fprintf(stderr, "bad RESIZE/CROP\n");
        return 2;
    }
    static const float mean[3] = { 0.485f, 0.456f, 0.406f };
    static const float std[3] = { 0.229f, 0.224f, 0.225f };
    const size_t n = (size_t)crop * crop * 3;
    float *t = malloc(n * sizeof(float));
    uint8_t *u = malloc(n);
    if (!t || !u)
        return 1;
    int failures = 0;
    for (int i = 4; i < argc; i++) {
        const int k = i - 4;
        mo_image img;
        int err = mo_image_load(&img, argv[i]);
        if (!err) {
            int32_t hdr[2] = { img.w, img.h };
            failures += write_file(dir, k, "rgb", hdr, sizeof(hdr), img.data,
                                   (size_t)img.w * img.h * 3);
            /* Levels: mean 0, std 1 gives v / 255.0f exactly, v = round(x * 255). */
            mo_tensor out = { .data = t };
            err = mo_preprocess_classify(&img, resize, crop, NULL, NULL, &out);
            if (!err) {
                for (size_t j = 0; j < n; j++)
                    u[j] = (uint8_t)lrintf(t[j] * 255.0f);
                failures += write_file(dir, k, "u8", u, n, NULL, 0);
                out = (mo_tensor){ .data = t };
                err = mo_preprocess_classify(&img, resize, crop, mean, std, &out);
            }
            if (!err)
                failures += write_file(dir, k, "f32", t, n * sizeof(float), NULL, 0);
        }
        if (err) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s: %s\n", mo_strerror(err), mo_last_error());
            failures += write_file(dir, k, "err", msg, strlen(msg), NULL, 0);
        }
        mo_image_free(&img);
    }
    free(t);
    free(u);
    return failures ? 1 : 0;
}
