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
#include <stdint.h>
#include <string.h>

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

/*
 * The order of mo_det_sort_desc (higher key first, then lower index) when idx increases on
 * entry and every key is >= +0 (probabilities), by a stable LSD radix sort on the float bits,
 * which order such floats as unsigned integers: 4 passes of 8 bits over n, where the heap
 * sort's branchy compares took 1.1 ms for SSDLite320's ~12 000 candidates at score 0.001.
 * idx[0 .. n) is sorted in place (positions keep their order among equal keys); tk holds
 * 2n values (the keys of two buffers), ti n.
 */
void mo_det_sort_desc_nonneg(int *idx, int n, const float *key, uint32_t *tk, int *ti)
{
    if (n <= 1)
        return;
    uint32_t *kb = tk;
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &key[idx[i]], sizeof(u));
        kb[i] = ~u; /* ascending ~bits = descending key */
    }
    /* each pass moves keys with their indices from one buffer pair to the other */
    uint32_t *k0 = kb, *k1 = kb + n;
    int *i0 = idx, *i1 = ti;
    for (int shift = 0; shift < 32; shift += 8) {
        int count[257] = {0};
        for (int i = 0; i < n; i++)
            count[((k0[i] >> shift) & 255u) + 1]++;
        if (count[((k0[0] >> shift) & 255u) + 1] == n)
            continue; /* one digit value: the pass would not move anything */
        for (int d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (int i = 0; i < n; i++) {
            const int at = count[(k0[i] >> shift) & 255u]++;
            k1[at] = k0[i];
            i1[at] = i0[i];
        }
        uint32_t *kt = k0;
        k0 = k1, k1 = kt;
        int *it = i0;
        i0 = i1, i1 = it;
    }
    if (i0 != idx)
        memcpy(idx, i0, (size_t)n * sizeof(int));
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

/* Min-heap of classes by their next candidate (pos[c]) in before() order. */
static void class_sift(int *h, int n, int i, const int *pos, const float *key)
{
    const int v = h[i];
    for (;;) {
        int ch = 2 * i + 1;
        if (ch >= n)
            break;
        if (ch + 1 < n && before(key, pos[h[ch + 1]], pos[h[ch]]))
            ch++;
        if (!before(key, pos[h[ch]], pos[v]))
            break;
        h[i] = h[ch];
        i = ch;
    }
    h[i] = v;
}

/*
 * Hard NMS of candidates grouped by class (class c in 1 .. K-1: [start[c], start[c + 1]),
 * each group in (score desc, index) order), with mo_nms()'s result for those labels: the
 * same greedy pass over all candidates in (score, index) order, stopped at max_keep kept,
 * but the classes' next candidates are merged by a heap and each one is tested only
 * against the kept boxes of its own class, the only ones that can suppress it (mo_nms
 * scans every kept box: 1.2 ms of 2.7 at score 0.001 on SSDLite320). The kept boxes of
 * class c collect in kept[start[c] ..]; keep gets the answer, best first; state holds 3K
 * ints. Returns the number kept.
 */
int mo_det_nms_by_class(const float *boxes, const float *scores, const int *start, int K,
                        double iou_thresh, int max_keep, int *keep, int *kept, int *state)
{
    int *pos = state, *nk = state + K, *heap = state + 2 * K;
    int nh = 0;
    for (int c = 1; c < K; c++) {
        pos[c] = start[c];
        nk[c] = 0;
        if (start[c] < start[c + 1])
            heap[nh++] = c;
    }
    for (int i = nh / 2 - 1; i >= 0; i--)
        class_sift(heap, nh, i, pos, scores);
    if (max_keep <= 0)
        max_keep = start[K];
    int out = 0;
    while (nh > 0 && out < max_keep) {
        const int c = heap[0], j = pos[c];
        const float *bj = boxes + 4 * (size_t)j;
        const float aj = area_tv(bj);
        const int *kc = kept + start[c];
        int suppressed = 0;
        for (int q = 0; q < nk[c]; q++) {
            const float *bi = boxes + 4 * (size_t)kc[q];
            /* torchvision: ovr = inter / (iarea + areas[j] - inter), i the kept box */
            if ((double)iou_tv(bi, area_tv(bi), bj, aj) > iou_thresh) {
                suppressed = 1;
                break;
            }
        }
        if (!suppressed) {
            kept[start[c] + nk[c]++] = j;
            keep[out++] = j;
        }
        if (++pos[c] == start[c + 1])
            heap[0] = heap[--nh];
        if (nh > 0)
            class_sift(heap, nh, 0, pos, scores);
    }
    return out;
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
