/* Fuzz target: any bytes as a label PNG (io/labels.c), read with the VOC palette (RGB
 * pixels mapped back to labels) and with a palette whose colours collide (first match
 * wins); a decoded map is checked against its size and drawn over an image. Seeds:
 * fuzz/corpus/labels (fuzz/make_label_seeds.py). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mo/draw.h"
#include "mo/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use(const mo_labelmap *m, const mo_palette *pal)
{
    if (!m->data || m->w < 1 || m->h < 1)
        abort(); /* a success must give a map */
    if ((size_t)m->w * (size_t)m->h > 1u << 20)
        return; /* keep each run fast */
    mo_image img = { 0 };
    if (mo_image_alloc(&img, m->w, m->h))
        return;
    memset(img.data, 90, (size_t)m->w * m->h * 3);
    if (mo_draw_labels(&img, m, pal, 0.5f, 0))
        abort();
    mo_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mo_palette voc, few;
    static int ready;
    if (!ready) {
        mo_palette_voc(&voc);
        for (int i = 0; i < 256; i++) /* 16 colours, each repeated */
            few.rgb[i][0] = few.rgb[i][1] = few.rgb[i][2] = (uint8_t)((i % 16) * 17);
        ready = 1;
    }
    mo_labelmap m;
    if (!mo_labelmap_load_png_memory(&m, data, size, NULL)) {
        use(&m, &voc);
        mo_labelmap_free(&m);
    }
    if (!mo_labelmap_load_png_memory(&m, data, size, &few)) {
        use(&m, &few);
        mo_labelmap_free(&m);
    }
    return 0;
}
