/* Fuzz target: COCO ground truth JSON, then (after the first NUL byte) a COCO results JSON
 * read into it, evaluated and accumulated when both are accepted. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mo/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t gt_size = nul ? (size_t)(nul - data) : size;
    mo_coco_eval *ev = NULL;
    if (mo_coco_eval_open_memory(&ev, (const char *)data, gt_size, "gt"))
        return 0;
    if (nul && mo_coco_eval_num_images(ev) <= 1000 &&
        !mo_coco_eval_load_results_memory(ev, (const char *)nul + 1, size - gt_size - 1, "res") &&
        !mo_coco_eval_evaluate(ev, 0, 1, NULL, NULL) && !mo_coco_eval_accumulate(ev)) {
        double stats[MO_COCO_NUM_STATS];
        mo_coco_eval_stats(ev, stats);
    }
    mo_coco_eval_close(&ev);
    return 0;
}
