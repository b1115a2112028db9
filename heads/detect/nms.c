/*
 * Non-maximum suppression: hard (torchvision's nms / batched_nms) and Gaussian soft-NMS.
 * Pure functions on caller arrays; no allocation.
 *
 * Hard NMS keeps the kept boxes at the front of `keep` and tests each next box (in
 * score order) against them. That is the same greedy rule as torchvision's kernel (a box
 * is only ever suppressed by a kept box), and lets `max_keep` stop early, since the
 * fate of a box depends only on higher-scoring ones.
 */
#include <math.h>

#include "mo_internal/errors.h"
#include "detect_internal.h"

/* a before b: higher key first, NaN last, then lower index. A total order, so an
 * unstable sort with it is deterministic and equals a stable sort by key. */
static inline int before(const float *key, int a, int b)
{
    const float ka = key[a], kb = key[b];
    if (ka > kb)
        return 1;
    if (ka < kb)
        return 0;
    if (ka == kb)
        return a < b;
    /* at least one NaN */
    if (isnan(ka) != isnan(kb))
        return isnan(kb);
    return a < b;
}

/* Max-heap with respect to before(): the root comes first. */
static void sift_down(int *h, int n, int i, const float *key)
{
    const int v = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(key, h[c + 1], h[c]))
            c++;
        if (!before(key, h[c], v))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

int mo_det_sort_desc(int *idx, int n, const float *key, int k)
{
    if (n <= 0)
        return 0;
    if (k <= 0 || k > n)
        k = n;
    /* Partial heap sort: heapify (O(n)), then pop k roots to the back of the array and
     * move them to the front. */
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down(idx, n, i, key);
    int end = n;
    for (int t = 0; t < k; t++) {
        const int top = idx[0];
        idx[0] = idx[--end];
        idx[end] = top;
        if (end > 0)
            sift_down(idx, end, 0, key);
    }
    /* The k best are now idx[n-1] (best), idx[n-2], ..., idx[n-k]. Reversing the array
     * (only as far as needed: the first k positions, or the whole array when 2k > n)
     * puts them at idx[0..k) in order. */
    for (int a = 0, b = n - 1; a < k && a < b; a++, b--) {
        const int t = idx[a];
        idx[a] = idx[b];
        idx[b] = t;
    }
    return k;
}

/* IoU as torchvision's CPU kernel computes it, in float. */
static inline float iou_tv(const float *a, float area_a, const float *b, float area_b)
{
    const float xx1 = a[0] > b[0] ? a[0] : b[0];
    const float yy1 = a[1] > b[1] ? a[1] : b[1];
    const float xx2 = a[2] < b[2] ? a[2] : b[2];
    const float yy2 = a[3] < b[3] ? a[3] : b[3];
    const float dw = xx2 - xx1, dh = yy2 - yy1;
    const float w = dw > 0.0f ? dw : 0.0f;
    const float h = dh > 0.0f ? dh : 0.0f;
    const float inter = w * h;
    return inter / (area_a + area_b - inter);
}

static inline float area_tv(const float *b)
{
    return (b[2] - b[0]) * (b[3] - b[1]);
}

MO_API int mo_nms(const float *boxes, const float *scores, const int *labels, int n,
                  double iou_thresh, int max_keep, int *keep, int *n_keep)
{
    validate_input_or_ret(n_keep, MO_EINVAL);
    *n_keep = 0;
    validate_input_or_ret(n >= 0, MO_EINVAL);
    if (n == 0)
        return MO_OK;
    validate_input_or_ret(boxes && scores && keep, MO_EINVAL);
    for (int i = 0; i < n; i++)
        keep[i] = i;
    mo_det_sort_desc(keep, n, scores, n);
    if (max_keep <= 0 || max_keep > n)
        max_keep = n;
    int m = 0;
    for (int t = 0; t < n && m < max_keep; t++) {
        const int j = keep[t];
        const float *bj = boxes + 4 * (size_t)j;
        const float aj = area_tv(bj);
        int suppressed = 0;
        for (int q = 0; q < m; q++) {
            const int i = keep[q];
            if (labels && labels[i] != labels[j])
                continue;
            const float *bi = boxes + 4 * (size_t)i;
            /* torchvision: ovr = inter / (iarea + areas[j] - inter), i the kept box */
            if ((double)iou_tv(bi, area_tv(bi), bj, aj) > iou_thresh) {
                suppressed = 1;
                break;
            }
        }
        if (!suppressed)
            keep[m++] = j; /* m <= t: never overwrites an unread entry */
    }
    *n_keep = m;
    return MO_OK;
}

MO_API int mo_soft_nms(const float *boxes, float *scores, const int *labels, int n,
                       double sigma, double score_thresh, int max_keep, int *keep,
                       int *n_keep)
{
    validate_input_or_ret(n_keep, MO_EINVAL);
    *n_keep = 0;
    validate_input_or_ret(n >= 0 && sigma > 0.0, MO_EINVAL);
    if (n == 0)
        return MO_OK;
    validate_input_or_ret(boxes && scores && keep, MO_EINVAL);
    const float thr = (float)score_thresh;
    /* keep[0..k) kept, keep[k..m) still candidates (in input order), rest dropped */
    int m = 0;
    for (int i = 0; i < n; i++)
        if (scores[i] > thr)
            keep[m++] = i;
    if (max_keep <= 0 || max_keep > n)
        max_keep = n;
    int k = 0;
    while (k < m && k < max_keep) {
        /* best remaining: highest score, ties to the lower index */
        int best = k;
        for (int t = k + 1; t < m; t++)
            if (before(scores, keep[t], keep[best]))
                best = t;
        const int b = keep[best];
        keep[best] = keep[k]; /* order among candidates does not matter: ties use the index */
        keep[k++] = b;
        const float *bb = boxes + 4 * (size_t)b;
        const float ab = area_tv(bb);
        int w = k;
        for (int t = k; t < m; t++) {
            const int j = keep[t];
            if (!labels || labels[j] == labels[b]) {
                const float *bj = boxes + 4 * (size_t)j;
                const double iou = iou_tv(bb, ab, bj, area_tv(bj));
                if (iou > 0.0)
                    scores[j] = (float)(scores[j] * exp(-(iou * iou) / sigma));
            }
            if (scores[j] > thr)
                keep[w++] = j;
        }
        m = w;
    }
    *n_keep = k;
    return MO_OK;
}
