/* Fuzz target: a VOC annotation XML (Annotations/<id>.xml), as the ground truth of a
 * one-image set, then evaluated without detections. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mo/eval.h"
#include "parsers_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char set[] = "im1\n";
    mo_voc_eval *ev = NULL;
    if (!mo_voc_eval_open_memory(&ev, set, strlen(set), (const char *)data, size, "im1.xml") &&
        !mo_voc_eval_evaluate(ev, 0.5, 0, 1, NULL, NULL))
        mo_voc_eval_accumulate(ev);
    mo_voc_eval_close(&ev);
    return 0;
}
