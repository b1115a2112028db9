/* Classification top-k accuracy counters. */
#include "eval_internal.h"

int mo_topk_eval_add(mo_topk_eval *ev, int label, const int *ranked, int n)
{
    validate_input_or_ret(ev != NULL && ranked != NULL && n >= 1, MO_EINVAL);
    int hit = MO_TOPK_MAX;
    for (int i = 0; i < n && i < MO_TOPK_MAX; i++)
        if (ranked[i] == label) {
            hit = i;
            break;
        }
    ev->total++;
    for (int k = hit; k < MO_TOPK_MAX; k++)
        ev->correct[k]++;
    return MO_OK;
}

double mo_topk_eval_accuracy(const mo_topk_eval *ev, int k)
{
    if (!ev || !ev->total || k < 1 || k > MO_TOPK_MAX)
        return -1;
    return (double)ev->correct[k - 1] / (double)ev->total;
}

void mo_topk_eval_merge(mo_topk_eval *ev, const mo_topk_eval *other)
{
    if (!ev || !other)
        return;
    ev->total += other->total;
    for (int k = 0; k < MO_TOPK_MAX; k++)
        ev->correct[k] += other->correct[k];
}
