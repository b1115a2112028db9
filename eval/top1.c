/*
 * The inputs of mo-eval top1: the labelled image list ("file<TAB>class" lines) and the
 * predictions of mo-classify --json ([{"image": path, "top": [{"class": c}, ...]}, ...]),
 * matched by path: the list's path relative to --root against the prediction's path with
 * --root taken off, both normalised lexically ("./" and repeated '/' dropped). Sorted keys
 * and a binary search: O(n log n) for n images. Two predictions for one image are refused.
 */
#define _DEFAULT_SOURCE /* realpath, strdup */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval_internal.h"
#include "parsers_internal.h"

static void free_items(mo_top1_item *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].file);
    free(v);
}

void mo_top1_free_list(mo_top1_item *items, size_t n)
{
    free_items(items, n);
}

int mo_top1_parse_list(char *data, size_t size, const char *name, mo_top1_item **items,
                       size_t *n)
{
    validate_input_or_ret(data != NULL && name != NULL && items != NULL && n != NULL &&
                              data[size] == 0,
                          MO_EINVAL);
    *items = NULL;
    *n = 0;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    /* Every line may hold an entry: the count is checked before the array is allocated. */
    size_t entries = 0;
    for (size_t i = 0, word = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            entries += word;
            word = 0;
        } else if (data[i] != '\r') {
            word = 1;
        }
    }
    int ret = mo_eval_check_limit(name, entries, MO_EVAL_LIMIT_IMAGES);
    if (ret)
        return ret;
    mo_top1_item *v = calloc(entries + 1, sizeof(*v));
    if (!v)
        return mo_fail(MO_ENOMEM, "%s: out of memory", name);
    size_t k = 0;
    char *p = data;
    for (size_t ln = 1; ln <= lines && !ret; ln++) {
        char *e = memchr(p, '\n', (size_t)(data + size - p));
        char *next = e ? e + 1 : data + size;
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (memchr(p, 0, len)) {
            ret = mo_fail(MO_EFORMAT, "%s:%zu: a NUL byte in the line", name, ln);
            break;
        }
        while (len && p[len - 1] == '\r')
            len--;
        p[len] = 0;
        if (len) {
            char *sep = strrchr(p, '\t');
            if (!sep)
                sep = strrchr(p, ' ');
            char *end = NULL;
            long lab = sep ? strtol(sep + 1, &end, 10) : -1;
            if (!sep || sep == p || *end || sep[1] == 0 || lab < 0 || lab > 1000000) {
                ret = mo_fail(MO_EFORMAT, "%s:%zu: expected 'file<TAB>class'", name, ln);
                break;
            }
            *sep = 0;
            if (!(v[k].file = strdup(p))) {
                ret = mo_fail(MO_ENOMEM, "%s: out of memory", name);
                break;
            }
            v[k++].label = (int)lab;
        }
        p = next;
    }
    if (!ret && k > INT_MAX)
        ret = mo_fail(MO_EUNSUPPORTED, "%s: too many entries", name);
    if (ret) {
        free_items(v, k);
        return ret;
    }
    *items = v;
    *n = k;
    return MO_OK;
}

int mo_top1_read_list(const char *path, mo_top1_item **items, size_t *n)
{
    validate_input_or_ret(path != NULL && items != NULL && n != NULL, MO_EINVAL);
    *items = NULL;
    *n = 0;
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &data, &size);
    if (!ret)
        ret = mo_top1_parse_list(data, size, path, items, n);
    free(data);
    return ret;
}

void mo_top1_free_pred(mo_top1_pred *preds, size_t n)
{
    for (size_t i = 0; preds && i < n; i++)
        free(preds[i].image);
    free(preds);
}

int mo_top1_parse_pred(const char *data, size_t size, const char *name, mo_top1_pred **preds,
                       size_t *n)
{
    validate_input_or_ret(data != NULL && name != NULL && preds != NULL && n != NULL, MO_EINVAL);
    *preds = NULL;
    *n = 0;
    if (size > INT_MAX)
        return mo_fail(MO_EUNSUPPORTED, "%s: over 2 GiB of JSON", name);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return mo_fail(MO_ENOMEM, "%s: out of memory", name);
    json_object *all = json_tokener_parse_ex(tok, data, (int)size);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    /* Only white space may follow the array (json_object_from_file read one value too). */
    while (all && used < size && (data[used] == ' ' || data[used] == '\t' || data[used] == '\n' ||
                                  data[used] == '\r'))
        used++;
    if (!all || jerr != json_tokener_success || used != size ||
        !json_object_is_type(all, json_type_array)) {
        json_object_put(all);
        return mo_fail(MO_EFORMAT, "%s: not mo-classify --json output (%s)", name,
                       jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                       : !all || used != size      ? "not one JSON value"
                                                   : "not an array");
    }
    const size_t np = json_object_array_length(all);
    int ret = mo_eval_check_limit(name, np, MO_EVAL_LIMIT_IMAGES);
    mo_top1_pred *v = ret ? NULL : calloc(np + 1, sizeof(*v));
    if (!ret && !v)
        ret = mo_fail(MO_ENOMEM, "%s: out of memory", name);
    size_t k = 0;
    for (size_t j = 0; j < np && !ret; j++) {
        json_object *e = json_object_array_get_idx(all, j), *im, *top;
        if (!json_object_object_get_ex(e, "image", &im) || !json_object_is_type(im, json_type_string))
            continue; /* not a prediction of an image: matches nothing */
        mo_top1_pred *p = &v[k];
        if (!(p->image = strdup(json_object_get_string(im)))) {
            ret = mo_fail(MO_ENOMEM, "%s: out of memory", name);
            break;
        }
        p->index = j;
        k++;
        if (!json_object_object_get_ex(e, "top", &top) || !json_object_is_type(top, json_type_array))
            continue; /* n = 0: refused when an image of the list matches it */
        for (size_t q = 0; q < json_object_array_length(top) && p->n < MO_TOPK_MAX; q++) {
            json_object *c;
            if (json_object_object_get_ex(json_object_array_get_idx(top, q), "class", &c))
                p->ranked[p->n++] = json_object_get_int(c);
        }
    }
    json_object_put(all);
    if (ret) {
        mo_top1_free_pred(v, k);
        return ret;
    }
    *preds = v;
    *n = k;
    return MO_OK;
}

int mo_top1_read_pred(const char *path, mo_top1_pred **preds, size_t *n)
{
    validate_input_or_ret(path != NULL && preds != NULL && n != NULL, MO_EINVAL);
    *preds = NULL;
    *n = 0;
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 1, &data, &size);
    if (!ret)
        ret = mo_top1_parse_pred(data, size, path, preds, n);
    free(data);
    return ret;
}

/* `p` without "." components and repeated '/', "." when nothing is left. */
static char *norm_path(const char *p)
{
    char *o = malloc(strlen(p) + 2);
    if (!o)
        return NULL;
    size_t k = 0;
    if (p[0] == '/')
        o[k++] = '/';
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        const size_t len = (size_t)(e - s);
        if (len && !(len == 1 && s[0] == '.')) {
            if (k && o[k - 1] != '/')
                o[k++] = '/';
            memcpy(o + k, s, len);
            k += len;
        }
        s = e;
    }
    if (!k)
        o[k++] = '.';
    o[k] = 0;
    return o;
}

/* The part of normalised `p` under normalised `root` ("." and NULL: p itself). */
static const char *under(const char *p, const char *root)
{
    if (!root || !strcmp(root, "."))
        return p;
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return p[0] == '/' ? p + 1 : p;
    return !strncmp(p, root, n) && p[n] == '/' ? p + n + 1 : p;
}

typedef struct key_ref {
    const char *key;
    size_t pred;
} key_ref;

static int cmp_key(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->pred > y->pred) - (x->pred < y->pred);
}

int mo_top1_match(const mo_top1_item *items, size_t n, const char *root,
                  const mo_top1_pred *preds, size_t np, const char *pred_name, mo_topk_eval *t)
{
    validate_input_or_ret((items != NULL || !n) && (preds != NULL || !np) && pred_name != NULL &&
                              t != NULL,
                          MO_EINVAL);
    int ret = MO_OK;
    char *nroot = root ? norm_path(root) : NULL;
    char *rroot = root ? realpath(root, NULL) : NULL; /* for absolute prediction paths */
    char *cwd = rroot ? getcwd(NULL, 0) : NULL;       /* for relative ones, root absolute */
    char **norm = calloc(np + 1, sizeof(char *));
    key_ref *keys = malloc(sizeof(*keys) * (np + 1));
    if ((root && !nroot) || !norm || !keys)
        ret = mo_fail(MO_ENOMEM, "out of memory");
    for (size_t j = 0; j < np && !ret; j++) {
        if (!(norm[j] = norm_path(preds[j].image))) {
            ret = mo_fail(MO_ENOMEM, "out of memory");
            break;
        }
        const char *k = under(norm[j], nroot);
        if (k == norm[j] && rroot && norm[j][0] == '/')
            k = under(norm[j], rroot);
        if (k == norm[j] && rroot && cwd && norm[j][0] != '/') {
            /* "data/a.jpg" from the working folder with --root /abs/data */
            char *abs = malloc(strlen(cwd) + strlen(norm[j]) + 2), *n2 = NULL;
            if (abs) {
                sprintf(abs, "%s/%s", cwd, norm[j]);
                n2 = norm_path(abs);
                free(abs);
            }
            if (!n2) {
                ret = mo_fail(MO_ENOMEM, "out of memory");
                break;
            }
            if (under(n2, rroot) != n2) {
                free(norm[j]);
                norm[j] = n2;
                k = under(n2, rroot);
            } else {
                free(n2);
            }
        }
        keys[j] = (key_ref){ k, j };
    }
    if (!ret)
        qsort(keys, np, sizeof(*keys), cmp_key);
    for (size_t i = 0; i < n && !ret; i++) {
        char *want = norm_path(items[i].file);
        if (!want) {
            ret = mo_fail(MO_ENOMEM, "out of memory");
            break;
        }
        /* The first key equal to want (keys are sorted), then its neighbour. */
        size_t lo = 0, hi = np;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(keys[mid].key, want) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        const mo_top1_pred *p = lo < np && !strcmp(keys[lo].key, want) ? &preds[keys[lo].pred]
                                                                       : NULL;
        if (!p)
            ret = mo_fail(MO_EFORMAT, "%s: no prediction for %s (predictions are matched by the "
                          "image path relative to --root)", pred_name, items[i].file);
        else if (lo + 1 < np && !strcmp(keys[lo + 1].key, want))
            ret = mo_fail(MO_EFORMAT, "%s: entries %zu (\"%s\") and %zu (\"%s\") both predict %s",
                          pred_name, p->index, p->image, preds[keys[lo + 1].pred].index,
                          preds[keys[lo + 1].pred].image, items[i].file);
        else if (p->n < 1 || mo_topk_eval_add(t, items[i].label, p->ranked, p->n))
            ret = mo_fail(MO_EFORMAT, "%s: no classes in the prediction for %s", pred_name,
                          items[i].file);
        free(want);
    }
    for (size_t j = 0; norm && j < np; j++)
        free(norm[j]);
    free(norm);
    free(keys);
    free(nroot);
    free(rroot);
    free(cwd);
    return ret;
}
