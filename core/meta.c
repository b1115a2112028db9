/*
 * Model metadata: every field the SDK reads, its accepted range and default, in one table,
 * and the only parser of its values (mo_internal/meta.h). Values are JSON text stored as
 * strings (weights/FORMAT.md): a number ("0.2"), a list of numbers ("[10,10,5,5]"), a list
 * of lists ("[[2,3],[2]]") or a list of strings (class names).
 *
 * The lists are parsed here rather than with json-c: only these four shapes are valid, the
 * parser allocates nothing (names: one block, sized by a first pass), and it refuses what
 * json-c would accept and then turn into garbage (NaN, Infinity, numbers that overflow).
 *
 * Ranges follow what the values mean (REFERENCE.md section 2 for the detection head):
 * default box scales are fractions of the image (SSD: 0.2..0.95, 1.0 for the last), aspect
 * ratios are w/h of a box, box coder weights divide regression codes, box_clip bounds
 * dw, dh before exp(), a BatchNorm epsilon is a small non-negative number.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "mo_internal/meta.h"
#include "mo/detect.h"
#include "mo/limits.h"
#include "mo/segment.h"

enum kind { NUM, LIST, NESTED, NAMES, IDS };
enum { F_INT = 1, F_EVEN = 2, F_STRIDE = 4 };

typedef struct field {
    const char *key;
    enum kind kind;
    int flags;
    int min_n, max_n;  /* list length (NESTED: outer lists) */
    double lo, hi;     /* range of every value, inclusive */
    int ndef;          /* values of the default, 0 = none */
    double def[4];
} field;

#define SIDE MO_MAX_INPUT_SIDE

static const field fields[] = {
    /* every file */
    {"mo.bn_eps", NUM, 0, 1, 1, 0, 1, 1, {1e-5}},
    {"mo.mean", LIST, 0, 3, 3, -1000, 1000, 3, {0.485, 0.456, 0.406}},
    {"mo.std", LIST, 0, 3, 3, 1e-6, 1000, 3, {0.229, 0.224, 0.225}},
    {"mo.input_size", LIST, F_INT, 2, 2, 1, SIDE, 0, {0}},
    {"mo.contents", NAMES, 0, 0, 0, 0, 0, 0, {0}},
    /* classification */
    {"cls.classes", NAMES, 0, 1, 0, 0, 0, 0, {0}},
    {"cls.resize", NUM, F_INT, 1, 1, 1, SIDE, 1, {256}},
    {"cls.crop", NUM, F_INT, 1, 1, 1, SIDE, 1, {224}},
    /* segmentation */
    {"seg.classes", NAMES, 0, 1, 0, 0, 0, 0, {0}},
    {"seg.rates", LIST, F_INT, 1, MO_SEG_MAX_RATES, 1, MO_SEG_MAX_RATE, 3, {12, 24, 36}},
    {"seg.output_stride", NUM, F_INT | F_STRIDE, 1, 1, 8, 32, 1, {16}},
    {"seg.bn_eps", NUM, 0, 1, 1, 0, 1, 1, {1e-5}},
    /* detection */
    {"det.classes", NAMES, 0, 2, 0, 0, 0, 0, {0}},
    {"det.num_classes", NUM, F_INT, 1, 1, 2, 1e9, 0, {0}},
    /* dataset category ids of classes 1..K-1 (COCO json ids are non-negative integers) */
    {"det.category_ids", IDS, F_INT, 1, 0, 0, 2147483647, 0, {0}},
    {"det.input_size", LIST, F_INT, 2, 2, 1, SIDE, 2, {320, 320}},
    {"det.aspect_ratios", NESTED, 0, 1, MO_DET_MAX_LEVELS, 0.01, 100, 0, {0}},
    {"det.min_ratio", NUM, 0, 1, 1, 1e-3, 10, 1, {0.2}},
    {"det.max_ratio", NUM, 0, 1, 1, 1e-3, 10, 1, {0.95}},
    {"det.scales", LIST, 0, 2, MO_DET_MAX_LEVELS + 1, 1e-3, 10, 0, {0}},
    {"det.clip_anchors", NUM, F_INT, 1, 1, 0, 1, 1, {1}},
    {"det.extra_channels", LIST, F_INT | F_EVEN, 1, MO_DET_MAX_LEVELS - 2, 2, 65536, 4,
     {512, 256, 256, 128}},
    /* inner widths of the stride-1 blocks on stage3 / stage4 before the head, 0 = none */
    {"det.neck_channels", LIST, F_INT, 2, 2, 0, 65536, 2, {0, 0}},
    {"det.bn_eps", NUM, 0, 1, 1, 0, 1, 1, {1e-3}},
    {"det.box_weights", LIST, 0, 4, 4, 1e-3, 1e3, 4, {10, 10, 5, 5}},
    {"det.box_clip", NUM, 0, 1, 1, 1e-3, 20, 1, {4.135166556742356}}, /* log(1000 / 16) */
};

static const field *find_field(const char *key)
{
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!strcmp(fields[i].key, key))
            return &fields[i];
    return NULL;
}

static const field *lookup(const char *key, enum kind kind, const char *fn)
{
    const field *fd = key ? find_field(key) : NULL;
    if (!fd || fd->kind != kind)
        mo_fail(MO_EINVAL, "%s: %s is not a metadata field of that kind", fn,
                key ? key : "(null)");
    return fd && fd->kind == kind ? fd : NULL;
}

/* ------------------------------------------------------------------ lexing */

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

/* Consume c if it comes next (never steps past the end of the text). */
static int eat(const char **p, char c)
{
    if (**p != c)
        return 0;
    (*p)++;
    return 1;
}

/* A JSON number token; strtod reads a copy, so "0x10", "nan" or "inf" are never numbers. */
static int lex_number(const char **p, double *v)
{
    const char *s = *p, *q = s;
    if (*q == '-')
        q++;
    if (!isdigit((unsigned char)*q))
        return 0;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.') {
        if (!isdigit((unsigned char)*++q))
            return 0;
        while (isdigit((unsigned char)*q))
            q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!isdigit((unsigned char)*q))
            return 0;
        while (isdigit((unsigned char)*q))
            q++;
    }
    char buf[64];
    if (q - s >= (ptrdiff_t)sizeof(buf))
        return 0;
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = 0;
    *v = strtod(buf, NULL); /* overflow gives inf: refused by the range check */
    *p = q;
    return 1;
}

static int hex4(const char *s, unsigned *u)
{
    *u = 0;
    for (int i = 0; i < 4; i++) {
        const int c = (unsigned char)s[i];
        const int d = isdigit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        *u = *u << 4 | (unsigned)d;
    }
    return 1;
}

/* A JSON string: its UTF-8 bytes into out (when not NULL), their number into *len. Refuses
 * raw control characters, bad escapes, lone surrogates and NUL (it would cut the name). */
static int lex_string(const char **p, char *out, size_t *len)
{
    const char *s = *p;
    size_t n = 0;
    if (*s++ != '"')
        return 0;
    for (;;) {
        unsigned c = (unsigned char)*s++;
        if (c == '"')
            break;
        if (c < 0x20)
            return 0; /* includes the end of the text */
        if (c != '\\') {
            if (out)
                out[n] = (char)c;
            n++;
            continue;
        }
        const char e = *s++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            if (out)
                out[n] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            n++;
            continue;
        }
        if (e != 'u' || !hex4(s, &c))
            return 0;
        s += 4;
        if (c >= 0xdc00 && c <= 0xdfff)
            return 0;
        if (c >= 0xd800 && c <= 0xdbff) {
            unsigned lo;
            if (s[0] != '\\' || s[1] != 'u' || !hex4(s + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                return 0;
            s += 6;
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (!c)
            return 0;
        unsigned char u[4];
        int k;
        if (c < 0x80) {
            u[0] = (unsigned char)c;
            k = 1;
        } else if (c < 0x800) {
            u[0] = (unsigned char)(0xc0 | c >> 6);
            u[1] = (unsigned char)(0x80 | (c & 0x3f));
            k = 2;
        } else if (c < 0x10000) {
            u[0] = (unsigned char)(0xe0 | c >> 12);
            u[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
            u[2] = (unsigned char)(0x80 | (c & 0x3f));
            k = 3;
        } else {
            u[0] = (unsigned char)(0xf0 | c >> 18);
            u[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
            u[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
            u[3] = (unsigned char)(0x80 | (c & 0x3f));
            k = 4;
        }
        if (out)
            memcpy(out + n, u, (size_t)k);
        n += (size_t)k;
    }
    *p = s;
    *len = n;
    return 1;
}

/* '[' number (',' number)* ']' or "[]"; up to max values into v. Returns the count, -1 when
 * malformed, -2 when longer than max. */
static int lex_numbers(const char **p, double *v, int max)
{
    int n = 0;
    skip_ws(p);
    if (!eat(p, '['))
        return -1;
    skip_ws(p);
    if (eat(p, ']'))
        return 0;
    for (;;) {
        double x;
        skip_ws(p);
        if (!lex_number(p, &x))
            return -1;
        if (n == max)
            return -2;
        v[n++] = x;
        skip_ws(p);
        if (eat(p, ']'))
            return n;
        if (!eat(p, ','))
            return -1;
    }
}

/* ------------------------------------------------------------------ checks */

static int refuse_value(const field *fd, int index, double x)
{
    char name[80];
    if (index >= 0)
        snprintf(name, sizeof(name), "%s[%d]", fd->key, index);
    else
        snprintf(name, sizeof(name), "%s", fd->key);
    if (fd->lo > 0 && !(x > 0))
        return mo_fail(MO_EFORMAT, "metadata %s = %g must be positive (accepted: %g..%g)", name,
                       x, fd->lo, fd->hi);
    if (fd->flags & F_STRIDE)
        return mo_fail(MO_EFORMAT, "metadata %s = %g must be 8, 16 or 32", name, x);
    if (fd->flags & F_EVEN)
        return mo_fail(MO_EFORMAT, "metadata %s = %g must be an even integer in %g..%g", name, x,
                       fd->lo, fd->hi);
    return mo_fail(MO_EFORMAT, "metadata %s = %g must be %s in %g..%g", name, x,
                   fd->flags & F_INT ? "an integer" : "a finite number", fd->lo, fd->hi);
}

static int check_value(const field *fd, int index, double x)
{
    int ok = isfinite(x) && x >= fd->lo && x <= fd->hi;
    if (ok && (fd->flags & F_INT))
        ok = x == floor(x);
    if (ok && (fd->flags & F_EVEN))
        ok = fmod(x, 2.0) == 0.0;
    if (ok && (fd->flags & F_STRIDE))
        ok = x == 8 || x == 16 || x == 32;
    return ok ? MO_OK : refuse_value(fd, index, x);
}

static int refuse_list(const field *fd, const char *s)
{
    char len[32];
    if (fd->min_n == fd->max_n)
        snprintf(len, sizeof(len), "%d", fd->min_n);
    else
        snprintf(len, sizeof(len), "%d..%d", fd->min_n, fd->max_n);
    return mo_fail(MO_EFORMAT, "metadata %s = %.80s is not a JSON list of %s %s", fd->key, s,
                   len, fd->flags & F_INT ? "integers" : "finite numbers");
}

/* ------------------------------------------------------------------ readers */

static int read_number(const mo_file *f, const field *fd, double *out)
{
    const char *s = mo_file_meta(f, fd->key);
    if (!s) {
        if (fd->ndef)
            *out = fd->def[0];
        return MO_OK;
    }
    const char *p = s;
    double x;
    skip_ws(&p);
    if (!lex_number(&p, &x) || (skip_ws(&p), *p))
        return mo_fail(MO_EFORMAT, "metadata %s = \"%.80s\" is not a number", fd->key, s);
    int ret = check_value(fd, -1, x);
    if (!ret)
        *out = x;
    return ret;
}

static int read_list(const mo_file *f, const field *fd, double *v, int max, int *n)
{
    *n = 0;
    const char *s = mo_file_meta(f, fd->key);
    if (!s) {
        for (int i = 0; i < fd->ndef && i < max; i++)
            v[i] = fd->def[i];
        *n = fd->ndef < max ? fd->ndef : max;
        return MO_OK;
    }
    double tmp[MO_DET_MAX_LEVELS + 1];
    const char *p = s;
    const int k = lex_numbers(&p, tmp, fd->max_n);
    skip_ws(&p);
    if (k == -2)
        return mo_fail(MO_EUNSUPPORTED, "metadata %s = %.80s: at most %d values are supported",
                       fd->key, s, fd->max_n);
    if (k < fd->min_n || *p)
        return refuse_list(fd, s);
    for (int i = 0; i < k; i++) {
        int ret = check_value(fd, i, tmp[i]);
        if (ret)
            return ret;
    }
    memcpy(v, tmp, sizeof(double) * (size_t)k);
    *n = k;
    return MO_OK;
}

int mo_meta_list(const mo_file *f, const char *key, double *v, int max, int *n)
{
    validate_input_or_ret(f && v && n, MO_EINVAL);
    *n = 0;
    const field *fd = lookup(key, LIST, "mo_meta_list");
    if (!fd)
        return MO_EINVAL;
    validate_input_or_ret(max >= fd->max_n && max >= fd->ndef, MO_EINVAL);
    return read_list(f, fd, v, max, n);
}

int mo_meta_nested(const mo_file *f, const char *key, double *v, int max_outer, int max_inner,
                   int *nouter, int *ninner)
{
    validate_input_or_ret(f && v && nouter && ninner, MO_EINVAL);
    *nouter = 0;
    const field *fd = lookup(key, NESTED, "mo_meta_nested");
    if (!fd)
        return MO_EINVAL;
    validate_input_or_ret(max_outer >= fd->max_n && max_inner > 0, MO_EINVAL);
    const char *s = mo_file_meta(f, key);
    if (!s)
        return MO_OK;
    const char *p = s;
    int n = 0, ok;
    skip_ws(&p);
    ok = eat(&p, '[');
    skip_ws(&p);
    if (ok && *p == ']')
        ok = 0; /* at least one list */
    while (ok) {
        if (n == fd->max_n) {
            ok = 0;
            break;
        }
        const int k = lex_numbers(&p, v + (size_t)n * max_inner, max_inner);
        if (k < 0) {
            ok = 0;
            break;
        }
        ninner[n++] = k;
        skip_ws(&p);
        if (eat(&p, ']'))
            break;
        ok = eat(&p, ',');
    }
    skip_ws(&p);
    if (!ok || *p)
        return mo_fail(MO_EFORMAT, "metadata %s = %.80s is not a JSON list of 1..%d lists of "
                       "0..%d numbers", key, s, fd->max_n, max_inner);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ninner[i]; j++) {
            const double x = v[(size_t)i * max_inner + j];
            if (!(isfinite(x) && x >= fd->lo && x <= fd->hi))
                return mo_fail(MO_EFORMAT, "metadata %s[%d][%d] = %g must be %s (accepted: "
                               "%g..%g)", key, i, j, x, x > 0 ? "a finite number" : "positive",
                               fd->lo, fd->hi);
        }
    *nouter = n;
    return MO_OK;
}

/* Pass over a list of strings: count them and their bytes; with names, fill the block.
 * Returns 1, 0 when malformed, -1 when element *n is not a string. */
static int scan_names(const char *s, int *n, size_t *bytes, char **names, char *text)
{
    *n = 0;
    const char *p = s;
    size_t used = 0;
    int k = 0;
    skip_ws(&p);
    if (!eat(&p, '['))
        return 0;
    skip_ws(&p);
    if (!eat(&p, ']')) {
        for (;;) {
            size_t len;
            skip_ws(&p);
            *n = k;
            if (!lex_string(&p, text ? text + used : NULL, &len))
                return -1;
            if (names) {
                names[k] = text + used;
                text[used + len] = 0;
            }
            used += len + 1;
            k++;
            skip_ws(&p);
            if (eat(&p, ']'))
                break;
            if (!eat(&p, ','))
                return 0;
        }
    }
    skip_ws(&p);
    if (*p)
        return 0;
    *n = k;
    *bytes = used;
    return 1;
}

/* The count of a list of names, checked; the names themselves when out is not NULL. */
static int read_names(const mo_file *f, const field *fd, char ***out, int *count)
{
    const char *s = mo_file_meta(f, fd->key);
    if (!s)
        return mo_fail(MO_EFORMAT, "metadata %s is missing", fd->key);
    int n;
    size_t bytes;
    const int ok = scan_names(s, &n, &bytes, NULL, NULL);
    if (ok < 0)
        return mo_fail(MO_EFORMAT, "metadata %s = %.80s is not a JSON list of names (%s[%d] "
                       "is not a JSON string)", fd->key, s, fd->key, n);
    if (!ok)
        return mo_fail(MO_EFORMAT, "metadata %s = %.80s is not a JSON list of names", fd->key,
                       s);
    if (n < fd->min_n)
        return mo_fail(MO_EFORMAT, "metadata %s lists %d names, at least %d needed", fd->key, n,
                       fd->min_n);
    mo_limits lim;
    mo_limits_get(&lim);
    if (n > lim.max_categories)
        return mo_fail(MO_EUNSUPPORTED, "metadata %s lists %d names, over the limit "
                       "max_categories %lld", fd->key, n, (long long)lim.max_categories);
    *count = n;
    if (!out)
        return MO_OK;
    char **names = malloc(sizeof(char *) * (size_t)n + bytes + 1);
    if (!names)
        return mo_fail(MO_ENOMEM, "out of memory for the %d names of %s", n, fd->key);
    scan_names(s, &n, &bytes, names, (char *)(names + n));
    *out = names;
    return MO_OK;
}

int mo_meta_names(const mo_file *f, const char *key, char ***names, int *n)
{
    validate_input_or_ret(f && names && n, MO_EINVAL);
    *names = NULL;
    *n = 0;
    const field *fd = lookup(key, NAMES, "mo_meta_names");
    return fd ? read_names(f, fd, names, n) : MO_EINVAL;
}

/* Pass over a JSON list of numbers of any length: count them; with v, store them. Returns 1,
 * 0 when malformed. */
static int scan_ints(const char *s, int *n, double *v)
{
    const char *p = s;
    int k = 0;
    *n = 0;
    skip_ws(&p);
    if (!eat(&p, '['))
        return 0;
    skip_ws(&p);
    if (!eat(&p, ']')) {
        for (;;) {
            double x;
            skip_ws(&p);
            if (!lex_number(&p, &x))
                return 0;
            if (v)
                v[k] = x;
            k++;
            skip_ws(&p);
            if (eat(&p, ']'))
                break;
            if (!eat(&p, ','))
                return 0;
        }
    }
    skip_ws(&p);
    if (*p)
        return 0;
    *n = k;
    return 1;
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int mo_meta_ids(const mo_file *f, const char *key, int **ids, int *n)
{
    validate_input_or_ret(f && ids && n, MO_EINVAL);
    *ids = NULL;
    *n = 0;
    const field *fd = lookup(key, IDS, "mo_meta_ids");
    if (!fd)
        return MO_EINVAL;
    const char *s = mo_file_meta(f, key);
    if (!s)
        return MO_OK;
    int k;
    if (!scan_ints(s, &k, NULL) || k < fd->min_n)
        return mo_fail(MO_EFORMAT, "metadata %s = %.80s is not a JSON list of integers", key, s);
    mo_limits lim;
    mo_limits_get(&lim);
    if (k > lim.max_categories)
        return mo_fail(MO_EUNSUPPORTED, "metadata %s lists %d ids, over the limit "
                       "max_categories %lld", key, k, (long long)lim.max_categories);
    double *v = malloc(sizeof(double) * (size_t)k);
    int *out = malloc(sizeof(int) * (size_t)k);
    int *sorted = malloc(sizeof(int) * (size_t)k);
    int ret = MO_OK;
    if (!v || !out || !sorted) {
        ret = mo_fail(MO_ENOMEM, "out of memory for the %d values of %s", k, key);
        goto done;
    }
    scan_ints(s, &k, v);
    for (int i = 0; i < k; i++) {
        if ((ret = check_value(fd, i, v[i])))
            goto done;
        out[i] = sorted[i] = (int)v[i];
    }
    qsort(sorted, (size_t)k, sizeof(int), cmp_int);
    for (int i = 1; i < k; i++)
        if (sorted[i] == sorted[i - 1]) {
            ret = mo_fail(MO_EFORMAT, "metadata %s lists id %d twice", key, sorted[i]);
            goto done;
        }
    *ids = out;
    *n = k;
    out = NULL;
done:
    free(v);
    free(out);
    free(sorted);
    return ret;
}

int mo_meta_contains(const mo_file *f, const char *what, int *found)
{
    validate_input_or_ret(f && what && found, MO_EINVAL);
    *found = 0;
    char **names;
    int n;
    int ret = mo_meta_names(f, "mo.contents", &names, &n);
    if (ret)
        return ret;
    for (int i = 0; i < n; i++)
        *found |= !strcmp(names[i], what);
    free(names);
    return MO_OK;
}

/* ------------------------------------------------------------------ public */

int mo_file_meta_number(const mo_file *f, const char *key, double *value)
{
    validate_input_or_ret(f && value, MO_EINVAL);
    const field *fd = lookup(key, NUM, "mo_file_meta_number");
    return fd ? read_number(f, fd, value) : MO_EINVAL;
}

int mo_file_meta_floats(const mo_file *f, const char *key, float *v, int n)
{
    validate_input_or_ret(f && v, MO_EINVAL);
    const field *fd = lookup(key, LIST, "mo_file_meta_floats");
    if (!fd)
        return MO_EINVAL;
    if (fd->min_n != n || fd->max_n != n)
        return mo_fail(MO_EINVAL, "mo_file_meta_floats: %s is not a list of %d numbers", key, n);
    double d[MO_DET_MAX_LEVELS + 1];
    int k;
    int ret = read_list(f, fd, d, n, &k);
    for (int i = 0; !ret && i < k; i++)
        v[i] = (float)d[i];
    return ret;
}

int mo_file_preprocess(const mo_file *f, float mean[3], float std[3])
{
    validate_input_or_ret(f && mean && std, MO_EINVAL);
    float m[3], s[3];
    int ret = mo_file_meta_floats(f, "mo.mean", m, 3);
    if (!ret)
        ret = mo_file_meta_floats(f, "mo.std", s, 3);
    if (ret)
        return ret;
    memcpy(mean, m, sizeof(m));
    memcpy(std, s, sizeof(s));
    return MO_OK;
}
