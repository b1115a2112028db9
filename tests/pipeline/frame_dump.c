/* frame_dump FORMAT W H IN OUT: convert a raw frame (planes back to back) to RGB8 with
 * mo_frame_to_rgb(); FORMAT is the ::mo_frame_format number. For yuv_ref.py. */
#include <stdio.h>
#include <stdlib.h>

#include "mo/pipeline.h"

int main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    const int fmt = atoi(argv[1]), w = atoi(argv[2]), h = atoi(argv[3]);
    const int yuv = fmt == MO_FRAME_NV12 || fmt == MO_FRAME_NV21 || fmt == MO_FRAME_I420;
    const int bpp = yuv ? 1 : fmt <= MO_FRAME_BGR ? 3 : 4;
    /* chroma: one interleaved plane, or (I420) a U plane then a V plane */
    const int cw = fmt == MO_FRAME_I420 ? (w + 1) / 2 : 2 * ((w + 1) / 2);
    const size_t n0 = (size_t)w * h * bpp, nc = (size_t)cw * ((h + 1) / 2);
    const size_t n1 = yuv ? (fmt == MO_FRAME_I420 ? 2 * nc : nc) : 0;
    uint8_t *in = malloc(n0 + n1 + 1), *out = malloc((size_t)w * h * 3);
    FILE *f = fopen(argv[4], "rb");
    if (!in || !out || !f || fread(in, 1, n0 + n1, f) != n0 + n1)
        return 1;
    fclose(f);
    const mo_frame fr = {.format = fmt, .width = w, .height = h,
                         .data = {in, in + n0, in + n0 + nc},
                         .stride = {(ptrdiff_t)w * bpp, cw, cw}};
    int r = mo_frame_to_rgb(&fr, out, (ptrdiff_t)w * 3);
    if (r) {
        fprintf(stderr, "%s (%s)\n", mo_strerror(r), mo_last_error());
        return 1;
    }
    f = fopen(argv[5], "wb");
    if (!f || fwrite(out, 1, (size_t)w * h * 3, f) != (size_t)w * h * 3 || fclose(f))
        return 1;
    free(in);
    free(out);
    return 0;
}
