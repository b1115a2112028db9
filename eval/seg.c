/*
 * Semantic segmentation: one confusion matrix over the whole set (rows = ground truth,
 * columns = prediction), ground truth pixels equal to the ignore label not counted.
 * IoU_c = diag / (row + col - diag); mIoU = mean over the classes whose union is not
 * empty; pixel accuracy = trace / total; mean class accuracy over classes with ground
 * truth. Means follow np.nanmean (NaN as 0 in numpy's pairwise sum over all classes,
 * divided by the number of non-NaN values).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "parsers_internal.h"
#include "mo/labels.h"

struct mo_seg_eval {
    int k, ignore;
    uint64_t *cm; /* k * k */
    /* The image list (mo_seg_eval_set_images): its digest, size and which images the matrix
     * counts, one bit each, so that a merge refuses overlapping and missing shards. */
    uint64_t digest;
    int num_images;
    uint8_t *covered; /* (num_images + 7) / 8 */
};

int mo_seg_eval_open(mo_seg_eval **out, int num_classes, int ignore_index)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(num_classes >= 1 && num_classes <= 255, MO_EINVAL);
    validate_input_or_ret(ignore_index >= -1 && ignore_index <= 255, MO_EINVAL);
    int ret = mo_eval_check_limit("segmentation", (uint64_t)num_classes,
                                  MO_EVAL_LIMIT_CATEGORIES);
    if (ret)
        return ret;
    mo_seg_eval *ev = calloc(1, sizeof(*ev));
    if (!ev || !(ev->cm = calloc((size_t)num_classes * (size_t)num_classes, sizeof(uint64_t)))) {
        free(ev);
        return mo_fail(MO_ENOMEM, "out of memory");
    }
    ev->k = num_classes;
    ev->ignore = ignore_index;
    *out = ev;
    return MO_OK;
}

void mo_seg_eval_close(mo_seg_eval **ev)
{
    if (!ev || !*ev)
        return;
    free((*ev)->cm);
    free((*ev)->covered);
    free(*ev);
    *ev = NULL;
}

int mo_seg_eval_set_images(mo_seg_eval *ev, const char *const *ids, int n, int shard,
                           int num_shards)
{
    validate_input_or_ret(ev != NULL && ids != NULL && n >= 1 && num_shards >= 1 &&
                              shard >= 0 && shard < num_shards,
                          MO_EINVAL);
    int ret = mo_eval_check_limit("image list", (uint64_t)n, MO_EVAL_LIMIT_IMAGES);
    if (ret)
        return ret;
    uint64_t h = mo_eval_fnv(14695981039346656037ull, &n, sizeof(n));
    for (int i = 0; i < n; i++) {
        validate_input_or_ret(ids[i] != NULL, MO_EINVAL);
        h = mo_eval_fnv(h, ids[i], strlen(ids[i]) + 1);
    }
    uint8_t *cov = calloc(((size_t)n + 7) / 8, 1);
    if (!cov)
        return mo_fail(MO_ENOMEM, "out of memory");
    for (int i = shard; i < n; i += num_shards)
        cov[i / 8] |= (uint8_t)(1u << (i % 8));
    free(ev->covered);
    ev->covered = cov;
    ev->digest = h;
    ev->num_images = n;
    return MO_OK;
}

int mo_seg_eval_num_classes(const mo_seg_eval *ev)
{
    return ev ? ev->k : 0;
}

const uint64_t *mo_seg_eval_confusion(const mo_seg_eval *ev)
{
    return ev ? ev->cm : NULL;
}

int mo_seg_eval_add(mo_seg_eval *ev, const uint8_t *gt, const uint8_t *pred, size_t n, int width,
                    const char *name)
{
    validate_input_or_ret(ev != NULL && ((gt != NULL && pred != NULL) || n == 0), MO_EINVAL);
    if (!name)
        name = "<labels>";
    const int k = ev->k, ig = ev->ignore;
    /* Check first, so that a refused pair counts nothing. */
    for (size_t i = 0; i < n; i++) {
        const int g = gt[i], p = pred[i];
        if (g == ig)
            continue;
        if (g >= k || p >= k) {
            const int w = width > 0 ? width : 0;
            const size_t x = w ? i % (size_t)w : i, y = w ? i / (size_t)w : 0;
            if (g >= k)
                return mo_fail(MO_EFORMAT,
                               "%s: pixel (%zu, %zu): ground truth label %d is neither a class "
                               "(0..%d) nor the ignore label %d",
                               name, x, y, g, k - 1, ig);
            return mo_fail(MO_EFORMAT, "%s: pixel (%zu, %zu): predicted label %d is not a class "
                           "(0..%d)", name, x, y, p, k - 1);
        }
    }
    uint64_t *cm = ev->cm;
    for (size_t i = 0; i < n; i++)
        if (gt[i] != ig)
            cm[(size_t)gt[i] * (size_t)k + pred[i]]++;
    return MO_OK;
}

int mo_seg_eval_add_files(mo_seg_eval *ev, const char *gt_png, const char *pred_png)
{
    validate_input_or_ret(ev != NULL && gt_png != NULL && pred_png != NULL, MO_EINVAL);
    mo_labelmap g = { 0 }, p = { 0 };
    int ret = mo_labelmap_load_png(&g, gt_png, NULL);
    if (!ret)
        ret = mo_labelmap_load_png(&p, pred_png, NULL);
    if (!ret && (g.w != p.w || g.h != p.h))
        ret = mo_fail(MO_EFORMAT, "%s is %dx%d but %s is %dx%d", pred_png, p.w, p.h, gt_png, g.w,
                      g.h);
    if (!ret)
        ret = mo_seg_eval_add(ev, g.data, p.data, (size_t)g.w * (size_t)g.h, g.w, pred_png);
    mo_labelmap_free(&g);
    mo_labelmap_free(&p);
    return ret;
}

/* np.nanmean of v[0..n): NaN as 0 in the pairwise sum, divided by the non-NaN count. */
static double nanmean(const double *v, int n, int *count)
{
    double z[256];
    int c = 0;
    for (int i = 0; i < n; i++) {
        z[i] = isnan(v[i]) ? 0.0 : v[i];
        c += !isnan(v[i]);
    }
    if (count)
        *count = c;
    return c ? mo_eval_pairwise_sum(z, (size_t)n) / c : NAN;
}

int mo_seg_eval_metrics(const mo_seg_eval *ev, mo_seg_metrics *out, double *iou, double *acc)
{
    validate_input_or_ret(ev != NULL && out != NULL, MO_EINVAL);
    for (int i = 0; i < ev->num_images; i++)
        if (!(ev->covered[i / 8] >> (i % 8) & 1))
            return mo_fail(MO_EINVAL, "image %d of the %d of the list is in no merged state "
                           "(a shard is missing?)", i, ev->num_images);
    const int k = ev->k;
    double ious[256] = { 0 }, accs[256] = { 0 };
    uint64_t total = 0, correct = 0;
    for (int c = 0; c < k; c++) {
        uint64_t row = 0, col = 0, tp = ev->cm[(size_t)c * k + c];
        for (int j = 0; j < k; j++) {
            row += ev->cm[(size_t)c * k + j];
            col += ev->cm[(size_t)j * k + c];
        }
        total += row;
        correct += tp;
        uint64_t uni = row + col - tp;
        ious[c] = uni ? (double)tp / (double)uni : NAN;
        accs[c] = row ? (double)tp / (double)row : NAN;
    }
    memset(out, 0, sizeof(*out));
    out->miou = nanmean(ious, k, &out->num_present);
    out->mean_class_acc = nanmean(accs, k, NULL);
    out->pixel_acc = total ? (double)correct / (double)total : NAN;
    out->pixels = total;
    if (iou)
        memcpy(iou, ious, sizeof(double) * (size_t)k);
    if (acc)
        memcpy(acc, accs, sizeof(double) * (size_t)k);
    return MO_OK;
}

int mo_seg_eval_save_state(const mo_seg_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    mo_wbuf b = { 0 };
    mo_wbuf_header(&b, MO_STATE_SEG);
    mo_wbuf_u32(&b, (uint32_t)ev->k);
    mo_wbuf_u32(&b, (uint32_t)(ev->ignore + 1));
    for (size_t i = 0; i < (size_t)ev->k * (size_t)ev->k; i++)
        mo_wbuf_u64(&b, ev->cm[i]);
    mo_wbuf_u64(&b, ev->digest);
    mo_wbuf_u32(&b, (uint32_t)ev->num_images);
    mo_wbuf_put(&b, ev->covered, ((size_t)ev->num_images + 7) / 8);
    return mo_wbuf_finish(&b, path);
}

typedef struct seg_state {
    int k, ignore, num_images;
    uint64_t *cm, digest;
    uint8_t *covered;
} seg_state;

static void state_free(seg_state *st)
{
    free(st->cm);
    free(st->covered);
    memset(st, 0, sizeof(*st));
}

static int read_state(const uint8_t *data, size_t size, const char *path, seg_state *st)
{
    mo_rbuf r;
    memset(st, 0, sizeof(*st));
    int ret = mo_rbuf_open_memory(&r, data, size, path, MO_STATE_SEG);
    if (!ret) {
        uint32_t kk = mo_rbuf_u32(&r), ig = mo_rbuf_u32(&r);
        if (!r.err && (kk < 1 || kk > 255 || ig > 256))
            mo_rbuf_fail(&r, "bad class count or ignore label");
        if (!mo_rbuf_check_count(&r, (uint64_t)kk * kk, 8)) {
            st->cm = malloc(sizeof(uint64_t) * kk * kk);
            if (!st->cm)
                ret = mo_fail(MO_ENOMEM, "out of memory");
            for (size_t i = 0; !ret && i < (size_t)kk * kk; i++)
                st->cm[i] = mo_rbuf_u64(&r);
        }
        st->digest = mo_rbuf_u64(&r);
        uint32_t ni = mo_rbuf_u32(&r);
        if (!ret && !r.err && (ni > INT32_MAX - 7 ||
                               (ret = mo_eval_check_limit(path, ni, MO_EVAL_LIMIT_IMAGES))))
            ret = ret ? ret : mo_rbuf_fail(&r, "bad image count");
        const size_t nb = ((size_t)ni + 7) / 8;
        const uint8_t *cov = ret ? NULL : mo_rbuf_bytes(&r, nb);
        if (cov && nb) {
            if (!(st->covered = malloc(nb)))
                ret = mo_fail(MO_ENOMEM, "out of memory");
            else
                memcpy(st->covered, cov, nb);
            if (!ret && ni % 8 && cov[nb - 1] >> (ni % 8))
                mo_rbuf_fail(&r, "bad image coverage");
        }
        if (!ret && !r.err && r.pos != r.size)
            mo_rbuf_fail(&r, "trailing bytes");
        if (!ret)
            ret = r.err;
        if (!ret) { /* checked above: kk <= 255, ig <= 256, ni <= INT32_MAX - 7 */
            st->k = (int)kk;
            st->ignore = (int)ig - 1;
            st->num_images = (int)ni;
        }
    }
    if (ret)
        state_free(st);
    return ret;
}

int mo_seg_eval_open_state_memory(mo_seg_eval **out, const uint8_t *data, size_t size,
                                  const char *path)
{
    validate_input_or_ret(out != NULL && path != NULL && (data != NULL || !size), MO_EINVAL);
    *out = NULL;
    seg_state st;
    int ret = read_state(data, size, path, &st);
    if (ret)
        return ret;
    if ((ret = mo_seg_eval_open(out, st.k, st.ignore))) {
        state_free(&st);
        return ret;
    }
    memcpy((*out)->cm, st.cm, sizeof(uint64_t) * (size_t)st.k * (size_t)st.k);
    (*out)->digest = st.digest;
    (*out)->num_images = st.num_images;
    (*out)->covered = st.covered;
    st.covered = NULL;
    state_free(&st);
    return MO_OK;
}

int mo_seg_eval_load_state_memory(mo_seg_eval *ev, const uint8_t *data, size_t size,
                                  const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL && (data != NULL || !size), MO_EINVAL);
    seg_state st;
    int ret = read_state(data, size, path, &st);
    if (ret)
        return ret;
    if (st.k != ev->k || st.ignore != ev->ignore)
        ret = mo_fail(MO_EMISMATCH, "%s: %d classes and ignore label %d, not %d and %d", path,
                      st.k, st.ignore, ev->k, ev->ignore);
    else if (st.num_images != ev->num_images || st.digest != ev->digest)
        ret = mo_fail(MO_EMISMATCH, "%s: evaluated on another image list (%d images) than the "
                      "states merged so far (%d images)", path, st.num_images, ev->num_images);
    for (int i = 0; !ret && i < ev->num_images; i++)
        if (ev->covered[i / 8] & st.covered[i / 8] & (1u << (i % 8)))
            ret = mo_fail(MO_EMISMATCH, "%s: image %d of the list is already counted "
                          "(overlapping shards, or the same state twice)", path, i);
    if (!ret) {
        for (size_t i = 0; i < (size_t)ev->k * (size_t)ev->k; i++)
            ev->cm[i] += st.cm[i];
        for (size_t i = 0; i < ((size_t)ev->num_images + 7) / 8; i++)
            ev->covered[i] |= st.covered[i];
    }
    state_free(&st);
    return ret;
}

int mo_seg_eval_open_state(mo_seg_eval **out, const char *path)
{
    validate_input_or_ret(out != NULL && path != NULL, MO_EINVAL);
    *out = NULL;
    char *file;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &file, &size);
    if (!ret)
        ret = mo_seg_eval_open_state_memory(out, (const uint8_t *)file, size, path);
    free(file);
    return ret;
}

int mo_seg_eval_load_state(mo_seg_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    char *file;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &file, &size);
    if (!ret)
        ret = mo_seg_eval_load_state_memory(ev, (const uint8_t *)file, size, path);
    free(file);
    return ret;
}
