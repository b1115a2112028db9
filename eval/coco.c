/*
 * COCO box AP with the semantics of pycocotools' COCOeval (iouType "bbox"), in C.
 *
 * evaluate(): per image and category, detections sorted by score (stable) and cut to
 * the last maxDets (100); box IoU as maskApi's bbIou (crowd: the detection's area as
 * union); per area range, ground truth ignored when crowd or outside the range and
 * sorted non-ignored first (stable); greedy matching per IoU threshold in score order;
 * unmatched detections outside the area range ignored (area = w * h).
 * accumulate(): per category, area range and maxDets, the images' first maxDets
 * detections concatenated in image-id order, sorted by score (stable), cumulative TP/FP,
 * precision made monotone from the right, sampled at the 101 recall thresholds with a
 * left binary search; summary means over the values > -1 with numpy's summation order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "parsers_internal.h"

#define T_ MO_COCO_NUM_IOU
#define R_ MO_COCO_NUM_RECALL
#define A_ MO_COCO_NUM_AREAS
#define M_ MO_COCO_NUM_MAXDETS
#define MAXDET_LAST 100

enum { F_MATCH = 1, F_IGNORE = 2 };

typedef struct coco_gt {
    double bbox[4];
    double area;
    int64_t id;
    uint32_t img, cat;
    uint8_t crowd;
} coco_gt;

typedef struct coco_dt {
    double bbox[4];
    double score;
    uint32_t img, cat;
} coco_dt;

/* Matches of one (image, category): ndt detections in score order. */
typedef struct cell {
    uint32_t cat;
    uint32_t ndt;
    uint32_t npig[A_];  /* non-ignored ground truth per area range */
    uint32_t off;       /* first detection in the image's scores[] */
} cell;

/* Matches of one image: flags[(off * A_ + a * ndt ...)], see flag_at(). */
typedef struct img_rec {
    uint32_t ncells, ndet;
    cell *cells;     /* sorted by category */
    double *scores;  /* ndet */
    uint8_t *flags;  /* ndet * A_ * T_: cell c at c.off * A_ * T_, then [a][t][d] */
} img_rec;

struct mo_coco_eval {
    char *name;
    int num_images, num_cats;
    int64_t *image_ids;  /* sorted */
    char **image_files;
    int64_t *cat_ids;    /* sorted */
    char **cat_names;
    coco_gt *gt;         /* sorted by image, then category, stable */
    size_t num_gt;
    size_t *gt_start;    /* num_images + 1 */
    coco_dt *dt;
    size_t num_dt, cap_dt, ignored;
    uint64_t fingerprint;
    int from_state;
    uint8_t *evaluated;  /* per image */
    uint8_t *selected;   /* per image: evaluated and accumulated; NULL: every image */
    img_rec *recs;
    int accumulated;
    /* Only the categories that some image has (ground truth or detections) get values:
     * the others are -1 throughout, as in pycocotools, and memory stays proportional to what
     * is used rather than to the number of categories declared. */
    int *kslot;          /* num_cats: index among those categories, or -1 */
    size_t num_active;
    double *precision;   /* [T][R][num_active][A][M] */
    double *recall;      /* [T][num_active][A][M] */
    double *scores_at;   /* [T][R][num_active][A][M]: score of the detection giving precision */
    double stats[MO_COCO_NUM_STATS];
};

static double iou_thr(int t)
{
    /* np.linspace(.5, .95, 10): i * step + start, the last one exactly stop. */
    return t == T_ - 1 ? 0.95 : (double)t * ((0.95 - 0.5) / 9) + 0.5;
}

static double rec_thr(int r)
{
    return r == R_ - 1 ? 1.0 : (double)r * (1.0 / 100) + 0.0;
}

static const double area_lo[A_] = { 0, 0, 32 * 32, 96 * 96 };
static const double area_hi[A_] = { 1e10, 32 * 32, 96 * 96, 1e10 };
static const int max_dets[M_] = { 1, 10, 100 };

/* ----------------------------------------------------------------- lookups */

static int find_id(const int64_t *ids, int n, int64_t id)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id ? lo : -1;
}

typedef struct id_entry {
    int64_t id;
    const char *text;
    size_t order;
} id_entry;

static int cmp_id_entry(const void *a, const void *b)
{
    const id_entry *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Sorted, unique ids (the last entry of a repeated id gives its text, as a dict). */
static int sorted_ids(id_entry *e, size_t n, int64_t **ids, char ***texts, int *count)
{
    if (n) /* qsort's array may not be NULL, even for 0 entries (found by fuzz_eval_json) */
        qsort(e, n, sizeof(*e), cmp_id_entry);
    *ids = malloc(sizeof(**ids) * (n ? n : 1));
    *texts = calloc(n ? n : 1, sizeof(**texts));
    if (!*ids || !*texts)
        return MO_ENOMEM;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && e[i + 1].id == e[i].id)
            continue;
        (*ids)[k] = e[i].id;
        if (e[i].text && !((*texts)[k] = dup_str(e[i].text)))
            return MO_ENOMEM;
        k++;
    }
    *count = k;
    return MO_OK;
}

/* --------------------------------------------------------------- open / close */

void mo_coco_eval_close(mo_coco_eval **pev)
{
    if (!pev || !*pev)
        return;
    mo_coco_eval *ev = *pev;
    for (int i = 0; i < ev->num_images; i++) {
        if (ev->image_files)
            free(ev->image_files[i]);
        if (ev->recs)
            free(ev->recs[i].scores);
    }
    for (int k = 0; k < ev->num_cats; k++)
        if (ev->cat_names)
            free(ev->cat_names[k]);
    free(ev->image_files);
    free(ev->cat_names);
    free(ev->image_ids);
    free(ev->cat_ids);
    free(ev->gt);
    free(ev->gt_start);
    free(ev->dt);
    free(ev->evaluated);
    free(ev->recs);
    free(ev->precision);
    free(ev->recall);
    free(ev->scores_at);
    free(ev->selected);
    free(ev->kslot);
    free(ev->name);
    free(ev);
    *pev = NULL;
}

static uint64_t fingerprint(const mo_coco_eval *ev)
{
    uint64_t h = 14695981039346656037ull;
    int32_t n[2] = { ev->num_images, ev->num_cats };
    h = mo_eval_fnv(h, n, sizeof(n));
    h = mo_eval_fnv(h, ev->image_ids, sizeof(int64_t) * (size_t)ev->num_images);
    h = mo_eval_fnv(h, ev->cat_ids, sizeof(int64_t) * (size_t)ev->num_cats);
    for (size_t i = 0; i < ev->num_gt; i++) {
        const coco_gt *g = &ev->gt[i];
        h = mo_eval_fnv(h, g->bbox, sizeof(g->bbox));
        h = mo_eval_fnv(h, &g->area, sizeof(g->area));
        h = mo_eval_fnv(h, &g->id, sizeof(g->id));
        h = mo_eval_fnv(h, &g->img, sizeof(g->img));
        h = mo_eval_fnv(h, &g->cat, sizeof(g->cat));
        h = mo_eval_fnv(h, &g->crowd, 1);
    }
    return h;
}

static int alloc_common(mo_coco_eval *ev)
{
    size_t ni = (size_t)ev->num_images;
    ev->evaluated = calloc(ni ? ni : 1, 1);
    ev->recs = calloc(ni ? ni : 1, sizeof(*ev->recs));
    ev->gt_start = calloc(ni + 1, sizeof(*ev->gt_start));
    if (!ev->evaluated || !ev->recs || !ev->gt_start)
        return mo_fail(MO_ENOMEM, "%s: out of memory", ev->name);
    return MO_OK;
}

/* ------------------------------------------------------------ JSON reading */

typedef struct entry_ctx {
    mo_jp *j;
    const char *section; /* "images", "annotations", "categories", "results" */
    size_t index;
    const char *at;      /* the entry's '{' */
} entry_ctx;

static int efail(const entry_ctx *c, const char *at, const char *what, const char *key)
{
    char msg[160];
    snprintf(msg, sizeof(msg), what, key);
    return mo_jp_fail_at(c->j, at ? at : c->at, "%s[%zu]: %s", c->section, c->index, msg);
}

/* The entry is not an object: say so, or that the file ends there. */
static int not_object(const entry_ctx *c)
{
    if (mo_jp_peek(c->j) < 0)
        return mo_jp_fail_at(c->j, c->j->p, "invalid JSON: unexpected end of file");
    return efail(c, NULL, "not an object%s", "");
}

static int is_num_start(int ch)
{
    return ch == '-' || (ch >= '0' && ch <= '9');
}

static int read_num(const entry_ctx *c, const char *key, double *v)
{
    if (!is_num_start(mo_jp_peek(c->j)))
        return efail(c, c->j->p, "\"%s\" is not a number", key);
    return mo_jp_number(c->j, v);
}

static int read_id(const entry_ctx *c, const char *key, int64_t *v)
{
    const char *at = (mo_jp_peek(c->j), c->j->p);
    int is_int;
    if (!is_num_start(mo_jp_peek(c->j)) || mo_jp_int(c->j, v, &is_int) || !is_int)
        return c->j->err ? c->j->err : efail(c, at, "\"%s\" is not an integer", key);
    return 0;
}

static int read_bbox(const entry_ctx *c, double b[4])
{
    mo_jp *j = c->j;
    const char *at = (mo_jp_peek(j), j->p);
    if (mo_jp_peek(j) != '[')
        return efail(c, at, "\"%s\" is not an array of 4 numbers", "bbox");
    mo_jp_begin(j, '[');
    int n = 0;
    while (mo_jp_next(j, ']', &n)) {
        double v;
        if (n > 4 || !is_num_start(mo_jp_peek(j)))
            return efail(c, at, "\"%s\" is not an array of 4 numbers", "bbox");
        if (mo_jp_number(j, &v))
            return j->err;
        b[n - 1] = v;
    }
    if (!j->err && n != 4)
        return efail(c, at, "\"%s\" is not an array of 4 numbers", "bbox");
    return j->err;
}

static int key_is(const char *k, size_t len, const char *name)
{
    return strlen(name) == len && !memcmp(k, name, len);
}

typedef struct raw_ann {
    coco_gt g;
    int64_t img, cat;
    const char *at;
    unsigned have;
    size_t index;
} raw_ann;

enum { H_ID = 1, H_IMG = 2, H_CAT = 4, H_BBOX = 8, H_AREA = 16, H_SCORE = 32 };

typedef struct vec {
    void *v;
    size_t n, cap, unit;
} vec;

static void *vec_push(vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        void *p = realloc(v->v, cap * v->unit);
        if (!p)
            return NULL;
        v->v = p;
        v->cap = cap;
    }
    return (char *)v->v + v->unit * v->n++;
}

/* images / categories: id and a name (file_name / name). */
static int read_id_list(mo_jp *j, const char *section, const char *name_key, vec *out)
{
    entry_ctx c = { j, section, 0, NULL };
    if (mo_jp_peek(j) != '[')
        return mo_jp_fail_at(j, j->p, "\"%s\" is not an array", section);
    mo_jp_begin(j, '[');
    int n = 0;
    while (mo_jp_next(j, ']', &n)) {
        c.index = (size_t)n - 1;
        c.at = (mo_jp_peek(j), j->p);
        if (mo_jp_peek(j) != '{')
            return not_object(&c);
        id_entry *e = vec_push(out);
        if (!e)
            return j->err = mo_fail(MO_ENOMEM, "%s: out of memory", j->name);
        e->id = 0;
        e->text = NULL;
        e->order = c.index;
        int have = 0, m = 0;
        mo_jp_begin(j, '{');
        while (mo_jp_next(j, '}', &m)) {
            const char *k;
            size_t kl;
            if (mo_jp_key(j, &k, &kl))
                return j->err;
            if (key_is(k, kl, "id")) {
                if (read_id(&c, "id", &e->id))
                    return j->err;
                have = 1;
            } else if (key_is(k, kl, name_key) && mo_jp_peek(j) == '"') {
                free((char *)e->text);
                if (mo_jp_string(j, (char **)&e->text))
                    return j->err;
            } else if (mo_jp_skip(j)) {
                return j->err;
            }
        }
        if (!j->err && !have)
            return efail(&c, NULL, "missing key \"%s\"", "id");
    }
    return j->err;
}

static int read_annotations(mo_jp *j, vec *out)
{
    entry_ctx c = { j, "annotations", 0, NULL };
    if (mo_jp_peek(j) != '[')
        return mo_jp_fail_at(j, j->p, "\"annotations\" is not an array");
    mo_jp_begin(j, '[');
    int n = 0;
    while (mo_jp_next(j, ']', &n)) {
        c.index = (size_t)n - 1;
        c.at = (mo_jp_peek(j), j->p);
        if (mo_jp_peek(j) != '{')
            return not_object(&c);
        raw_ann *a = vec_push(out);
        if (!a)
            return j->err = mo_fail(MO_ENOMEM, "%s: out of memory", j->name);
        memset(a, 0, sizeof(*a));
        a->at = c.at;
        a->index = c.index;
        int m = 0;
        mo_jp_begin(j, '{');
        while (mo_jp_next(j, '}', &m)) {
            const char *k;
            size_t kl;
            if (mo_jp_key(j, &k, &kl))
                return j->err;
            if (key_is(k, kl, "id")) {
                if (read_id(&c, "id", &a->g.id))
                    return j->err;
                a->have |= H_ID;
            } else if (key_is(k, kl, "image_id")) {
                if (read_id(&c, "image_id", &a->img))
                    return j->err;
                a->have |= H_IMG;
            } else if (key_is(k, kl, "category_id")) {
                if (read_id(&c, "category_id", &a->cat))
                    return j->err;
                a->have |= H_CAT;
            } else if (key_is(k, kl, "bbox")) {
                if (read_bbox(&c, a->g.bbox))
                    return j->err;
                a->have |= H_BBOX;
            } else if (key_is(k, kl, "area")) {
                if (read_num(&c, "area", &a->g.area))
                    return j->err;
                a->have |= H_AREA;
            } else if (key_is(k, kl, "iscrowd")) {
                int64_t v;
                if (mo_jp_literal(j, "true")) {
                    a->g.crowd = 1;
                } else if (mo_jp_literal(j, "false")) {
                    a->g.crowd = 0;
                } else {
                    if (read_id(&c, "iscrowd", &v))
                        return j->err;
                    a->g.crowd = v != 0;
                }
            } else if (mo_jp_skip(j)) {
                return j->err;
            }
        }
        if (j->err)
            return j->err;
        if (!(a->have & H_IMG))
            return efail(&c, NULL, "missing key \"%s\"", "image_id");
        if (!(a->have & H_CAT))
            return efail(&c, NULL, "missing key \"%s\"", "category_id");
    }
    return j->err;
}

static void free_texts(vec *v)
{
    id_entry *e = v->v;
    for (size_t i = 0; i < v->n; i++)
        free((char *)e[i].text);
    free(v->v);
}

static int load_gt(mo_coco_eval *ev, const char *data, size_t size, const char *name)
{
    mo_jp j;
    mo_jp_init(&j, data, size, name);
    vec images = { NULL, 0, 0, sizeof(id_entry) }, cats = { NULL, 0, 0, sizeof(id_entry) };
    vec anns = { NULL, 0, 0, sizeof(raw_ann) };
    int seen = 0, ret;
    if (mo_jp_peek(&j) != '{') {
        ret = mo_jp_fail_at(&j, j.p, "the top level is not a JSON object");
        goto done;
    }
    mo_jp_begin(&j, '{');
    int n = 0;
    while (mo_jp_next(&j, '}', &n)) {
        const char *k;
        size_t kl;
        if (mo_jp_key(&j, &k, &kl))
            break;
        if (key_is(k, kl, "images")) {
            read_id_list(&j, "images", "file_name", &images);
            seen |= 1;
        } else if (key_is(k, kl, "categories")) {
            read_id_list(&j, "categories", "name", &cats);
            seen |= 2;
        } else if (key_is(k, kl, "annotations")) {
            read_annotations(&j, &anns);
            seen |= 4;
        } else {
            mo_jp_skip(&j);
        }
    }
    if ((ret = mo_jp_finish(&j)))
        goto done;
    static const char *const need[3] = { "images", "categories", "annotations" };
    for (int i = 0; i < 3; i++)
        if (!(seen & 1 << i)) {
            ret = mo_fail(MO_EFORMAT, "%s: missing array \"%s\"", name, need[i]);
            goto done;
        }
    if (images.n > INT32_MAX / 2 || cats.n > INT32_MAX / 2 || anns.n > UINT32_MAX / 2) {
        ret = mo_fail(MO_EUNSUPPORTED, "%s: too many entries", name);
        goto done;
    }
    if ((ret = mo_eval_check_limit(name, images.n, MO_EVAL_LIMIT_IMAGES)) ||
        (ret = mo_eval_check_limit(name, cats.n, MO_EVAL_LIMIT_CATEGORIES)) ||
        (ret = mo_eval_check_limit(name, anns.n, MO_EVAL_LIMIT_BOXES)))
        goto done;
    if (sorted_ids(images.v, images.n, &ev->image_ids, &ev->image_files, &ev->num_images) ||
        sorted_ids(cats.v, cats.n, &ev->cat_ids, &ev->cat_names, &ev->num_cats)) {
        ret = mo_fail(MO_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    if ((ret = alloc_common(ev)))
        goto done;

    /* Annotations in file order; those of unknown images or categories are skipped. */
    const size_t na = anns.n;
    raw_ann *ra = anns.v;
    coco_gt *tmp = malloc(sizeof(*tmp) * (na ? na : 1));
    ev->gt = malloc(sizeof(*ev->gt) * (na ? na : 1));
    size_t *cat_count = calloc((size_t)ev->num_cats + 1, sizeof(size_t));
    size_t *pos = malloc(sizeof(size_t) * ((size_t)ev->num_images + 1));
    if (!tmp || !ev->gt || !cat_count || !pos) {
        free(tmp);
        free(cat_count);
        free(pos);
        ret = mo_fail(MO_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < na && !ret; i++) {
        int ii = find_id(ev->image_ids, ev->num_images, ra[i].img);
        int kk = find_id(ev->cat_ids, ev->num_cats, ra[i].cat);
        if (ii < 0 || kk < 0)
            continue;
        entry_ctx c = { &j, "annotations", ra[i].index, ra[i].at };
        static const unsigned bits[3] = { H_ID, H_BBOX, H_AREA };
        static const char *const keys[3] = { "id", "bbox", "area" };
        for (int q = 0; q < 3 && !ret; q++)
            if (!(ra[i].have & bits[q]))
                ret = efail(&c, NULL, "missing key \"%s\"", keys[q]);
        for (int q = 0; q < 4 && !ret; q++)
            if (!isfinite(ra[i].g.bbox[q]))
                ret = efail(&c, NULL, "\"%s\" has a value that is not finite", "bbox");
        if (!ret && !isfinite(ra[i].g.area))
            ret = efail(&c, NULL, "\"%s\" is not finite", "area");
        tmp[m] = ra[i].g;
        tmp[m].img = (uint32_t)ii;
        tmp[m].cat = (uint32_t)kk;
        m++;
    }
    if (!ret) {
        /* Stable counting sorts: by category, then by image. */
        for (size_t i = 0; i < m; i++)
            cat_count[tmp[i].cat + 1]++;
        for (int k = 0; k < ev->num_cats; k++)
            cat_count[k + 1] += cat_count[k];
        for (size_t i = 0; i < m; i++)
            ev->gt[cat_count[tmp[i].cat]++] = tmp[i];
        for (size_t i = 0; i < m; i++)
            ev->gt_start[ev->gt[i].img + 1]++;
        for (int i = 0; i < ev->num_images; i++)
            ev->gt_start[i + 1] += ev->gt_start[i];
        for (int i = 0; i < ev->num_images; i++)
            pos[i] = ev->gt_start[i];
        for (size_t i = 0; i < m; i++)
            tmp[pos[ev->gt[i].img]++] = ev->gt[i];
        memcpy(ev->gt, tmp, sizeof(*tmp) * m);
        ev->num_gt = m;
    }
    free(tmp);
    free(cat_count);
    free(pos);
done:
    free_texts(&images);
    free_texts(&cats);
    free(anns.v);
    return ret ? ret : j.err;
}

int mo_coco_eval_open_memory(mo_coco_eval **out, const char *json, size_t size,
                             const char *name)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(json != NULL, MO_EINVAL);
    if (!name)
        name = "<memory>";
    mo_coco_eval *ev = calloc(1, sizeof(*ev));
    if (!ev || !(ev->name = dup_str(name))) {
        free(ev);
        return mo_fail(MO_ENOMEM, "%s: out of memory", name);
    }
    int ret = load_gt(ev, json, size, name);
    if (ret) {
        mo_coco_eval_close(&ev);
        return ret;
    }
    ev->fingerprint = fingerprint(ev);
    *out = ev;
    return MO_OK;
}

int mo_coco_eval_open(mo_coco_eval **out, const char *path)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(path != NULL, MO_EINVAL);
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 1, &data, &size);
    if (ret)
        return ret;
    ret = mo_coco_eval_open_memory(out, data, size, path);
    free(data);
    return ret;
}

/* ------------------------------------------------------------------ accessors */

int mo_coco_eval_num_images(const mo_coco_eval *ev)
{
    return ev ? ev->num_images : 0;
}

int64_t mo_coco_eval_image_id(const mo_coco_eval *ev, int i)
{
    return ev && i >= 0 && i < ev->num_images ? ev->image_ids[i] : -1;
}

const char *mo_coco_eval_image_file(const mo_coco_eval *ev, int i)
{
    return ev && i >= 0 && i < ev->num_images ? ev->image_files[i] : NULL;
}

int mo_coco_eval_num_categories(const mo_coco_eval *ev)
{
    return ev ? ev->num_cats : 0;
}

int64_t mo_coco_eval_category_id(const mo_coco_eval *ev, int k)
{
    return ev && k >= 0 && k < ev->num_cats ? ev->cat_ids[k] : -1;
}

const char *mo_coco_eval_category_name(const mo_coco_eval *ev, int k)
{
    return ev && k >= 0 && k < ev->num_cats ? ev->cat_names[k] : NULL;
}

size_t mo_coco_eval_num_ignored(const mo_coco_eval *ev)
{
    return ev ? ev->ignored : 0;
}

/* ----------------------------------------------------------------- detections */

static int reserve_dt(mo_coco_eval *ev, size_t more)
{
    if (ev->num_dt + more <= ev->cap_dt)
        return MO_OK;
    size_t cap = ev->cap_dt ? ev->cap_dt : 1024;
    while (cap < ev->num_dt + more)
        cap *= 2;
    if (cap > UINT32_MAX)
        return mo_fail(MO_EUNSUPPORTED, "%s: more than 2^32 detections", ev->name);
    int ret = mo_eval_check_limit(ev->name, ev->num_dt + more, MO_EVAL_LIMIT_DETECTIONS);
    if (ret)
        return ret;
    coco_dt *d = realloc(ev->dt, sizeof(*d) * cap);
    if (!d)
        return mo_fail(MO_ENOMEM, "%s: out of memory for detections", ev->name);
    ev->dt = d;
    ev->cap_dt = cap;
    return MO_OK;
}

static void invalidate(mo_coco_eval *ev)
{
    ev->accumulated = 0;
}

int mo_coco_eval_add_detections(mo_coco_eval *ev, const mo_coco_det *dets, size_t n)
{
    validate_input_or_ret(ev != NULL && (dets != NULL || n == 0), MO_EINVAL);
    if (ev->from_state)
        return mo_fail(MO_EINVAL, "%s: opened from a state file: no detections can be added",
                       ev->name);
    int ret = reserve_dt(ev, n);
    if (ret)
        return ret;
    size_t start = ev->num_dt;
    for (size_t i = 0; i < n; i++) {
        const mo_coco_det *d = &dets[i];
        int ii = find_id(ev->image_ids, ev->num_images, d->image_id);
        if (ii < 0) {
            ev->num_dt = start;
            return mo_fail(MO_EINVAL, "detection %zu: image id %lld is not in %s", i,
                           (long long)d->image_id, ev->name);
        }
        if (!isfinite(d->score) || !isfinite(d->bbox[0]) || !isfinite(d->bbox[1]) ||
            !isfinite(d->bbox[2]) || !isfinite(d->bbox[3])) {
            ev->num_dt = start;
            return mo_fail(MO_EINVAL, "detection %zu: box or score not finite", i);
        }
        int kk = find_id(ev->cat_ids, ev->num_cats, d->category_id);
        if (kk < 0) {
            ev->ignored++;
            continue;
        }
        coco_dt *o = &ev->dt[ev->num_dt++];
        memcpy(o->bbox, d->bbox, sizeof(o->bbox));
        o->score = d->score;
        o->img = (uint32_t)ii;
        o->cat = (uint32_t)kk;
    }
    invalidate(ev);
    return MO_OK;
}

int mo_coco_eval_load_results(mo_coco_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 1, &data, &size);
    if (ret)
        return ret;
    ret = mo_coco_eval_load_results_memory(ev, data, size, path);
    free(data);
    return ret;
}

int mo_coco_eval_load_results_memory(mo_coco_eval *ev, const char *data, size_t size,
                                     const char *path)
{
    validate_input_or_ret(ev != NULL && (data != NULL || size == 0), MO_EINVAL);
    if (!path)
        path = "<memory>";
    if (ev->from_state)
        return mo_fail(MO_EINVAL, "%s: opened from a state file: no detections can be added",
                       ev->name);
    int ret = MO_OK;
    mo_jp j;
    mo_jp_init(&j, data, size, path);
    const size_t start = ev->num_dt, ignored = ev->ignored;
    entry_ctx c = { &j, "results", 0, NULL };
    if (mo_jp_peek(&j) != '[') {
        if (mo_jp_peek(&j) == '{')
            mo_fail(MO_EFORMAT, "%s: a results file is a JSON array of detections", path);
        else
            mo_jp_skip(&j);
        return j.err ? j.err : MO_EFORMAT;
    }
    /* About 80 bytes per detection: reserve once. */
    ret = reserve_dt(ev, size / 80 + 16);
    mo_jp_begin(&j, '[');
    int n = 0;
    while (!ret && mo_jp_next(&j, ']', &n)) {
        c.index = (size_t)n - 1;
        c.at = (mo_jp_peek(&j), j.p);
        if (mo_jp_peek(&j) != '{') {
            not_object(&c);
            break;
        }
        int64_t img = 0, cat = 0;
        coco_dt d = { { 0 }, 0, 0, 0 };
        unsigned have = 0;
        int m = 0;
        mo_jp_begin(&j, '{');
        while (mo_jp_next(&j, '}', &m)) {
            const char *k;
            size_t kl;
            if (mo_jp_key(&j, &k, &kl))
                break;
            if (key_is(k, kl, "image_id")) {
                read_id(&c, "image_id", &img);
                have |= H_IMG;
            } else if (key_is(k, kl, "category_id")) {
                read_id(&c, "category_id", &cat);
                have |= H_CAT;
            } else if (key_is(k, kl, "bbox")) {
                read_bbox(&c, d.bbox);
                have |= H_BBOX;
            } else if (key_is(k, kl, "score")) {
                read_num(&c, "score", &d.score);
                have |= H_SCORE;
            } else {
                mo_jp_skip(&j);
            }
        }
        if (j.err)
            break;
        static const unsigned bits[4] = { H_IMG, H_CAT, H_BBOX, H_SCORE };
        static const char *const keys[4] = { "image_id", "category_id", "bbox", "score" };
        for (int q = 0; q < 4 && !j.err; q++)
            if (!(have & bits[q]))
                efail(&c, NULL, "missing key \"%s\"", keys[q]);
        if (!j.err && (!isfinite(d.score) || !isfinite(d.bbox[0]) || !isfinite(d.bbox[1]) ||
                       !isfinite(d.bbox[2]) || !isfinite(d.bbox[3])))
            efail(&c, NULL, "box or score not finite%s", "");
        if (j.err)
            break;
        int ii = find_id(ev->image_ids, ev->num_images, img);
        if (ii < 0) {
            char msg[96];
            snprintf(msg, sizeof(msg), "image_id %lld is not in the ground truth", (long long)img);
            efail(&c, NULL, "%s", msg);
            break;
        }
        int kk = find_id(ev->cat_ids, ev->num_cats, cat);
        if (kk < 0) {
            ev->ignored++;
            continue;
        }
        if ((ret = reserve_dt(ev, 1)))
            break;
        d.img = (uint32_t)ii;
        d.cat = (uint32_t)kk;
        ev->dt[ev->num_dt++] = d;
    }
    if (!ret)
        ret = j.err ? j.err : mo_jp_finish(&j);
    if (ret) {
        ev->num_dt = start;
        ev->ignored = ignored;
        return ret;
    }
    invalidate(ev);
    return MO_OK;
}

/* ------------------------------------------------------------------- evaluate */

/* maskApi bbIou for one pair (same operations in the same order). */
static inline double box_iou(const double *d, const double *g, int crowd)
{
    double w = fmin(d[2] + d[0], g[2] + g[0]) - fmax(d[0], g[0]);
    if (w <= 0)
        return 0;
    double h = fmin(d[3] + d[1], g[3] + g[1]) - fmax(d[1], g[1]);
    if (h <= 0)
        return 0;
    double i = w * h, da = d[2] * d[3], ga = g[2] * g[3];
    double u = crowd ? da : da + ga - i;
    return i / u;
}

typedef struct scratch {
    uint32_t *order, *tmp;   /* detections of a cell */
    double *keys;
    double *iou;             /* ndt x G */
    uint32_t *gorder;        /* G */
    uint8_t *gig, *gmatched; /* G */
    size_t dcap, gcap;
} scratch;

static int scratch_reserve(scratch *s, size_t nd, size_t ng)
{
    if (nd > s->dcap) {
        free(s->order);
        free(s->tmp);
        free(s->keys);
        s->dcap = nd * 2;
        s->order = malloc(sizeof(uint32_t) * s->dcap);
        s->tmp = malloc(sizeof(uint32_t) * s->dcap);
        s->keys = malloc(sizeof(double) * s->dcap);
        if (!s->order || !s->tmp || !s->keys)
            return MO_ENOMEM;
    }
    if (ng > s->gcap || !s->iou) {
        free(s->iou);
        free(s->gorder);
        free(s->gig);
        free(s->gmatched);
        s->gcap = ng * 2 + 1;
        s->iou = malloc(sizeof(double) * MAXDET_LAST * s->gcap);
        s->gorder = malloc(sizeof(uint32_t) * s->gcap);
        s->gig = malloc(s->gcap);
        s->gmatched = malloc(s->gcap);
        if (!s->iou || !s->gorder || !s->gig || !s->gmatched)
            return MO_ENOMEM;
    }
    return MO_OK;
}

static void scratch_free(scratch *s)
{
    free(s->order);
    free(s->tmp);
    free(s->keys);
    free(s->iou);
    free(s->gorder);
    free(s->gig);
    free(s->gmatched);
}

/* Match one image: gt[g0..g1) and dts[d0..d1) (indices into ev->dt via dorder), both
 * sorted by category. Builds ev->recs[i]. */
static int eval_image(mo_coco_eval *ev, int i, const uint32_t *didx, size_t nd, scratch *s)
{
    const coco_gt *gt = ev->gt + ev->gt_start[i];
    const size_t ng = ev->gt_start[i + 1] - ev->gt_start[i];
    img_rec *rec = &ev->recs[i];
    free(rec->scores);
    memset(rec, 0, sizeof(*rec));

    /* Count cells and kept detections. */
    size_t ncells = 0, nkeep = 0, gi = 0, di = 0, maxg = 0;
    while (gi < ng || di < nd) {
        uint32_t cat = gi < ng ? gt[gi].cat : UINT32_MAX;
        if (di < nd && ev->dt[didx[di]].cat < cat)
            cat = ev->dt[didx[di]].cat;
        size_t g0 = gi, d0 = di;
        while (gi < ng && gt[gi].cat == cat)
            gi++;
        while (di < nd && ev->dt[didx[di]].cat == cat)
            di++;
        ncells++;
        nkeep += di - d0 < MAXDET_LAST ? di - d0 : MAXDET_LAST;
        if (gi - g0 > maxg)
            maxg = gi - g0;
    }
    if (scratch_reserve(s, nd, maxg))
        return mo_fail(MO_ENOMEM, "out of memory");
    size_t bytes = sizeof(cell) * ncells + sizeof(double) * nkeep + (size_t)A_ * T_ * nkeep;
    uint8_t *block = malloc(bytes ? bytes : 1);
    if (!block)
        return mo_fail(MO_ENOMEM, "out of memory");
    /* doubles first: cell is 28 bytes */
    rec->scores = (double *)block;
    rec->cells = (cell *)(block + sizeof(double) * nkeep);
    rec->flags = block + sizeof(double) * nkeep + sizeof(cell) * ncells;
    rec->ncells = (uint32_t)ncells;
    rec->ndet = (uint32_t)nkeep;

    size_t c = 0, off = 0;
    gi = di = 0;
    while (gi < ng || di < nd) {
        uint32_t cat = gi < ng ? gt[gi].cat : UINT32_MAX;
        if (di < nd && ev->dt[didx[di]].cat < cat)
            cat = ev->dt[didx[di]].cat;
        const coco_gt *g = gt + gi;
        const uint32_t *dd = didx + di;
        size_t G = 0, D0 = 0;
        while (gi < ng && gt[gi].cat == cat)
            gi++, G++;
        while (di < nd && ev->dt[didx[di]].cat == cat)
            di++, D0++;
        /* Detections by score, stable, cut to the last maxDets. */
        for (size_t j = 0; j < D0; j++) {
            s->order[j] = (uint32_t)j;
            s->keys[j] = ev->dt[dd[j]].score;
        }
        mo_eval_argsort_desc(s->keys, s->order, s->tmp, D0);
        size_t D = D0 < MAXDET_LAST ? D0 : MAXDET_LAST;
        cell *ce = &rec->cells[c++];
        ce->cat = cat;
        ce->ndt = (uint32_t)D;
        ce->off = (uint32_t)off;
        for (size_t j = 0; j < D; j++)
            rec->scores[off + j] = s->keys[s->order[j]];
        /* IoU of each kept detection with each ground truth (file order). */
        for (size_t j = 0; j < D; j++) {
            const coco_dt *d = &ev->dt[dd[s->order[j]]];
            for (size_t k = 0; k < G; k++)
                s->iou[j * G + k] = box_iou(d->bbox, g[k].bbox, g[k].crowd);
        }
        uint8_t *fl = rec->flags + off * A_ * T_;
        for (int a = 0; a < A_; a++) {
            /* Ignore flags; non-ignored ground truth first, stable. */
            size_t nn = 0;
            for (size_t k = 0; k < G; k++)
                if (!(g[k].crowd || g[k].area < area_lo[a] || g[k].area > area_hi[a]))
                    s->gorder[nn++] = (uint32_t)k;
            ce->npig[a] = (uint32_t)nn;
            for (size_t k = 0, m = nn; k < G; k++)
                if (g[k].crowd || g[k].area < area_lo[a] || g[k].area > area_hi[a])
                    s->gorder[m++] = (uint32_t)k;
            for (size_t k = 0; k < G; k++)
                s->gig[k] = k >= nn;
            for (int t = 0; t < T_; t++) {
                uint8_t *f = fl + ((size_t)a * T_ + (size_t)t) * D;
                const double thr = fmin(iou_thr(t), 1 - 1e-10);
                memset(s->gmatched, 0, G);
                for (size_t j = 0; j < D; j++) {
                    double best = thr;
                    long m = -1;
                    const double *row = s->iou + j * G;
                    for (size_t k = 0; k < G; k++) {
                        const uint32_t gk = s->gorder[k];
                        if (s->gmatched[k] && !g[gk].crowd)
                            continue;
                        if (m > -1 && !s->gig[m] && s->gig[k])
                            break;
                        if (row[gk] < best)
                            continue;
                        best = row[gk];
                        m = (long)k;
                    }
                    const coco_dt *d = &ev->dt[dd[s->order[j]]];
                    const double area = d->bbox[2] * d->bbox[3];
                    const int out = area < area_lo[a] || area > area_hi[a];
                    uint8_t flag = 0;
                    int matched_nz = 0;
                    if (m > -1) {
                        s->gmatched[m] = 1;
                        /* pycocotools stores the ground truth id; 0 reads as unmatched */
                        matched_nz = g[s->gorder[m]].id != 0;
                        if (s->gig[m])
                            flag |= F_IGNORE;
                    }
                    if (matched_nz)
                        flag |= F_MATCH;
                    else if (out)
                        flag |= F_IGNORE;
                    f[j] = flag;
                }
            }
        }
        off += D;
    }
    return MO_OK;
}

int mo_coco_eval_evaluate(mo_coco_eval *ev, int shard, int num_shards,
                          mo_eval_progress_fn progress, void *user)
{
    validate_input_or_ret(ev != NULL && num_shards >= 1 && shard >= 0 && shard < num_shards,
                          MO_EINVAL);
    if (ev->from_state)
        return mo_fail(MO_EINVAL, "%s: opened from a state file: nothing to evaluate",
                       ev->name);
    /* Detections by image, then category, in the order added (stable counting sorts). */
    const size_t ni = (size_t)ev->num_images, nk = (size_t)ev->num_cats;
    uint32_t *a = malloc(sizeof(uint32_t) * (ev->num_dt + 1));
    uint32_t *b = malloc(sizeof(uint32_t) * (ev->num_dt + 1));
    size_t *cnt = calloc((ni > nk ? ni : nk) + 1, sizeof(size_t));
    size_t *start = calloc(ni + 1, sizeof(size_t));
    if (!a || !b || !cnt || !start) {
        free(a);
        free(b);
        free(cnt);
        free(start);
        return mo_fail(MO_ENOMEM, "%s: out of memory", ev->name);
    }
    for (size_t j = 0; j < ev->num_dt; j++)
        cnt[ev->dt[j].cat + 1]++;
    for (size_t k = 0; k < nk; k++)
        cnt[k + 1] += cnt[k];
    for (size_t j = 0; j < ev->num_dt; j++)
        a[cnt[ev->dt[j].cat]++] = (uint32_t)j;
    for (size_t j = 0; j < ev->num_dt; j++)
        start[ev->dt[j].img + 1]++;
    for (size_t i = 0; i < ni; i++)
        start[i + 1] += start[i];
    memcpy(cnt, start, sizeof(size_t) * ni);
    for (size_t j = 0; j < ev->num_dt; j++)
        b[cnt[ev->dt[a[j]].img]++] = a[j];

    scratch s = { 0 };
    int ret = MO_OK;
    size_t total = 0, done = 0;
    for (size_t i = (size_t)shard; i < ni; i += (size_t)num_shards)
        total += !ev->selected || ev->selected[i];
    for (size_t i = (size_t)shard; i < ni && !ret; i += (size_t)num_shards) {
        if (ev->selected && !ev->selected[i])
            continue;
        ret = eval_image(ev, (int)i, b + start[i], start[i + 1] - start[i], &s);
        if (!ret)
            ev->evaluated[i] = 1;
        if (progress)
            progress(user, ++done, total);
    }
    scratch_free(&s);
    free(a);
    free(b);
    free(cnt);
    free(start);
    invalidate(ev);
    return ret;
}

/* ----------------------------------------------------------------- accumulate */

static double mean_valid(const double *v, size_t n, double *buf)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > -1)
            buf[m++] = v[i];
    return m ? mo_eval_pairwise_sum(buf, m) / (double)m : -1;
}

/* Indices of precision and recall for slot s (see kslot) among KA active categories. */
#define PIDX(t, r, s, a, m) (((((size_t)(t) * R_ + (r)) * KA + (s)) * A_ + (a)) * M_ + (m))
#define RIDX(t, s, a, m) ((((size_t)(t) * KA + (s)) * A_ + (a)) * M_ + (m))

/* One summary number as pycocotools' _summarize(): t < 0 means all thresholds. */
static double summarize(const mo_coco_eval *ev, int ap, int t, int a, int m, double *buf)
{
    /* The inactive categories' -1 would be left out by mean_valid: skipping them keeps the
     * order, so the sum is the same. */
    const size_t KA = ev->num_active;
    size_t n = 0;
    int t0 = t < 0 ? 0 : t, t1 = t < 0 ? T_ : t + 1;
    for (int tt = t0; tt < t1; tt++) {
        if (ap) {
            for (int r = 0; r < R_; r++)
                for (size_t k = 0; k < KA; k++)
                    buf[n++] = ev->precision[PIDX(tt, r, k, a, m)];
        } else {
            for (size_t k = 0; k < KA; k++)
                buf[n++] = ev->recall[RIDX(tt, k, a, m)];
        }
    }
    return mean_valid(buf, n, buf);
}

int mo_coco_eval_accumulate(mo_coco_eval *ev)
{
    validate_input_or_ret(ev != NULL, MO_EINVAL);
    for (int i = 0; i < ev->num_images; i++)
        if (!ev->evaluated[i] && (!ev->selected || ev->selected[i]))
            return mo_fail(MO_EINVAL,
                           "%s: image %lld has not been evaluated (a shard is missing?)",
                           ev->name, (long long)ev->image_ids[i]);
    const size_t K = (size_t)ev->num_cats, I = (size_t)ev->num_images;
    free(ev->precision);
    free(ev->recall);
    free(ev->scores_at);
    free(ev->kslot);
    ev->accumulated = 0;
    ev->precision = ev->recall = ev->scores_at = NULL;
    ev->kslot = malloc(sizeof(int) * (K ? K : 1));
    /* Cells per category in image order (selected images only: pycocotools' imgIds). */
#define IMG_USED(i) (!ev->selected || ev->selected[i])
    size_t ncells = 0, maxn = 0;
    for (size_t i = 0; i < I; i++)
        if (IMG_USED(i))
            ncells += ev->recs[i].ncells;
    size_t *kstart = calloc(K + 2, sizeof(size_t));
    const cell **kcell = malloc(sizeof(*kcell) * (ncells + 1));
    const img_rec **krec = malloc(sizeof(*krec) * (ncells + 1));
    if (!ev->kslot || !kstart || !kcell || !krec) {
        free(kstart);
        free(kcell);
        free(krec);
        return mo_fail(MO_ENOMEM, "%s: out of memory", ev->name);
    }
    for (size_t i = 0; i < I; i++)
        for (uint32_t c = 0; IMG_USED(i) && c < ev->recs[i].ncells; c++)
            kstart[ev->recs[i].cells[c].cat + 2]++;
    size_t KA = 0;
    for (size_t k = 0; k < K; k++) {
        ev->kslot[k] = kstart[k + 2] ? (int)KA++ : -1;
        kstart[k + 2] += kstart[k + 1];
    }
    ev->num_active = KA;
    ev->precision = malloc(sizeof(double) * T_ * R_ * A_ * M_ * (KA ? KA : 1));
    ev->recall = malloc(sizeof(double) * T_ * A_ * M_ * (KA ? KA : 1));
    ev->scores_at = malloc(sizeof(double) * T_ * R_ * A_ * M_ * (KA ? KA : 1));
    if (!ev->precision || !ev->recall || !ev->scores_at) {
        free(kstart);
        free(kcell);
        free(krec);
        return mo_fail(MO_ENOMEM, "%s: out of memory", ev->name);
    }
    for (size_t i = 0; i < I; i++)
        for (uint32_t c = 0; IMG_USED(i) && c < ev->recs[i].ncells; c++) {
            size_t p = kstart[ev->recs[i].cells[c].cat + 1]++;
            kcell[p] = &ev->recs[i].cells[c];
            krec[p] = &ev->recs[i];
        }
    for (size_t k = 0; k < K; k++) {
        size_t n = 0;
        for (size_t p = kstart[k]; p < kstart[k + 1]; p++)
            n += kcell[p]->ndt;
        if (n > maxn)
            maxn = n;
    }
    double *scores = malloc(sizeof(double) * (maxn + 1));
    double *rc = malloc(sizeof(double) * (maxn + 1));
    double *pr = malloc(sizeof(double) * (maxn + 1));
    double *sc = malloc(sizeof(double) * (maxn + 1));
    const uint8_t **fbase = malloc(sizeof(*fbase) * (maxn + 1));
    uint32_t *fstride = malloc(sizeof(uint32_t) * (maxn + 1));
    uint32_t *order = malloc(sizeof(uint32_t) * (maxn + 1));
    uint32_t *tmp = malloc(sizeof(uint32_t) * (maxn + 1));
    uint32_t *order_m = malloc(sizeof(uint32_t) * (maxn + 1)); /* kept at maxDets: sorted index */
    uint8_t *rank = malloc(maxn + 1), *rsorted = malloc(maxn + 1);
    uint8_t *fsorted = malloc((maxn + 1) * T_);
    double *buf = malloc(sizeof(double) * (T_ * R_ * (KA ? KA : 1)));
    int ret = MO_OK;
    if (!scores || !rc || !pr || !sc || !fbase || !fstride || !order || !tmp || !order_m ||
        !buf || !rank || !rsorted || !fsorted) {
        ret = mo_fail(MO_ENOMEM, "%s: out of memory", ev->name);
        goto done;
    }
    for (size_t i = 0; i < T_ * R_ * A_ * M_ * KA; i++)
        ev->precision[i] = ev->scores_at[i] = -1;
    for (size_t i = 0; i < T_ * A_ * M_ * KA; i++)
        ev->recall[i] = -1;

    for (size_t k = 0; k < K; k++) {
        if (kstart[k] == kstart[k + 1])
            continue; /* no image has this category: E is empty */
        const size_t ks = (size_t)ev->kslot[k];
        /* Every kept detection of the category, in image order; sorted once: the list of a
         * smaller maxDets is a subsequence of this concatenation in the same order, so its
         * stable sort is this order filtered by rank < maxDets. */
        size_t n = 0;
        for (size_t p = kstart[k]; p < kstart[k + 1]; p++) {
            const cell *ce = kcell[p];
            const uint8_t *fl = krec[p]->flags + (size_t)ce->off * A_ * T_;
            for (uint32_t j = 0; j < ce->ndt; j++) {
                scores[n] = krec[p]->scores[ce->off + j];
                fbase[n] = fl + j;
                fstride[n] = ce->ndt;
                rank[n] = (uint8_t)j;
                order[n] = (uint32_t)n;
                n++;
            }
        }
        mo_eval_argsort_desc(scores, order, tmp, n);
        for (int a = 0; a < A_; a++) {
            uint64_t npig = 0;
            for (size_t p = kstart[k]; p < kstart[k + 1]; p++)
                npig += kcell[p]->npig[a];
            if (npig == 0)
                continue;
            /* Flags of area a in sorted order, [i][t]; scores in sorted order. */
            for (size_t i = 0; i < n; i++) {
                const uint32_t o = order[i];
                sc[i] = scores[o];
                const uint8_t *f = fbase[o] + (size_t)a * T_ * fstride[o];
                for (int t = 0; t < T_; t++)
                    fsorted[i * T_ + (size_t)t] = f[(size_t)t * fstride[o]];
                rsorted[i] = rank[o];
            }
            for (int m = 0; m < M_; m++) {
                const unsigned md = (unsigned)max_dets[m];
                for (int t = 0; t < T_; t++) {
                    double tp = 0, fp = 0;
                    size_t nd = 0;
                    for (size_t i = 0; i < n; i++) {
                        if (rsorted[i] >= md)
                            continue;
                        const uint8_t f = fsorted[i * T_ + (size_t)t];
                        if (!(f & F_IGNORE)) {
                            if (f & F_MATCH)
                                tp += 1;
                            else
                                fp += 1;
                        }
                        rc[nd] = tp / (double)npig;
                        pr[nd] = tp / (fp + tp + 2.220446049250313e-16);
                        order_m[nd] = (uint32_t)i;
                        nd++;
                    }
                    ev->recall[RIDX(t, ks, a, m)] = nd ? rc[nd - 1] : 0;
                    for (size_t j = nd - (nd > 0); j > 0; j--)
                        if (pr[j] > pr[j - 1])
                            pr[j - 1] = pr[j];
                    size_t j = 0;
                    for (int r = 0; r < R_; r++) {
                        const double thr = rec_thr(r);
                        while (j < nd && rc[j] < thr)
                            j++;
                        ev->precision[PIDX(t, r, ks, a, m)] = j < nd ? pr[j] : 0;
                        ev->scores_at[PIDX(t, r, ks, a, m)] = j < nd ? sc[order_m[j]] : 0;
                    }
                }
            }
        }
    }
    /* summarize(): the 12 numbers (area index 0 = all; maxDets index 2 = 100). */
    ev->stats[0] = summarize(ev, 1, -1, 0, 2, buf);
    ev->stats[1] = summarize(ev, 1, 0, 0, 2, buf);
    ev->stats[2] = summarize(ev, 1, 5, 0, 2, buf);
    ev->stats[3] = summarize(ev, 1, -1, 1, 2, buf);
    ev->stats[4] = summarize(ev, 1, -1, 2, 2, buf);
    ev->stats[5] = summarize(ev, 1, -1, 3, 2, buf);
    ev->stats[6] = summarize(ev, 0, -1, 0, 0, buf);
    ev->stats[7] = summarize(ev, 0, -1, 0, 1, buf);
    ev->stats[8] = summarize(ev, 0, -1, 0, 2, buf);
    ev->stats[9] = summarize(ev, 0, -1, 1, 2, buf);
    ev->stats[10] = summarize(ev, 0, -1, 2, 2, buf);
    ev->stats[11] = summarize(ev, 0, -1, 3, 2, buf);
    ev->accumulated = 1;
#undef IMG_USED
done:
    free(kstart);
    free(kcell);
    free(krec);
    free(scores);
    free(rc);
    free(pr);
    free(sc);
    free(order_m);
    free(fbase);
    free(fstride);
    free(order);
    free(tmp);
    free(rank);
    free(rsorted);
    free(fsorted);
    free(buf);
    return ret;
}

int mo_coco_eval_stats(const mo_coco_eval *ev, double stats[MO_COCO_NUM_STATS])
{
    validate_input_or_ret(ev != NULL && stats != NULL, MO_EINVAL);
    if (!ev->accumulated)
        return mo_fail(MO_EINVAL, "%s: not accumulated", ev->name);
    memcpy(stats, ev->stats, sizeof(ev->stats));
    return MO_OK;
}

double mo_coco_eval_category_ap(const mo_coco_eval *ev, int k, int iou)
{
    if (!ev || !ev->accumulated || k < 0 || k >= ev->num_cats || iou >= T_)
        return -1;
    const size_t KA = ev->num_active;
    if (ev->kslot[k] < 0)
        return -1;
    double v[T_ * R_];
    size_t n = 0;
    for (int t = iou < 0 ? 0 : iou; t < (iou < 0 ? T_ : iou + 1); t++)
        for (int r = 0; r < R_; r++)
            v[n++] = ev->precision[PIDX(t, r, (size_t)ev->kslot[k], 0, 2)];
    return mean_valid(v, n, v);
}

int mo_coco_eval_pr_curve(const mo_coco_eval *ev, int k, int iou,
                          double precision[MO_COCO_NUM_RECALL])
{
    validate_input_or_ret(ev != NULL && precision != NULL && iou >= 0 && iou < T_ &&
                              k >= -1 && k < ev->num_cats,
                          MO_EINVAL);
    if (!ev->accumulated)
        return mo_fail(MO_EINVAL, "%s: not accumulated", ev->name);
    const size_t KA = ev->num_active;
    for (int r = 0; r < R_; r++) {
        if (k >= 0) {
            precision[r] = ev->kslot[k] < 0
                               ? -1
                               : ev->precision[PIDX(iou, r, (size_t)ev->kslot[k], 0, 2)];
            continue;
        }
        double s = 0;
        size_t n = 0;
        for (size_t kk = 0; kk < KA; kk++) {
            double p = ev->precision[PIDX(iou, r, kk, 0, 2)];
            if (p > -1) {
                s += p;
                n++;
            }
        }
        precision[r] = n ? s / (double)n : -1;
    }
    return MO_OK;
}

int mo_coco_eval_arrays(const mo_coco_eval *ev, double *precision, double *recall,
                        double *scores)
{
    validate_input_or_ret(ev != NULL, MO_EINVAL);
    if (!ev->accumulated)
        return mo_fail(MO_EINVAL, "%s: not accumulated", ev->name);
    /* Stored for the categories in use only (kslot); spread to every category here. */
    const size_t K = (size_t)ev->num_cats, KA = ev->num_active;
    for (int t = 0; t < T_; t++)
        for (size_t k = 0; k < K; k++) {
            const int ks = ev->kslot[k];
            for (int a = 0; a < A_; a++)
                for (int m = 0; m < M_; m++) {
                    if (recall)
                        recall[(((size_t)t * K + k) * A_ + a) * M_ + m] =
                            ks < 0 ? -1 : ev->recall[RIDX(t, ks, a, m)];
                    for (int r = 0; r < R_; r++) {
                        const size_t o = ((((size_t)t * R_ + r) * K + k) * A_ + a) * M_ + m;
                        if (precision)
                            precision[o] = ks < 0 ? -1 : ev->precision[PIDX(t, r, ks, a, m)];
                        if (scores)
                            scores[o] = ks < 0 ? -1 : ev->scores_at[PIDX(t, r, ks, a, m)];
                    }
                }
        }
    return MO_OK;
}

int mo_coco_eval_select_images(mo_coco_eval *ev, const int64_t *ids, size_t n)
{
    validate_input_or_ret(ev != NULL, MO_EINVAL);
    invalidate(ev);
    if (!ids) {
        free(ev->selected);
        ev->selected = NULL;
        return MO_OK;
    }
    if (!ev->selected && !(ev->selected = malloc((size_t)ev->num_images + 1)))
        return mo_fail(MO_ENOMEM, "%s: out of memory", ev->name);
    memset(ev->selected, 0, (size_t)ev->num_images);
    /* Ids the ground truth lacks select nothing, as pycocotools' imgIds. */
    for (size_t i = 0; i < n; i++) {
        int ii = find_id(ev->image_ids, ev->num_images, ids[i]);
        if (ii >= 0)
            ev->selected[ii] = 1;
    }
    return MO_OK;
}

/* ------------------------------------------------------------------ reporting */

static const char *const stat_names[MO_COCO_NUM_STATS] = {
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"
};

int mo_coco_eval_print(const mo_coco_eval *ev, FILE *f, int per_category)
{
    validate_input_or_ret(ev != NULL && f != NULL, MO_EINVAL);
    if (!ev->accumulated)
        return mo_fail(MO_EINVAL, "%s: not accumulated", ev->name);
    static const char *const area[] = { "all", "small", "medium", "large", "all", "small",
                                        "medium", "large" };
    static const int row_area[MO_COCO_NUM_STATS] = { 0, 0, 0, 1, 2, 3, 0, 0, 0, 1, 2, 3 };
    static const int row_md[MO_COCO_NUM_STATS] = { 100, 100, 100, 100, 100, 100,
                                                   1,   10,  100, 100, 100, 100 };
    for (int i = 0; i < MO_COCO_NUM_STATS; i++) {
        const int ap = i < 6;
        const char *iou = i == 1 ? "0.50" : i == 2 ? "0.75" : "0.50:0.95";
        fprintf(f, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                ap ? "Average Precision" : "Average Recall", ap ? "(AP)" : "(AR)", iou,
                area[row_area[i]], row_md[i], ev->stats[i]);
    }
    if (per_category) {
        fprintf(f, "\n%-6s %-24s %8s %8s %8s\n", "id", "category", "AP", "AP50", "AP75");
        for (int k = 0; k < ev->num_cats; k++) {
            const char *nm = ev->cat_names[k] ? ev->cat_names[k] : "";
            double v[3] = { mo_coco_eval_category_ap(ev, k, -1), mo_coco_eval_category_ap(ev, k, 0),
                            mo_coco_eval_category_ap(ev, k, 5) };
            fprintf(f, "%-6lld %-24s", (long long)ev->cat_ids[k], nm);
            for (int j = 0; j < 3; j++) {
                if (v[j] < 0)
                    fprintf(f, " %8s", "-");
                else
                    fprintf(f, " %8.4f", v[j]);
            }
            fputc('\n', f);
        }
    }
    return ferror(f) ? mo_fail(MO_EIO, "write error") : MO_OK;
}

int mo_coco_eval_write_json(const mo_coco_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    if (!ev->accumulated)
        return mo_fail(MO_EINVAL, "%s: not accumulated", ev->name);
    json_object *root = json_object_new_object(), *stats = json_object_new_array();
    json_object *names = json_object_new_array(), *cats = json_object_new_array();
    if (!root || !stats || !names || !cats) {
        json_object_put(root);
        json_object_put(stats);
        json_object_put(names);
        json_object_put(cats);
        return mo_fail(MO_ENOMEM, "out of memory");
    }
    for (int i = 0; i < MO_COCO_NUM_STATS; i++) {
        json_object_array_add(stats, json_object_new_double(ev->stats[i]));
        json_object_array_add(names, json_object_new_string(stat_names[i]));
    }
    for (int k = 0; k < ev->num_cats; k++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "id", json_object_new_int64(ev->cat_ids[k]));
        json_object_object_add(c, "name",
                               json_object_new_string(ev->cat_names[k] ? ev->cat_names[k] : ""));
        json_object_object_add(c, "AP", json_object_new_double(mo_coco_eval_category_ap(ev, k, -1)));
        json_object_object_add(c, "AP50", json_object_new_double(mo_coco_eval_category_ap(ev, k, 0)));
        json_object_object_add(c, "AP75", json_object_new_double(mo_coco_eval_category_ap(ev, k, 5)));
        json_object_array_add(cats, c);
    }
    json_object_object_add(root, "stats", stats);
    json_object_object_add(root, "names", names);
    json_object_object_add(root, "categories", cats);
    int ok = json_object_to_file_ext(path, root, JSON_C_TO_STRING_PRETTY |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE) == 0;
    json_object_put(root);
    return ok ? MO_OK : mo_fail(MO_EIO, "%s: cannot write", path);
}

/* -------------------------------------------------------------------- states */

int mo_coco_eval_save_state(const mo_coco_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    mo_wbuf b = { 0 };
    mo_wbuf_header(&b, MO_STATE_COCO);
    mo_wbuf_u64(&b, ev->fingerprint);
    mo_wbuf_u32(&b, (uint32_t)ev->num_cats);
    for (int k = 0; k < ev->num_cats; k++) {
        mo_wbuf_u64(&b, (uint64_t)ev->cat_ids[k]);
        mo_wbuf_str(&b, ev->cat_names[k]);
    }
    mo_wbuf_u32(&b, (uint32_t)ev->num_images);
    for (int i = 0; i < ev->num_images; i++)
        mo_wbuf_u64(&b, (uint64_t)ev->image_ids[i]);
    uint32_t ne = 0;
    for (int i = 0; i < ev->num_images; i++)
        ne += ev->evaluated[i];
    mo_wbuf_u32(&b, ne);
    for (int i = 0; i < ev->num_images; i++) {
        if (!ev->evaluated[i])
            continue;
        const img_rec *r = &ev->recs[i];
        mo_wbuf_u32(&b, (uint32_t)i);
        mo_wbuf_u32(&b, r->ncells);
        mo_wbuf_u32(&b, r->ndet);
        for (uint32_t c = 0; c < r->ncells; c++) {
            mo_wbuf_u32(&b, r->cells[c].cat);
            mo_wbuf_u32(&b, r->cells[c].ndt);
            for (int a = 0; a < A_; a++)
                mo_wbuf_u32(&b, r->cells[c].npig[a]);
        }
        for (uint32_t j = 0; j < r->ndet; j++)
            mo_wbuf_f64(&b, r->scores[j]);
        mo_wbuf_put(&b, r->flags, (size_t)r->ndet * A_ * T_);
    }
    return mo_wbuf_finish(&b, path);
}

/* Read the records of a state into ev (whose images and categories match). */
static int read_records(mo_coco_eval *ev, mo_rbuf *r)
{
    uint32_t ne = mo_rbuf_u32(r);
    if (mo_rbuf_check_count(r, ne, 12))
        return r->err;
    for (uint32_t e = 0; e < ne; e++) {
        uint32_t i = mo_rbuf_u32(r), nc = mo_rbuf_u32(r), nd = mo_rbuf_u32(r);
        if (r->err)
            return r->err;
        if (i >= (uint32_t)ev->num_images)
            return mo_rbuf_fail(r, "image index out of range");
        if (ev->evaluated[i])
            return mo_fail(MO_EMISMATCH, "%s: image %lld is already evaluated (overlapping shards)",
                           r->name, (long long)ev->image_ids[i]);
        if (mo_rbuf_check_count(r, nc, 24) || mo_rbuf_check_count(r, nd, 8 + A_ * T_))
            return r->err;
        size_t bytes = sizeof(cell) * nc + sizeof(double) * nd + (size_t)A_ * T_ * nd;
        uint8_t *block = malloc(bytes ? bytes : 1);
        if (!block)
            return mo_fail(MO_ENOMEM, "%s: out of memory", r->name);
        img_rec *rec = &ev->recs[i];
        free(rec->scores); /* left by an earlier failed load */
        rec->scores = (double *)block;
        rec->cells = (cell *)(block + sizeof(double) * nd);
        rec->flags = block + sizeof(double) * nd + sizeof(cell) * nc;
        rec->ncells = nc;
        rec->ndet = nd;
        uint32_t off = 0;
        for (uint32_t c = 0; c < nc; c++) {
            cell *ce = &rec->cells[c];
            ce->cat = mo_rbuf_u32(r);
            ce->ndt = mo_rbuf_u32(r);
            for (int a = 0; a < A_; a++)
                ce->npig[a] = mo_rbuf_u32(r);
            ce->off = off;
            if (!r->err && (ce->cat >= (uint32_t)ev->num_cats || ce->ndt > MAXDET_LAST ||
                            ce->ndt > nd - off || (c && ce->cat <= rec->cells[c - 1].cat)))
                mo_rbuf_fail(r, "bad record");
            if (r->err) {
                rec->ncells = 0;
                rec->ndet = 0;
                return r->err;
            }
            off += ce->ndt;
        }
        if (off != nd) {
            rec->ncells = rec->ndet = 0;
            return mo_rbuf_fail(r, "bad record");
        }
        for (uint32_t j = 0; j < nd; j++)
            rec->scores[j] = mo_rbuf_f64(r);
        const uint8_t *fl = mo_rbuf_bytes(r, (size_t)nd * A_ * T_);
        if (!fl) {
            rec->ncells = rec->ndet = 0;
            return r->err;
        }
        memcpy(rec->flags, fl, (size_t)nd * A_ * T_);
        ev->evaluated[i] = 1;
    }
    if (r->pos != r->size)
        return mo_rbuf_fail(r, "trailing bytes");
    return MO_OK;
}

int mo_coco_eval_open_state_memory(mo_coco_eval **out, const uint8_t *data, size_t size,
    const char *path)
{
    validate_input_or_ret(out != NULL && path != NULL && (data != NULL || !size), MO_EINVAL);
    *out = NULL;
    mo_rbuf r;
    int ret = mo_rbuf_open_memory(&r, data, size, path, MO_STATE_COCO);
    mo_coco_eval *ev = NULL;
    if (!ret && !(ev = calloc(1, sizeof(*ev))))
        ret = mo_fail(MO_ENOMEM, "out of memory");
    if (!ret && !(ev->name = dup_str(path)))
        ret = mo_fail(MO_ENOMEM, "out of memory");
    if (!ret) {
        ev->from_state = 1;
        ev->fingerprint = mo_rbuf_u64(&r);
        uint32_t nc = mo_rbuf_u32(&r);
        if (!r.err && (ret = mo_eval_check_limit(path, nc, MO_EVAL_LIMIT_CATEGORIES)))
            r.err = ret;
        if (!mo_rbuf_check_count(&r, nc, 12)) {
            ev->cat_ids = malloc(sizeof(int64_t) * (nc + 1));
            ev->cat_names = calloc(nc + 1, sizeof(char *));
            if (!ev->cat_ids || !ev->cat_names)
                ret = mo_fail(MO_ENOMEM, "out of memory");
            for (uint32_t k = 0; k < nc && !ret && !r.err; k++) {
                ev->cat_ids[k] = (int64_t)mo_rbuf_u64(&r);
                ev->cat_names[k] = mo_rbuf_str(&r);
                ev->num_cats = (int)k + 1;
            }
        }
        uint32_t ni = mo_rbuf_u32(&r);
        if (!ret && !r.err && (ret = mo_eval_check_limit(path, ni, MO_EVAL_LIMIT_IMAGES)))
            r.err = ret;
        if (!ret && !mo_rbuf_check_count(&r, ni, 8)) {
            ev->image_ids = malloc(sizeof(int64_t) * (ni + 1));
            ev->image_files = calloc(ni + 1, sizeof(char *));
            if (!ev->image_ids || !ev->image_files)
                ret = mo_fail(MO_ENOMEM, "out of memory");
            for (uint32_t i = 0; i < ni && !ret; i++)
                ev->image_ids[i] = (int64_t)mo_rbuf_u64(&r);
            ev->num_images = (int)ni;
        }
        if (!ret)
            ret = r.err;
        if (!ret)
            ret = alloc_common(ev);
        if (!ret)
            ret = read_records(ev, &r);
    }
    if (ret) {
        mo_coco_eval_close(&ev);
        return ret;
    }
    *out = ev;
    return MO_OK;
}

int mo_coco_eval_open_state(mo_coco_eval **out, const char *path)
{
    validate_input_or_ret(out != NULL && path != NULL, MO_EINVAL);
    *out = NULL;
    char *file;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &file, &size);
    if (!ret)
        ret = mo_coco_eval_open_state_memory(out, (const uint8_t *)file, size, path);
    free(file);
    return ret;
}

int mo_coco_eval_load_state_memory(mo_coco_eval *ev, const uint8_t *data, size_t size,
    const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL && (data != NULL || !size), MO_EINVAL);
    mo_rbuf r;
    int ret = mo_rbuf_open_memory(&r, data, size, path, MO_STATE_COCO);
    if (!ret) {
        uint64_t fp = mo_rbuf_u64(&r);
        uint32_t nc = mo_rbuf_u32(&r);
        for (uint32_t k = 0; k < nc && !r.err; k++) {
            mo_rbuf_u64(&r);
            free(mo_rbuf_str(&r));
        }
        uint32_t ni = mo_rbuf_u32(&r);
        if (!mo_rbuf_check_count(&r, ni, 8))
            for (uint32_t i = 0; i < ni; i++)
                mo_rbuf_u64(&r);
        ret = r.err;
        if (!ret && (fp != ev->fingerprint || nc != (uint32_t)ev->num_cats ||
                     ni != (uint32_t)ev->num_images))
            ret = mo_fail(MO_EMISMATCH, "%s: evaluated against another ground truth than %s",
                          path, ev->name);
        if (!ret)
            ret = read_records(ev, &r);
    }
    invalidate(ev);
    return ret;
}

int mo_coco_eval_load_state(mo_coco_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    char *file;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &file, &size);
    if (!ret)
        ret = mo_coco_eval_load_state_memory(ev, (const uint8_t *)file, size, path);
    free(file);
    return ret;
}
