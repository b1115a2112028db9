/* Fuzz target: mo-eval state files (COCO, VOC, segmentation), one or two: a second state
 * starts at the second "MOEVAL" magic. The first is opened, the second merged into it, the
 * result accumulated or measured. The trailing CRC-32 of each is recomputed here, so that
 * mutations reach the parsers rather than the checksum. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "mo/eval.h"
#include "parsers_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *with_crc(const uint8_t *p, size_t n)
{
    uint8_t *s = malloc(n ? n : 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    if (n >= 4) {
        uint32_t c = (uint32_t)crc32(0L, s, (uInt)(n - 4));
        for (int i = 0; i < 4; i++)
            s[n - 4 + (size_t)i] = (uint8_t)(c >> (8 * i));
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 24))
        return 0;
    size_t split = size;
    for (size_t i = 1; i + 6 <= size; i++)
        if (!memcmp(data + i, "MOEVAL", 6)) {
            split = i;
            break;
        }
    uint8_t *a = with_crc(data, split), *b = split < size ? with_crc(data + split, size - split)
                                                          : NULL;
    const size_t na = split, nb = size - split;
    if (!a)
        return 0;
    mo_coco_eval *coco = NULL;
    mo_voc_eval *voc = NULL;
    mo_seg_eval *seg = NULL;
    if (!mo_coco_eval_open_state_memory(&coco, a, na, "a")) {
        if (!b || !mo_coco_eval_load_state_memory(coco, b, nb, "b"))
            if (!mo_coco_eval_accumulate(coco)) {
                double stats[MO_COCO_NUM_STATS], pr[MO_COCO_NUM_RECALL];
                mo_coco_eval_stats(coco, stats);
                mo_coco_eval_pr_curve(coco, -1, 0, pr);
                for (int k = 0; k < mo_coco_eval_num_categories(coco) && k < 100; k++)
                    mo_coco_eval_category_ap(coco, k, -1);
            }
    } else if (!mo_voc_eval_open_state_memory(&voc, a, na, "a")) {
        if ((!b || !mo_voc_eval_load_state_memory(voc, b, nb, "b")) &&
            !mo_voc_eval_accumulate(voc))
            mo_voc_eval_map(voc, 0);
    } else if (!mo_seg_eval_open_state_memory(&seg, a, na, "a")) {
        if (!b || !mo_seg_eval_load_state_memory(seg, b, nb, "b")) {
            mo_seg_metrics m;
            double iou[256], acc[256];
            mo_seg_eval_metrics(seg, &m, iou, acc);
        }
    }
    mo_coco_eval_close(&coco);
    mo_voc_eval_close(&voc);
    mo_seg_eval_close(&seg);
    free(a);
    free(b);
    return 0;
}
