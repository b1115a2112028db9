/* Internal helpers of libmo_detect shared by its files (not installed). */
#ifndef MO_DETECT_INTERNAL_H
#define MO_DETECT_INTERNAL_H

#include <stdint.h>
#include "mo/detect.h"

/*
 * Sort idx[0..n) so that its first k entries are the k "largest" of key[idx[.]] in
 * order: higher key first, NaN last, equal keys by lower index (so the result equals a
 * stable descending sort). k <= 0 or k > n means n. Entries after k are left in some
 * order. No allocation (partial heap sort, O(n + k log n)). Returns k.
 */
int mo_det_sort_desc(int *idx, int n, const float *key, int k);

/* mo_det_sort_desc's order of all n, for idx increasing on entry and keys that are >= +0
 * (not NaN), by a stable radix sort; tk: 2n uint32_t, ti: n ints of scratch (nms.c). */
void mo_det_sort_desc_nonneg(int *idx, int n, const float *key, uint32_t *tk, int *ti);

/* Hard NMS of candidates grouped by class, c in 1 .. K-1 at [start[c], start[c + 1]), each
 * group in (score desc, index) order: mo_nms()'s kept set and order with those labels, in
 * keep[0 .. returned); kept: start[K] ints of scratch, state: 3K (see nms.c). */
int mo_det_nms_by_class(const float *boxes, const float *scores, const int *start, int K,
                        double iou_thresh, int max_keep, int *keep, int *kept, int *state);

/* MO_OK or MO_EINVAL with a message naming the bad field. */
int mo_det_check_anchor_config(const mo_anchor_config *c);

#endif
