/* Internal helpers of libmo_detect shared by its files (not installed). */
#ifndef MO_DETECT_INTERNAL_H
#define MO_DETECT_INTERNAL_H

#include "mo/detect.h"

/*
 * Sort idx[0..n) so that its first k entries are the k "largest" of key[idx[.]] in
 * order: higher key first, NaN last, equal keys by lower index (so the result equals a
 * stable descending sort). k <= 0 or k > n means n. Entries after k are left in some
 * order. No allocation (partial heap sort, O(n + k log n)). Returns k.
 */
int mo_det_sort_desc(int *idx, int n, const float *key, int k);

/* MO_OK or MO_EINVAL with a message naming the bad field. */
int mo_det_check_anchor_config(const mo_anchor_config *c);

#endif
