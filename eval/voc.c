/*
 * Pascal VOC detection AP with the semantics of the classic voc_eval (py-faster-rcnn /
 * VOCdevkit): per class, detections of the whole set in decreasing confidence; each one
 * takes the ground truth box of its image with the largest IoU (pixel-inclusive, +1
 * areas); IoU > threshold: a true positive if that box is not difficult and not yet
 * taken, a false positive if taken, neither if difficult; otherwise a false positive.
 * recall = tp / npos (npos = non-difficult boxes), precision = tp / max(tp + fp, eps);
 * VOC2007 11-point AP (max precision at recall >= 0, .1, ..., 1) or VOC2010+ all-point AP.
 *
 * Ties of confidence: the classic code sorts with numpy's (unstable) quicksort, so their
 * order is unspecified there; here equal scores keep image order (of the set file) and
 * then the order in which the detections were added, which a shard merge reproduces.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "eval_internal.h"
#include "parsers_internal.h"

static const char *const voc_classes[20] = {
    "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",   "car",
    "cat",       "chair",   "cow",   "diningtable", "dog",    "horse", "motorbike",
    "person",    "pottedplant", "sheep", "sofa",    "train",  "tvmonitor"
};

typedef struct voc_obj {
    double box[4];
    uint32_t cls;
    uint8_t difficult;
} voc_obj;

typedef struct voc_dt {
    double score;
    double box[4];
    uint32_t img, cls;
} voc_dt;

enum { TAG_NONE = 0, TAG_TP = 1, TAG_FP = 2 };

/* Per image, per class that the image has (ground truth or detections): npos and the
 * image's detections of the class in score order. Classes an image lacks have no cell, so
 * memory follows what is used, not images x classes. */
typedef struct voc_cell {
    uint32_t cls, npos, ndet, off;
} voc_cell;

typedef struct voc_rec {
    voc_cell *cells; /* ncells, by increasing class */
    uint32_t ncells;
    double *scores;
    uint8_t *tags;
    uint32_t ndet;
} voc_rec;

typedef struct voc_curve {
    double *rec, *prec;
    size_t n;
    double ap07, ap;
} voc_curve;

struct mo_voc_eval {
    char *name;
    int num_images, num_classes;
    char **images;
    char **classes;
    voc_obj *gt;
    size_t *gt_start; /* num_images + 1 */
    voc_dt *dt;
    size_t num_dt, cap_dt;
    uint64_t fingerprint;
    double iou;       /* of the evaluated records */
    int from_state;
    uint8_t *evaluated;
    voc_rec *recs;
    int accumulated;
    voc_curve *curves;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void mo_voc_eval_close(mo_voc_eval **pev)
{
    if (!pev || !*pev)
        return;
    mo_voc_eval *ev = *pev;
    for (int i = 0; i < ev->num_images; i++) {
        if (ev->images)
            free(ev->images[i]);
        if (ev->recs)
            free(ev->recs[i].scores);
    }
    for (int c = 0; c < ev->num_classes; c++) {
        if (ev->classes)
            free(ev->classes[c]);
        if (ev->curves) {
            free(ev->curves[c].rec);
            free(ev->curves[c].prec);
        }
    }
    free(ev->images);
    free(ev->classes);
    free(ev->gt);
    free(ev->gt_start);
    free(ev->dt);
    free(ev->evaluated);
    free(ev->recs);
    free(ev->curves);
    free(ev->name);
    free(ev);
    *pev = NULL;
}

/* --------------------------------------------------------------------- XML */

static const char *node_text(xmlNode *n)
{
    return n && n->children && n->children->type == XML_TEXT_NODE
               ? (const char *)n->children->content
               : NULL;
}

static xmlNode *child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    return NULL;
}

/* Text of a child element, leading/trailing blanks removed into buf. */
static const char *child_text(xmlNode *n, const char *name, char *buf, size_t cap)
{
    const char *t = node_text(child(n, name));
    if (!t)
        return NULL;
    while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
        t++;
    size_t len = strlen(t);
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t' || t[len - 1] == '\n' ||
                   t[len - 1] == '\r'))
        len--;
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, t, len);
    buf[len] = 0;
    return buf;
}

static int parse_num(const char *s, double *v)
{
    char *end;
    if (!s || !*s)
        return -1;
    *v = strtod(s, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

typedef struct obj_vec {
    voc_obj *v;
    size_t n, cap;
} obj_vec;

static int push_obj(obj_vec *o, const voc_obj *x)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        voc_obj *v = realloc(o->v, sizeof(*v) * cap);
        if (!v)
            return MO_ENOMEM;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = *x;
    return MO_OK;
}

static int find_class(const mo_voc_eval *ev, const char *name)
{
    for (int c = 0; c < ev->num_classes; c++)
        if (!strcmp(ev->classes[c], name))
            return c;
    return -1;
}

/* The objects of one annotation (XML text of `size` bytes) of the evaluated classes. */
static int parse_xml(mo_voc_eval *ev, const char *data, size_t size, const char *path,
                     obj_vec *objs)
{
    if (size > INT_MAX)
        return mo_fail(MO_EUNSUPPORTED, "%s: over 2 GiB of XML", path);
    /* From memory: the file was opened by the one reader (regular files only, size limit);
     * libxml2 would open a FIFO or read /dev/zero without end. */
    xmlDoc *doc = xmlReadMemory(data, (int)size, path, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlGetLastError();
        if (e && e->line > 0) {
            char msg[200];
            snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "parse error");
            size_t l = strlen(msg);
            while (l && msg[l - 1] == '\n')
                msg[--l] = 0;
            return mo_fail(MO_EFORMAT, "%s:%d: invalid XML: %s", path, e->line, msg);
        }
        return mo_fail(MO_EFORMAT, "%s: invalid XML", path);
    }
    int ret = MO_OK;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "annotation")) {
        xmlFreeDoc(doc);
        return mo_fail(MO_EFORMAT, "%s: the root element is not <annotation>", path);
    }
    for (xmlNode *o = root->children; o && !ret; o = o->next) {
        if (o->type != XML_ELEMENT_NODE || strcmp((const char *)o->name, "object"))
            continue;
        const int line = (int)xmlGetLineNo(o);
        char name[128], buf[64];
        if (!child_text(o, "name", name, sizeof(name))) {
            ret = mo_fail(MO_EFORMAT, "%s:%d: <object> without <name>", path, line);
            break;
        }
        voc_obj x = { { 0 }, 0, 0 };
        xmlNode *bb = child(o, "bndbox");
        if (!bb) {
            ret = mo_fail(MO_EFORMAT, "%s:%d: <object> \"%s\" without <bndbox>", path, line, name);
            break;
        }
        static const char *const corner[4] = { "xmin", "ymin", "xmax", "ymax" };
        for (int k = 0; k < 4 && !ret; k++)
            if (parse_num(child_text(bb, corner[k], buf, sizeof(buf)), &x.box[k]))
                ret = mo_fail(MO_EFORMAT, "%s:%d: <bndbox> without a number in <%s>", path,
                              (int)xmlGetLineNo(bb), corner[k]);
        if (ret)
            break;
        if (child_text(o, "difficult", buf, sizeof(buf))) {
            double d;
            if (parse_num(buf, &d) || (d != 0 && d != 1)) {
                ret = mo_fail(MO_EFORMAT, "%s:%d: <difficult> is not 0 or 1", path,
                              (int)xmlGetLineNo(child(o, "difficult")));
                break;
            }
            x.difficult = d != 0;
        }
        int c = find_class(ev, name);
        if (c < 0)
            continue; /* another class: not evaluated */
        x.cls = (uint32_t)c;
        if (push_obj(objs, &x))
            ret = mo_fail(MO_ENOMEM, "%s: out of memory", path);
        else if (objs->n % 4096 == 0)
            ret = mo_eval_check_limit(path, objs->n, MO_EVAL_LIMIT_BOXES);
    }
    xmlFreeDoc(doc);
    return ret;
}

static int load_xml(mo_voc_eval *ev, const char *path, obj_vec *objs)
{
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &data, &size);
    if (!ret)
        ret = parse_xml(ev, data, size, path, objs);
    free(data);
    return ret;
}

static uint64_t fingerprint(const mo_voc_eval *ev)
{
    uint64_t h = 14695981039346656037ull;
    for (int c = 0; c < ev->num_classes; c++)
        h = mo_eval_fnv(h, ev->classes[c], strlen(ev->classes[c]) + 1);
    for (int i = 0; i < ev->num_images; i++)
        h = mo_eval_fnv(h, ev->images[i], strlen(ev->images[i]) + 1);
    for (size_t j = 0; j < ev->gt_start[ev->num_images]; j++) {
        h = mo_eval_fnv(h, ev->gt[j].box, sizeof(ev->gt[j].box));
        h = mo_eval_fnv(h, &ev->gt[j].cls, sizeof(ev->gt[j].cls));
        h = mo_eval_fnv(h, &ev->gt[j].difficult, 1);
    }
    return h;
}

static int alloc_common(mo_voc_eval *ev)
{
    size_t n = (size_t)ev->num_images + 1;
    ev->evaluated = calloc(n, 1);
    ev->recs = calloc(n, sizeof(*ev->recs));
    ev->curves = calloc((size_t)ev->num_classes + 1, sizeof(*ev->curves));
    if (!ev->evaluated || !ev->recs || !ev->curves)
        return mo_fail(MO_ENOMEM, "out of memory");
    return MO_OK;
}

static int set_classes(mo_voc_eval *ev, const char *const *classes, int n)
{
    ev->classes = calloc((size_t)n + 1, sizeof(char *));
    if (!ev->classes)
        return mo_fail(MO_ENOMEM, "out of memory");
    for (int c = 0; c < n; c++) {
        if (!classes[c] || !*classes[c])
            return mo_fail(MO_EINVAL, "class %d has no name", c);
        if (!(ev->classes[c] = dup_str(classes[c])))
            return mo_fail(MO_ENOMEM, "out of memory");
        ev->num_classes = c + 1;
    }
    return MO_OK;
}

/* The image ids of an ImageSets list (data is NUL-terminated and modified). */
static int parse_set(mo_voc_eval *ev, char *data, size_t size, const char *path)
{
    int ret = MO_OK;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    size_t ids = 0; /* an upper bound: lines with a word */
    for (size_t i = 0, word = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            ids += word;
            word = 0;
        } else if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r') {
            word = 1;
        }
    }
    if ((ret = mo_eval_check_limit(path, ids, MO_EVAL_LIMIT_IMAGES)))
        return ret;
    if (ids > INT_MAX - 1)
        return mo_fail(MO_EUNSUPPORTED, "%s: too many image ids", path);
    ev->images = calloc(lines + 1, sizeof(char *));
    if (!ev->images)
        return mo_fail(MO_ENOMEM, "out of memory");
    char *p = data;
    int line = 0;
    while (*p && !ret) {
        char *e = strchr(p, '\n');
        if (e)
            *e = 0;
        line++;
        char *t = p;
        while (*t == ' ' || *t == '\t')
            t++;
        size_t len = strcspn(t, " \t\r");
        if (len) {
            t[len] = 0;
            if (strchr(t, '/') || len > 200)
                ret = mo_fail(MO_EFORMAT, "%s:%d: '%s' is not an image id", path, line, t);
            else if (!(ev->images[ev->num_images++] = dup_str(t)))
                ret = mo_fail(MO_ENOMEM, "out of memory");
        }
        p = e ? e + 1 : p + strlen(p);
    }
    if (!ret && ev->num_images == 0)
        ret = mo_fail(MO_EFORMAT, "%s: no image ids", path);
    return ret;
}

static int read_set(mo_voc_eval *ev, const char *path)
{
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &data, &size);
    if (ret)
        return ret;
    ret = parse_set(ev, data, size, path);
    free(data);
    return ret;
}

int mo_voc_eval_open(mo_voc_eval **out, const char *dir, const char *image_set,
                     const char *const *classes, int num_classes)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(dir != NULL && image_set != NULL, MO_EINVAL);
    validate_input_or_ret(!classes || (num_classes >= 1 && num_classes <= 100000), MO_EINVAL);
    int ret = classes ? mo_eval_check_limit("classes", (uint64_t)num_classes,
                                            MO_EVAL_LIMIT_CATEGORIES)
                      : MO_OK;
    if (ret)
        return ret;
    mo_voc_eval *ev = calloc(1, sizeof(*ev));
    size_t plen = strlen(dir) + strlen(image_set) + 64;
    char *path = malloc(plen);
    if (!ev || !path || !(ev->name = dup_str(dir))) {
        free(ev);
        free(path);
        return mo_fail(MO_ENOMEM, "out of memory");
    }
    ret = classes ? set_classes(ev, classes, num_classes) : set_classes(ev, voc_classes, 20);
    snprintf(path, plen, "%s/ImageSets/Main/%s.txt", dir, image_set);
    if (!ret)
        ret = read_set(ev, path);
    obj_vec objs = { 0 };
    if (!ret && !(ev->gt_start = calloc((size_t)ev->num_images + 1, sizeof(size_t))))
        ret = mo_fail(MO_ENOMEM, "out of memory");
    for (int i = 0; i < ev->num_images && !ret; i++) {
        size_t need = strlen(dir) + strlen(ev->images[i]) + 32;
        if (need > plen) {
            char *p2 = realloc(path, need);
            if (!p2) {
                ret = mo_fail(MO_ENOMEM, "out of memory");
                break;
            }
            path = p2;
            plen = need;
        }
        snprintf(path, plen, "%s/Annotations/%s.xml", dir, ev->images[i]);
        ret = load_xml(ev, path, &objs);
        ev->gt_start[i + 1] = objs.n;
    }
    free(path);
    ev->gt = objs.v;
    if (!ret)
        ret = alloc_common(ev);
    if (ret) {
        mo_voc_eval_close(&ev);
        return ret;
    }
    ev->fingerprint = fingerprint(ev);
    *out = ev;
    return MO_OK;
}

int mo_voc_eval_open_memory(mo_voc_eval **out, char *set, size_t set_size, const char *xml,
                            size_t xml_size, const char *name)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(set != NULL && name != NULL && set[set_size] == 0, MO_EINVAL);
    mo_voc_eval *ev = calloc(1, sizeof(*ev));
    if (!ev || !(ev->name = dup_str(name))) {
        free(ev);
        return mo_fail(MO_ENOMEM, "out of memory");
    }
    int ret = set_classes(ev, voc_classes, 20);
    if (!ret)
        ret = parse_set(ev, set, set_size, name);
    obj_vec objs = { 0 };
    if (!ret && !(ev->gt_start = calloc((size_t)ev->num_images + 1, sizeof(size_t))))
        ret = mo_fail(MO_ENOMEM, "out of memory");
    if (!ret && xml)
        ret = parse_xml(ev, xml, xml_size, name, &objs);
    for (int i = 0; !ret && i < ev->num_images; i++)
        ev->gt_start[i + 1] = objs.n;
    ev->gt = objs.v;
    if (!ret)
        ret = alloc_common(ev);
    if (ret) {
        mo_voc_eval_close(&ev);
        return ret;
    }
    ev->fingerprint = fingerprint(ev);
    *out = ev;
    return MO_OK;
}

int mo_voc_eval_num_images(const mo_voc_eval *ev)
{
    return ev ? ev->num_images : 0;
}

const char *mo_voc_eval_image_name(const mo_voc_eval *ev, int i)
{
    return ev && i >= 0 && i < ev->num_images ? ev->images[i] : NULL;
}

int mo_voc_eval_image_index(const mo_voc_eval *ev, const char *name)
{
    if (!ev || !name)
        return -1;
    for (int i = 0; i < ev->num_images; i++)
        if (!strcmp(ev->images[i], name))
            return i;
    return -1;
}

int mo_voc_eval_num_classes(const mo_voc_eval *ev)
{
    return ev ? ev->num_classes : 0;
}

const char *mo_voc_eval_class_name(const mo_voc_eval *ev, int c)
{
    return ev && c >= 0 && c < ev->num_classes ? ev->classes[c] : NULL;
}

/* -------------------------------------------------------------- detections */

static int reserve_dt(mo_voc_eval *ev, size_t more)
{
    if (ev->num_dt + more <= ev->cap_dt)
        return MO_OK;
    size_t cap = ev->cap_dt ? ev->cap_dt : 1024;
    while (cap < ev->num_dt + more)
        cap *= 2;
    if (cap > UINT32_MAX)
        return mo_fail(MO_EUNSUPPORTED, "more than 2^32 detections");
    int ret = mo_eval_check_limit(ev->name, ev->num_dt + more, MO_EVAL_LIMIT_DETECTIONS);
    if (ret)
        return ret;
    voc_dt *d = realloc(ev->dt, sizeof(*d) * cap);
    if (!d)
        return mo_fail(MO_ENOMEM, "out of memory for detections");
    ev->dt = d;
    ev->cap_dt = cap;
    return MO_OK;
}

int mo_voc_eval_add_detections(mo_voc_eval *ev, const mo_voc_det *dets, size_t n)
{
    validate_input_or_ret(ev != NULL && (dets != NULL || n == 0), MO_EINVAL);
    if (ev->from_state)
        return mo_fail(MO_EINVAL, "%s: opened from a state file", ev->name);
    for (size_t i = 0; i < n; i++) {
        const mo_voc_det *d = &dets[i];
        if (d->image < 0 || d->image >= ev->num_images || d->cls < 0 || d->cls >= ev->num_classes)
            return mo_fail(MO_EINVAL, "detection %zu: image %d or class %d out of range", i,
                           d->image, d->cls);
        if (!isfinite(d->score) || !isfinite(d->box[0]) || !isfinite(d->box[1]) ||
            !isfinite(d->box[2]) || !isfinite(d->box[3]))
            return mo_fail(MO_EINVAL, "detection %zu: box or score not finite", i);
    }
    int ret = reserve_dt(ev, n);
    if (ret)
        return ret;
    for (size_t i = 0; i < n; i++) {
        voc_dt *o = &ev->dt[ev->num_dt++];
        o->score = dets[i].score;
        memcpy(o->box, dets[i].box, sizeof(o->box));
        o->img = (uint32_t)dets[i].image;
        o->cls = (uint32_t)dets[i].cls;
    }
    ev->accumulated = 0;
    return MO_OK;
}

/* Image index by name through a sorted index built on demand. */
typedef struct name_idx {
    const char *name;
    int i;
} name_idx;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

int mo_voc_eval_load_detections(mo_voc_eval *ev, int cls, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL && cls >= 0 && cls < ev->num_classes,
                          MO_EINVAL);
    if (ev->from_state)
        return mo_fail(MO_EINVAL, "%s: opened from a state file", ev->name);
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &data, &size);
    if (ret)
        return ret;
    ret = mo_voc_eval_load_detections_memory(ev, cls, data, size, path);
    free(data);
    return ret;
}

int mo_voc_eval_load_detections_memory(mo_voc_eval *ev, int cls, char *data, size_t size,
                                       const char *path)
{
    validate_input_or_ret(ev != NULL && data != NULL && path != NULL && cls >= 0 &&
                              cls < ev->num_classes && data[size] == 0,
                          MO_EINVAL);
    if (ev->from_state)
        return mo_fail(MO_EINVAL, "%s: opened from a state file", ev->name);
    int ret = MO_OK;
    name_idx *idx = malloc(sizeof(*idx) * ((size_t)ev->num_images + 1));
    if (!idx)
        return mo_fail(MO_ENOMEM, "out of memory");
    for (int i = 0; i < ev->num_images; i++)
        idx[i] = (name_idx){ ev->images[i], i };
    qsort(idx, (size_t)ev->num_images, sizeof(*idx), cmp_name);
    size_t start = ev->num_dt;
    char *p = data;
    int line = 0;
    while (*p && !ret) {
        char *e = strchr(p, '\n');
        if (e)
            *e = 0;
        line++;
        char *tok[7];
        int nt = 0;
        char *save = NULL;
        for (char *s = strtok_r(p, " \t\r", &save); s && nt < 7;
             s = strtok_r(NULL, " \t\r", &save))
            tok[nt++] = s;
        if (nt == 0) {
            /* blank line */
        } else if (nt != 6) {
            ret = mo_fail(MO_EFORMAT, "%s:%d: expected 'image score xmin ymin xmax ymax'", path,
                          line);
        } else {
            mo_voc_det d = { 0, cls, 0, { 0 } };
            name_idx key = { tok[0], 0 }, *f = bsearch(&key, idx, (size_t)ev->num_images,
                                                       sizeof(*idx), cmp_name);
            if (!f) {
                ret = mo_fail(MO_EFORMAT, "%s:%d: image '%s' is not in the image set", path, line,
                              tok[0]);
            } else if (parse_num(tok[1], &d.score) || parse_num(tok[2], &d.box[0]) ||
                       parse_num(tok[3], &d.box[1]) || parse_num(tok[4], &d.box[2]) ||
                       parse_num(tok[5], &d.box[3])) {
                ret = mo_fail(MO_EFORMAT, "%s:%d: a value is not a finite number", path, line);
            } else {
                d.image = f->i;
                ret = mo_voc_eval_add_detections(ev, &d, 1);
            }
        }
        p = e ? e + 1 : p + strlen(p);
    }
    free(idx);
    if (ret)
        ev->num_dt = start;
    return ret;
}

/* ----------------------------------------------------------------- evaluate */

static int cmp_u32(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int eval_image(mo_voc_eval *ev, int i, const uint32_t *dd, size_t nd, double thr,
                      uint32_t *order, uint32_t *tmp, double *keys, uint8_t *taken,
                      uint32_t *gcls)
{
    /* ev->gt is NULL when no image has an object of the classes (NULL + 0 is undefined) */
    const voc_obj *gt = ev->gt ? ev->gt + ev->gt_start[i] : NULL;
    const size_t ng = ev->gt_start[i + 1] - ev->gt_start[i];
    voc_rec *rec = &ev->recs[i];
    free(rec->scores);
    memset(rec, 0, sizeof(*rec));
    /* The classes of the image: of its ground truth (sorted) and of its detections (dd is
     * sorted by class, stable). */
    for (size_t k = 0; k < ng; k++)
        gcls[k] = gt[k].cls;
    qsort(gcls, ng, sizeof(*gcls), cmp_u32);
    size_t ncells = 0;
    for (size_t a = 0, b = 0; a < ng || b < nd; ncells++) {
        uint32_t c = a < ng ? gcls[a] : UINT32_MAX;
        if (b < nd && ev->dt[dd[b]].cls < c)
            c = ev->dt[dd[b]].cls;
        while (a < ng && gcls[a] == c)
            a++;
        while (b < nd && ev->dt[dd[b]].cls == c)
            b++;
    }
    size_t bytes = sizeof(voc_cell) * ncells + (sizeof(double) + 1) * nd;
    uint8_t *block = malloc(bytes ? bytes : 1);
    if (!block)
        return mo_fail(MO_ENOMEM, "out of memory");
    rec->scores = (double *)block; /* doubles first */
    rec->cells = (voc_cell *)(block + sizeof(double) * nd);
    rec->tags = block + sizeof(double) * nd + sizeof(voc_cell) * ncells;
    rec->ndet = (uint32_t)nd;
    rec->ncells = (uint32_t)ncells;
    ncells = 0;
    for (size_t a = 0, b = 0; a < ng || b < nd;) {
        uint32_t c = a < ng ? gcls[a] : UINT32_MAX;
        if (b < nd && ev->dt[dd[b]].cls < c)
            c = ev->dt[dd[b]].cls;
        while (a < ng && gcls[a] == c)
            a++;
        while (b < nd && ev->dt[dd[b]].cls == c)
            b++;
        rec->cells[ncells++] = (voc_cell){ c, 0, 0, 0 };
    }
    /* Cell of class c (present: the cells hold every class of gt and dd). */
#define CELL(c) ((voc_cell *)bsearch(&(uint32_t){ (c) }, rec->cells, rec->ncells, \
                                     sizeof(voc_cell), cmp_u32))
    for (size_t k = 0; k < ng; k++)
        CELL(gt[k].cls)->npos += !gt[k].difficult;
    /* dd is sorted by class (stable); walk the classes. */
    size_t j = 0, off = 0;
    while (j < nd) {
        const uint32_t c = ev->dt[dd[j]].cls;
        size_t j0 = j;
        while (j < nd && ev->dt[dd[j]].cls == c)
            j++;
        const size_t n = j - j0;
        for (size_t q = 0; q < n; q++) {
            order[q] = (uint32_t)q;
            keys[q] = ev->dt[dd[j0 + q]].score;
        }
        mo_eval_argsort_desc(keys, order, tmp, n);
        voc_cell *ce = CELL(c);
        ce->ndet = (uint32_t)n;
        ce->off = (uint32_t)off;
        memset(taken, 0, ng);
        for (size_t q = 0; q < n; q++) {
            const voc_dt *d = &ev->dt[dd[j0 + order[q]]];
            const double *bb = d->box;
            double ovmax = -INFINITY;
            long jmax = -1;
            for (size_t k = 0; k < ng; k++) {
                if (gt[k].cls != c)
                    continue;
                const double *g = gt[k].box;
                double iw = fmax(fmin(g[2], bb[2]) - fmax(g[0], bb[0]) + 1., 0.);
                double ih = fmax(fmin(g[3], bb[3]) - fmax(g[1], bb[1]) + 1., 0.);
                double inters = iw * ih;
                double uni = (bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) +
                             (g[2] - g[0] + 1.) * (g[3] - g[1] + 1.) - inters;
                double ov = inters / uni;
                if (isnan(ov)) { /* np.max / np.argmax stop at the first NaN */
                    ovmax = ov;
                    jmax = (long)k;
                    break;
                }
                if (ov > ovmax || jmax < 0) {
                    ovmax = ov;
                    jmax = (long)k;
                }
            }
            uint8_t tag = TAG_FP;
            if (jmax >= 0 && ovmax > thr) {
                if (gt[jmax].difficult)
                    tag = TAG_NONE;
                else if (!taken[jmax]) {
                    tag = TAG_TP;
                    taken[jmax] = 1;
                }
            }
            rec->scores[off + q] = d->score;
            rec->tags[off + q] = tag;
        }
        off += n;
    }
#undef CELL
    return MO_OK;
}

int mo_voc_eval_evaluate(mo_voc_eval *ev, double iou_threshold, int shard, int num_shards,
                         mo_eval_progress_fn progress, void *user)
{
    validate_input_or_ret(ev != NULL && num_shards >= 1 && shard >= 0 && shard < num_shards &&
                              iou_threshold >= 0 && iou_threshold <= 1,
                          MO_EINVAL);
    if (ev->from_state)
        return mo_fail(MO_EINVAL, "%s: opened from a state file: nothing to evaluate", ev->name);
    for (int i = 0; i < ev->num_images; i++)
        if (ev->evaluated[i] && ev->iou != iou_threshold)
            return mo_fail(MO_EINVAL, "images were evaluated at another IoU threshold");
    ev->iou = iou_threshold;
    const size_t ni = (size_t)ev->num_images, C = (size_t)ev->num_classes, N = ev->num_dt;
    uint32_t *a = malloc(sizeof(uint32_t) * (N + 1)), *b = malloc(sizeof(uint32_t) * (N + 1));
    size_t *cnt = calloc((ni > C ? ni : C) + 1, sizeof(size_t));
    size_t *start = calloc(ni + 1, sizeof(size_t));
    size_t maxg = 0;
    for (size_t i = 0; i < ni; i++)
        if (ev->gt_start[i + 1] - ev->gt_start[i] > maxg)
            maxg = ev->gt_start[i + 1] - ev->gt_start[i];
    uint32_t *order = malloc(sizeof(uint32_t) * (N + 1)), *tmp = malloc(sizeof(uint32_t) * (N + 1));
    double *keys = malloc(sizeof(double) * (N + 1));
    uint8_t *taken = malloc(maxg + 1);
    uint32_t *gcls = malloc(sizeof(uint32_t) * (maxg + 1));
    int ret = MO_OK;
    if (!a || !b || !cnt || !start || !order || !tmp || !keys || !taken || !gcls) {
        ret = mo_fail(MO_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < N; j++)
        cnt[ev->dt[j].cls + 1]++;
    for (size_t c = 0; c < C; c++)
        cnt[c + 1] += cnt[c];
    for (size_t j = 0; j < N; j++)
        a[cnt[ev->dt[j].cls]++] = (uint32_t)j;
    for (size_t j = 0; j < N; j++)
        start[ev->dt[j].img + 1]++;
    for (size_t i = 0; i < ni; i++)
        start[i + 1] += start[i];
    memcpy(cnt, start, sizeof(size_t) * ni);
    for (size_t j = 0; j < N; j++)
        b[cnt[ev->dt[a[j]].img]++] = a[j];
    size_t total = (ni + (size_t)num_shards - 1 - (size_t)shard) / (size_t)num_shards, done = 0;
    for (size_t i = (size_t)shard; i < ni && !ret; i += (size_t)num_shards) {
        ret = eval_image(ev, (int)i, b + start[i], start[i + 1] - start[i], iou_threshold, order,
                         tmp, keys, taken, gcls);
        if (!ret)
            ev->evaluated[i] = 1;
        if (progress)
            progress(user, ++done, total);
    }
done:
    free(a);
    free(b);
    free(cnt);
    free(start);
    free(order);
    free(tmp);
    free(keys);
    free(taken);
    free(gcls);
    ev->accumulated = 0;
    return ret;
}

/* --------------------------------------------------------------- accumulate */

static double ap_07(const double *rec, const double *prec, size_t n)
{
    double ap = 0.;
    for (int i = 0; i <= 10; i++) {
        const double t = i * 0.1; /* np.arange(0., 1.1, 0.1) */
        double p = 0;
        int any = 0;
        for (size_t j = 0; j < n; j++)
            if (rec[j] >= t && (!any || prec[j] > p)) {
                p = prec[j];
                any = 1;
            }
        ap = ap + p / 11.;
    }
    return ap;
}

static double ap_all(const double *rec, const double *prec, size_t n, double *mrec, double *mpre)
{
    mrec[0] = 0.;
    mpre[0] = 0.;
    for (size_t j = 0; j < n; j++) {
        mrec[j + 1] = rec[j];
        mpre[j + 1] = prec[j];
    }
    mrec[n + 1] = 1.;
    mpre[n + 1] = 0.;
    for (size_t j = n + 1; j > 0; j--)
        mpre[j - 1] = fmax(mpre[j - 1], mpre[j]);
    /* sum over i where mrec[i+1] != mrec[i] of (mrec[i+1] - mrec[i]) * mpre[i+1], in numpy's
     * summation order (the terms are packed into mrec's storage). */
    size_t m = 0;
    for (size_t i = 0; i + 1 < n + 2; i++)
        if (mrec[i + 1] != mrec[i])
            mrec[m++] = (mrec[i + 1] - mrec[i]) * mpre[i + 1];
    return mo_eval_pairwise_sum(mrec, m);
}

int mo_voc_eval_accumulate(mo_voc_eval *ev)
{
    validate_input_or_ret(ev != NULL, MO_EINVAL);
    for (int i = 0; i < ev->num_images; i++)
        if (!ev->evaluated[i])
            return mo_fail(MO_EINVAL, "%s: image %s has not been evaluated (a shard is missing?)",
                           ev->name, ev->images[i]);
    const size_t C = (size_t)ev->num_classes, I = (size_t)ev->num_images;
    /* The cells of each class in image order (the order of the classic code's concatenation). */
    size_t ncells = 0, maxn = 0;
    for (size_t i = 0; i < I; i++)
        ncells += ev->recs[i].ncells;
    size_t *cstart = calloc(C + 2, sizeof(size_t));
    const voc_cell **ccell = malloc(sizeof(*ccell) * (ncells + 1));
    const voc_rec **crec = malloc(sizeof(*crec) * (ncells + 1));
    double *scores = NULL, *m1 = NULL, *m2 = NULL;
    uint8_t *tags = NULL;
    uint32_t *order = NULL, *tmp = NULL;
    int ret = MO_OK;
    if (!cstart || !ccell || !crec) {
        ret = mo_fail(MO_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < I; i++)
        for (uint32_t k = 0; k < ev->recs[i].ncells; k++)
            cstart[ev->recs[i].cells[k].cls + 2]++;
    for (size_t c = 0; c < C; c++)
        cstart[c + 2] += cstart[c + 1];
    for (size_t i = 0; i < I; i++)
        for (uint32_t k = 0; k < ev->recs[i].ncells; k++) {
            size_t p = cstart[ev->recs[i].cells[k].cls + 1]++;
            ccell[p] = &ev->recs[i].cells[k];
            crec[p] = &ev->recs[i];
        }
    for (size_t c = 0; c < C; c++) {
        size_t n = 0;
        for (size_t p = cstart[c]; p < cstart[c + 1]; p++)
            n += ccell[p]->ndet;
        if (n > maxn)
            maxn = n;
    }
    scores = malloc(sizeof(double) * (maxn + 1));
    tags = malloc(maxn + 1);
    order = malloc(sizeof(uint32_t) * (maxn + 1));
    tmp = malloc(sizeof(uint32_t) * (maxn + 1));
    m1 = malloc(sizeof(double) * (maxn + 2));
    m2 = malloc(sizeof(double) * (maxn + 2));
    if (!scores || !tags || !order || !tmp || !m1 || !m2) {
        ret = mo_fail(MO_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < C; c++) {
        voc_curve *cv = &ev->curves[c];
        free(cv->rec);
        free(cv->prec);
        memset(cv, 0, sizeof(*cv));
        uint64_t npos = 0;
        size_t n = 0;
        for (size_t p = cstart[c]; p < cstart[c + 1]; p++) {
            const voc_rec *r = crec[p];
            const voc_cell *ce = ccell[p];
            npos += ce->npos;
            for (uint32_t q = 0; q < ce->ndet; q++) {
                scores[n] = r->scores[ce->off + q];
                tags[n] = r->tags[ce->off + q];
                order[n] = (uint32_t)n;
                n++;
            }
        }
        mo_eval_argsort_desc(scores, order, tmp, n);
        cv->rec = malloc(sizeof(double) * (n + 1));
        cv->prec = malloc(sizeof(double) * (n + 1));
        if (!cv->rec || !cv->prec) {
            ret = mo_fail(MO_ENOMEM, "out of memory");
            goto done;
        }
        cv->n = n;
        if (npos == 0) {
            cv->ap = cv->ap07 = -1;
            cv->n = 0;
            continue;
        }
        double tp = 0, fp = 0;
        for (size_t j = 0; j < n; j++) {
            const uint8_t t = tags[order[j]];
            tp += t == TAG_TP;
            fp += t == TAG_FP;
            cv->rec[j] = tp / (double)npos;
            cv->prec[j] = tp / fmax(tp + fp, 2.220446049250313e-16);
        }
        cv->ap07 = ap_07(cv->rec, cv->prec, n);
        cv->ap = ap_all(cv->rec, cv->prec, n, m1, m2);
    }
    ev->accumulated = 1;
done:
    free(cstart);
    free(ccell);
    free(crec);
    free(scores);
    free(tags);
    free(order);
    free(tmp);
    free(m1);
    free(m2);
    return ret;
}

double mo_voc_eval_ap(const mo_voc_eval *ev, int cls, int use_07)
{
    if (!ev || !ev->accumulated || cls < 0 || cls >= ev->num_classes)
        return -1;
    return use_07 ? ev->curves[cls].ap07 : ev->curves[cls].ap;
}

double mo_voc_eval_map(const mo_voc_eval *ev, int use_07)
{
    if (!ev || !ev->accumulated)
        return -1;
    double s = 0;
    int n = 0;
    for (int c = 0; c < ev->num_classes; c++) {
        double ap = mo_voc_eval_ap(ev, c, use_07);
        if (ap >= 0) {
            s += ap;
            n++;
        }
    }
    return n ? s / n : -1;
}

int mo_voc_eval_pr_curve(const mo_voc_eval *ev, int cls, const double **recall,
                         const double **precision, size_t *n)
{
    validate_input_or_ret(ev != NULL && recall != NULL && precision != NULL && n != NULL &&
                              cls >= 0 && cls < ev->num_classes,
                          MO_EINVAL);
    if (!ev->accumulated)
        return mo_fail(MO_EINVAL, "not accumulated");
    *recall = ev->curves[cls].rec;
    *precision = ev->curves[cls].prec;
    *n = ev->curves[cls].n;
    return MO_OK;
}

/* -------------------------------------------------------------------- states */

int mo_voc_eval_save_state(const mo_voc_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    mo_wbuf b = { 0 };
    mo_wbuf_header(&b, MO_STATE_VOC);
    mo_wbuf_u64(&b, ev->fingerprint);
    mo_wbuf_f64(&b, ev->iou);
    mo_wbuf_u32(&b, (uint32_t)ev->num_classes);
    for (int c = 0; c < ev->num_classes; c++)
        mo_wbuf_str(&b, ev->classes[c]);
    mo_wbuf_u32(&b, (uint32_t)ev->num_images);
    for (int i = 0; i < ev->num_images; i++)
        mo_wbuf_str(&b, ev->images[i]);
    uint32_t ne = 0;
    for (int i = 0; i < ev->num_images; i++)
        ne += ev->evaluated[i];
    mo_wbuf_u32(&b, ne);
    for (int i = 0; i < ev->num_images; i++) {
        if (!ev->evaluated[i])
            continue;
        const voc_rec *r = &ev->recs[i];
        mo_wbuf_u32(&b, (uint32_t)i);
        mo_wbuf_u32(&b, r->ndet);
        mo_wbuf_u32(&b, r->ncells);
        for (uint32_t k = 0; k < r->ncells; k++) {
            mo_wbuf_u32(&b, r->cells[k].cls);
            mo_wbuf_u32(&b, r->cells[k].npos);
            mo_wbuf_u32(&b, r->cells[k].ndet);
        }
        for (uint32_t j = 0; j < r->ndet; j++)
            mo_wbuf_f64(&b, r->scores[j]);
        mo_wbuf_put(&b, r->tags, r->ndet);
    }
    return mo_wbuf_finish(&b, path);
}

static int read_records(mo_voc_eval *ev, mo_rbuf *r)
{
    const uint32_t C = (uint32_t)ev->num_classes;
    uint32_t ne = mo_rbuf_u32(r);
    if (mo_rbuf_check_count(r, ne, 12))
        return r->err;
    for (uint32_t e = 0; e < ne; e++) {
        uint32_t i = mo_rbuf_u32(r), nd = mo_rbuf_u32(r), nc = mo_rbuf_u32(r);
        if (r->err)
            return r->err;
        if (i >= (uint32_t)ev->num_images)
            return mo_rbuf_fail(r, "image index out of range");
        if (ev->evaluated[i])
            return mo_fail(MO_EMISMATCH, "%s: image %s is already evaluated (overlapping shards)",
                           r->name, ev->images[i]);
        if (mo_rbuf_check_count(r, nc, 12) || mo_rbuf_check_count(r, nd, 9))
            return r->err;
        if (nc > C)
            return mo_rbuf_fail(r, "bad record");
        voc_rec *rec = &ev->recs[i];
        uint8_t *block = malloc(sizeof(voc_cell) * nc + (sizeof(double) + 1) * nd + 1);
        if (!block)
            return mo_fail(MO_ENOMEM, "out of memory");
        free(rec->scores); /* left by an earlier failed load */
        rec->scores = (double *)block;
        rec->cells = (voc_cell *)(block + sizeof(double) * nd);
        rec->tags = block + sizeof(double) * nd + sizeof(voc_cell) * nc;
        rec->ndet = nd;
        rec->ncells = 0; /* until the record is whole */
        uint32_t off = 0;
        for (uint32_t k = 0; k < nc; k++) {
            voc_cell *ce = &rec->cells[k];
            ce->cls = mo_rbuf_u32(r);
            ce->npos = mo_rbuf_u32(r);
            ce->ndet = mo_rbuf_u32(r);
            ce->off = off;
            if (!r->err && (ce->cls >= C || (k && ce->cls <= rec->cells[k - 1].cls) ||
                            ce->ndet > nd - off))
                mo_rbuf_fail(r, "bad record");
            if (r->err)
                return r->err;
            off += ce->ndet;
        }
        if (off != nd)
            return mo_rbuf_fail(r, "bad record");
        for (uint32_t j = 0; j < nd; j++)
            rec->scores[j] = mo_rbuf_f64(r);
        const uint8_t *t = mo_rbuf_bytes(r, nd);
        if (!t)
            return r->err;
        for (uint32_t j = 0; j < nd; j++)
            if (t[j] > TAG_FP)
                return mo_rbuf_fail(r, "bad record");
        memcpy(rec->tags, t, nd);
        rec->ncells = nc;
        ev->evaluated[i] = 1;
    }
    if (r->pos != r->size)
        return mo_rbuf_fail(r, "trailing bytes");
    return MO_OK;
}

int mo_voc_eval_open_state_memory(mo_voc_eval **out, const uint8_t *data, size_t size,
    const char *path)
{
    validate_input_or_ret(out != NULL && path != NULL && (data != NULL || !size), MO_EINVAL);
    *out = NULL;
    mo_rbuf r;
    int ret = mo_rbuf_open_memory(&r, data, size, path, MO_STATE_VOC);
    mo_voc_eval *ev = NULL;
    if (!ret && (!(ev = calloc(1, sizeof(*ev))) || !(ev->name = dup_str(path))))
        ret = mo_fail(MO_ENOMEM, "out of memory");
    if (!ret) {
        ev->from_state = 1;
        ev->fingerprint = mo_rbuf_u64(&r);
        ev->iou = mo_rbuf_f64(&r);
        uint32_t nc = mo_rbuf_u32(&r);
        if (!r.err && (ret = mo_eval_check_limit(path, nc, MO_EVAL_LIMIT_CATEGORIES)))
            r.err = ret;
        if (!mo_rbuf_check_count(&r, nc, 4) && nc > 0) {
            if (!(ev->classes = calloc(nc + 1, sizeof(char *))))
                ret = mo_fail(MO_ENOMEM, "out of memory");
            for (uint32_t c = 0; c < nc && !ret && !r.err; c++) {
                ev->classes[c] = mo_rbuf_str(&r);
                ev->num_classes = (int)c + 1;
            }
        } else if (!r.err) {
            mo_rbuf_fail(&r, "no classes");
        }
        uint32_t ni = mo_rbuf_u32(&r);
        if (!ret && !r.err && (ret = mo_eval_check_limit(path, ni, MO_EVAL_LIMIT_IMAGES)))
            r.err = ret;
        if (!ret && !mo_rbuf_check_count(&r, ni, 4)) {
            if (!(ev->images = calloc(ni + 1, sizeof(char *))))
                ret = mo_fail(MO_ENOMEM, "out of memory");
            for (uint32_t i = 0; i < ni && !ret && !r.err; i++) {
                ev->images[i] = mo_rbuf_str(&r);
                ev->num_images = (int)i + 1;
            }
        }
        if (!ret)
            ret = r.err;
        if (!ret)
            ret = alloc_common(ev);
        if (!ret)
            ret = read_records(ev, &r);
    }
    if (ret) {
        mo_voc_eval_close(&ev);
        return ret;
    }
    *out = ev;
    return MO_OK;
}

int mo_voc_eval_open_state(mo_voc_eval **out, const char *path)
{
    validate_input_or_ret(out != NULL && path != NULL, MO_EINVAL);
    *out = NULL;
    char *file;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &file, &size);
    if (!ret)
        ret = mo_voc_eval_open_state_memory(out, (const uint8_t *)file, size, path);
    free(file);
    return ret;
}

int mo_voc_eval_load_state_memory(mo_voc_eval *ev, const uint8_t *data, size_t size,
    const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL && (data != NULL || !size), MO_EINVAL);
    mo_rbuf r;
    int ret = mo_rbuf_open_memory(&r, data, size, path, MO_STATE_VOC);
    if (!ret) {
        uint64_t fp = mo_rbuf_u64(&r);
        double iou = mo_rbuf_f64(&r);
        uint32_t nc = mo_rbuf_u32(&r);
        for (uint32_t c = 0; c < nc && !r.err; c++)
            free(mo_rbuf_str(&r));
        uint32_t ni = mo_rbuf_u32(&r);
        for (uint32_t i = 0; i < ni && !r.err; i++)
            free(mo_rbuf_str(&r));
        ret = r.err;
        int any = 0;
        for (int i = 0; i < ev->num_images; i++)
            any |= ev->evaluated[i];
        if (!ret && (fp != ev->fingerprint || nc != (uint32_t)ev->num_classes ||
                     ni != (uint32_t)ev->num_images))
            ret = mo_fail(MO_EMISMATCH, "%s: evaluated on another image set or classes than %s",
                          path, ev->name);
        if (!ret && any && iou != ev->iou)
            ret = mo_fail(MO_EMISMATCH, "%s: evaluated at IoU %g, not %g", path, iou, ev->iou);
        if (!ret) {
            ev->iou = iou;
            ret = read_records(ev, &r);
        }
    }
    ev->accumulated = 0;
    return ret;
}

int mo_voc_eval_load_state(mo_voc_eval *ev, const char *path)
{
    validate_input_or_ret(ev != NULL && path != NULL, MO_EINVAL);
    char *file;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &file, &size);
    if (!ret)
        ret = mo_voc_eval_load_state_memory(ev, (const uint8_t *)file, size, path);
    free(file);
    return ret;
}
