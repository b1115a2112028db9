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
#include "mo/labels.h"

struct mo_seg_eval {
    int k, ignore;
    uint64_t *cm; /* k * k */
};

int mo_seg_eval_open(mo_seg_eval **out, int num_classes, int ignore_index)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(num_classes >= 1 && num_classes <= 255, MO_EINVAL);
    validate_input_or_ret(ignore_index >= -1 && ignore_index <= 255, MO_EINVAL);
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
    free(*ev);
    *ev = NULL;
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
    return mo_wbuf_finish(&b, path);
}

static int read_state(const char *path, int *k, int *ignore, uint64_t **cm)
{
    mo_rbuf r;
    char *file = NULL;
    int ret = mo_rbuf_open(&r, path, MO_STATE_SEG, &file);
    *cm = NULL;
    if (!ret) {
        uint32_t kk = mo_rbuf_u32(&r), ig = mo_rbuf_u32(&r);
        if (!r.err && (kk < 1 || kk > 255 || ig > 256))
            mo_rbuf_fail(&r, "bad class count or ignore label");
        if (!mo_rbuf_check_count(&r, (uint64_t)kk * kk, 8)) {
            *cm = malloc(sizeof(uint64_t) * kk * kk);
            if (!*cm)
                ret = mo_fail(MO_ENOMEM, "out of memory");
            for (size_t i = 0; !ret && i < (size_t)kk * kk; i++)
                (*cm)[i] = mo_rbuf_u64(&r);
        }
        if (!ret && !r.err && r.pos != r.size)
            mo_rbuf_fail(&r, "trailing bytes");
        if (!ret)
            ret = r.err;
        *k = (int)kk;
        *ignore = (int)ig - 1;
    }
    free(file);
    if (ret) {
        free(*cm);
        *cm = NULL;
    }
    return ret;
}

int mo_seg_eval_open_state(mo_seg_eval **out, const char *path)
{
    validate_input_or_ret(out != NULL && path != NULL, MO_EINVAL);
    *out = NULL;
    int k, ig;
    uint64_t *cm;
    int ret = read_state(path, &k, &ig, &cm);
    if (ret)
        return ret;
    if ((ret = mo_seg_eval_open(out, k, ig))) {
        free(cm);
        return ret;
    }
    memcpy((*out)->cm, cm, sizeof(uint64_t) * (size_t)k * (size_t)k);
    free(cm);
    return MO_OK;
}

int mo_seg_eval_load_state(mo_seg_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    int k, ig;
    uint64_t *cm;
    int ret = read_state(path, &k, &ig, &cm);
    if (ret)
        return ret;
    if (k != ev->k || ig != ev->ignore) {
        free(cm);
        return mo_fail(MO_EMISMATCH, "%s: %d classes and ignore label %d, not %d and %d", path, k,
                       ig, ev->k, ev->ignore);
    }
    for (size_t i = 0; i < (size_t)k * (size_t)k; i++)
        ev->cm[i] += cm[i];
    free(cm);
    return MO_OK;
}
