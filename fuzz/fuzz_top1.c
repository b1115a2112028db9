/* Fuzz target: mo-eval top1 --list ("file<TAB>class" lines), then (after the first NUL byte)
 * --pred (mo-classify --json output), matched with and without a --root. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mo/eval.h"
#include "parsers_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t list_size = nul ? (size_t)(nul - data) : size;
    char *list = malloc(list_size + 1);
    if (!list)
        return 0;
    memcpy(list, data, list_size);
    list[list_size] = 0;
    mo_top1_item *items = NULL;
    size_t n = 0;
    if (!mo_top1_parse_list(list, list_size, "list.txt", &items, &n) && nul) {
        mo_top1_pred *preds = NULL;
        size_t np = 0;
        if (!mo_top1_parse_pred((const char *)nul + 1, size - list_size - 1, "pred.json", &preds,
                                &np)) {
            mo_topk_eval t = { 0 };
            mo_top1_match(items, n, NULL, preds, np, "pred.json", &t);
            mo_topk_eval u = { 0 };
            mo_top1_match(items, n, "data/./val", preds, np, "pred.json", &u);
            mo_top1_free_pred(preds, np);
        }
    }
    mo_top1_free_list(items, n);
    free(list);
    return 0;
}
