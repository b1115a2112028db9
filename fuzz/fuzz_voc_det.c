/* Fuzz target: a VOC ImageSets list, then (after the first NUL byte) a detection file
 * (comp4_det_*.txt) of class "cat" read against it; evaluated and accumulated when both are
 * accepted, with one cat box as the ground truth of the first image. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mo/eval.h"
#include "parsers_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char xml[] =
    "<annotation><object><name>cat</name><difficult>0</difficult><bndbox><xmin>1</xmin>"
    "<ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object><object><name>cat</name>"
    "<difficult>1</difficult><bndbox><xmin>50</xmin><ymin>50</ymin><xmax>60</xmax>"
    "<ymax>70</ymax></bndbox></object></annotation>";

/* A NUL-terminated copy (the parsers cut the text in place). */
static char *copy(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t set_size = nul ? (size_t)(nul - data) : size;
    char *set = copy(data, set_size);
    char *det = nul ? copy(nul + 1, size - set_size - 1) : NULL;
    mo_voc_eval *ev = NULL;
    if (set && !mo_voc_eval_open_memory(&ev, set, set_size, xml, sizeof(xml) - 1, "val.txt") &&
        det && mo_voc_eval_num_images(ev) <= 1000 &&
        !mo_voc_eval_load_detections_memory(ev, 7 /* cat */, det, size - set_size - 1,
                                            "comp4_det_val_cat.txt") &&
        !mo_voc_eval_evaluate(ev, 0.5, 0, 1, NULL, NULL) && !mo_voc_eval_accumulate(ev)) {
        mo_voc_eval_map(ev, 0);
        mo_voc_eval_map(ev, 1);
    }
    mo_voc_eval_close(&ev);
    free(set);
    free(det);
    return 0;
}
