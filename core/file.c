/* Model file loader: safetensors with the SDK's metadata (weights/FORMAT.md).
 * The whole file is read once and validated before any tensor is handed out. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "mo_internal/errors.h"
#include "mo_internal/fileio.h"
#include "mo_internal/json.h"
#include "mo/file.h"

#define MAX_HEADER_BYTES (64u << 20)
#define MAX_NUMEL ((int64_t)1 << 40)

typedef struct entry {
    char *name;
    mo_dtype dtype;
    int ndim;
    int64_t shape[MO_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* relative to the data area */
    uint32_t crc;
    int crc_listed;
} entry;

typedef struct meta {
    char *key, *value;
} meta;

struct mo_file {
    uint8_t *bytes; /* the whole file */
    size_t size;
    const uint8_t *data; /* data area */
    uint64_t data_size;
    entry *t;
    int nt;
    meta *m;
    int nm;
};

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(((const meta *)a)->key, ((const meta *)b)->key);
}

static int cmp_entry_begin(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static size_t dtype_size(mo_dtype d)
{
    return d == MO_DTYPE_F16 ? 2 : 4;
}

static const char *dtype_name(mo_dtype d)
{
    return d == MO_DTYPE_F16 ? "F16" : "F32";
}

static const entry *find_entry(const mo_file *f, const char *name)
{
    entry key = { .name = (char *)name };
    return bsearch(&key, f->t, (size_t)f->nt, sizeof(entry), cmp_entry_name);
}

const char *mo_file_meta(const mo_file *f, const char *key)
{
    if (!f || !key || !f->nm)
        return NULL;
    const meta k = { .key = (char *)key };
    const meta *m = bsearch(&k, f->m, (size_t)f->nm, sizeof(meta), cmp_meta_key);
    return m ? m->value : NULL;
}

/* ---------------------------------------------------------------- the header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "value", ...}} read by the SDK's JSON reader (mo_internal/json.h)
 * in two passes: the first checks the syntax and counts (no allocation), the second fills
 * the tables. Out of memory is MO_ENOMEM, never "not valid JSON". */

static int is_number_start(int c)
{
    return c == '-' || (c >= '0' && c <= '9');
}

/* Is the raw (undecoded) key `lit`? Keys of the format have no escapes. */
static int raw_is(const char *k, size_t len, const char *lit)
{
    return len == strlen(lit) && !memcmp(k, lit, len);
}

/* A JSON list of at most max non-negative integers into v. 0 when it is one (*n: the
 * count); else 1 when it is not a list, 2 when it is longer, 3 when element *n is not such
 * an integer, or j->err (MO_ENOMEM: the reader could not allocate). */
static int read_sizes(mo_jp *j, uint64_t *v, int max, int *n)
{
    int count = 0;
    *n = 0;
    if (mo_jp_peek(j) != '[')
        return 1;
    if (mo_jp_begin(j, '['))
        return j->err;
    while (mo_jp_next(j, ']', &count)) {
        int64_t x;
        int is_int;
        *n = count - 1;
        if (count > max)
            return 2;
        if (!is_number_start(mo_jp_peek(j)))
            return 3;
        if (mo_jp_int(j, &x, &is_int))
            return j->err;
        if (!is_int || x < 0)
            return 3;
        v[count - 1] = (uint64_t)x;
    }
    *n = count;
    return j->err;
}

static int parse_tensor(mo_file *f, entry *e, mo_jp *j)
{
    const char *name = e->name;
    int has_dtype = 0, has_shape = 0, has_offsets = 0, count = 0, n;
    uint64_t dims[MO_MAX_DIMS], offs[2];
    if (mo_jp_peek(j) != '{' || mo_jp_begin(j, '{'))
        return mo_fail(MO_EFORMAT, "tensor '%s': needs dtype, shape and data_offsets", name);
    while (mo_jp_next(j, '}', &count)) {
        const char *k;
        size_t kl;
        if (mo_jp_key(j, &k, &kl))
            return j->err;
        if (raw_is(k, kl, "dtype")) {
            if (mo_jp_literal(j, "\"F32\"")) {
                e->dtype = MO_DTYPE_F32;
            } else if (mo_jp_literal(j, "\"F16\"")) {
                e->dtype = MO_DTYPE_F16;
            } else {
                return mo_fail(MO_EFORMAT, "tensor '%s': dtype must be F32 or F16", name);
            }
            has_dtype = 1;
        } else if (raw_is(k, kl, "shape")) {
            const int r = read_sizes(j, dims, MO_MAX_DIMS, &n);
            if (r < 0)
                return r;
            if (r == 3)
                return mo_fail(MO_EFORMAT, "tensor '%s': dim %d is not a size", name, n);
            if (r)
                return mo_fail(MO_EFORMAT, "tensor '%s': shape must be a list of at most %d dims",
                               name, MO_MAX_DIMS);
            has_shape = 1;
            e->ndim = n;
            e->numel = 1;
            for (int i = 0; i < n; i++) {
                if (dims[i] > (uint64_t)MAX_NUMEL)
                    return mo_fail(MO_EFORMAT, "tensor '%s': dim %d is not a size", name, i);
                e->shape[i] = (int64_t)dims[i];
                if (dims[i] && e->numel > MAX_NUMEL / (int64_t)dims[i])
                    return mo_fail(MO_EFORMAT, "tensor '%s': too many elements", name);
                e->numel *= (int64_t)dims[i];
            }
        } else if (raw_is(k, kl, "data_offsets")) {
            const int r = read_sizes(j, offs, 2, &n);
            if (r < 0)
                return r;
            if (r || n != 2)
                return mo_fail(MO_EFORMAT, "tensor '%s': data_offsets must be [begin, end]",
                               name);
            e->begin = offs[0];
            e->end = offs[1];
            has_offsets = 1;
        } else if (mo_jp_skip(j)) {
            return j->err;
        }
    }
    if (j->err)
        return j->err;
    if (!has_dtype || !has_shape || !has_offsets)
        return mo_fail(MO_EFORMAT, "tensor '%s': needs dtype, shape and data_offsets", name);
    uint64_t es = dtype_size(e->dtype);
    if (e->end < e->begin || e->end > f->data_size)
        return mo_fail(MO_EFORMAT,
                       "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] outside the data area of %" PRIu64 " bytes",
                       name, e->begin, e->end, f->data_size);
    if (e->end - e->begin != (uint64_t)e->numel * es)
        return mo_fail(MO_EFORMAT, "tensor '%s': %" PRIu64 " bytes for %" PRId64 " %s elements",
                       name, e->end - e->begin, e->numel, dtype_name(e->dtype));
    if (e->begin % es)
        return mo_fail(MO_EFORMAT, "tensor '%s': misaligned data offset", name);
    return MO_OK;
}

/* After a decoded string or key (r: the reader's result): refuse a NUL inside. */
static int no_nul(int r, const char *s, size_t len, const char *what)
{
    if (!r && strlen(s) != len)
        return mo_fail(MO_EFORMAT, "header: %s holds a NUL character", what);
    return r;
}

static int parse_metadata(mo_file *f, mo_jp *j, int cap)
{
    int count = 0;
    if (mo_jp_peek(j) != '{' || mo_jp_begin(j, '{'))
        return mo_fail(MO_EFORMAT, "__metadata__ is not an object");
    while (mo_jp_next(j, '}', &count)) {
        if (f->nm == cap) /* the first pass counted them */
            return mo_fail(MO_EFORMAT, "header: more metadata than counted");
        meta *m = &f->m[f->nm];
        size_t len;
        int r = mo_jp_key_string(j, &m->key, &len);
        if (m->key)
            f->nm++;
        if ((r = no_nul(r, m->key, len, "a metadata key")))
            return r;
        if (mo_jp_peek(j) != '"')
            return mo_fail(MO_EFORMAT, "metadata '%s' is not a string", m->key);
        r = mo_jp_string_n(j, &m->value, &len);
        if ((r = no_nul(r, m->value, len, m->key)))
            return r;
    }
    if (j->err)
        return j->err;
    qsort(f->m, (size_t)f->nm, sizeof(meta), cmp_meta_key);
    for (int i = 1; i < f->nm; i++)
        if (!strcmp(f->m[i - 1].key, f->m[i].key))
            return mo_fail(MO_EFORMAT, "metadata '%s' appears twice", f->m[i].key);
    return MO_OK;
}

/* The tensor named by raw key bytes (no escapes), or NULL. */
static entry *find_raw(const mo_file *f, const char *k, size_t len)
{
    int lo = 0, hi = f->nt - 1;
    while (lo <= hi) {
        const int mid = lo + (hi - lo) / 2;
        const char *name = f->t[mid].name;
        int c = strncmp(name, k, len);
        if (!c && name[len])
            c = 1;
        if (!c)
            return &f->t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* mo.crc32: {"tensor name": "8 hex digits", ...} for every tensor; no allocation unless a
 * name has escapes. */
static int read_checksums(mo_file *f, const char *s)
{
    mo_jp j;
    mo_jp_init(&j, s, strlen(s), "metadata mo.crc32");
    int count = 0, listed = 0;
    if (mo_jp_peek(&j) != '{' || mo_jp_begin(&j, '{'))
        return mo_fail(MO_EFORMAT, "metadata mo.crc32 is not a JSON object");
    while (mo_jp_next(&j, '}', &count)) {
        const char *k, *at;
        size_t kl;
        entry *e;
        if (mo_jp_peek(&j) != '"')
            break; /* mo_jp_key reports it */
        at = j.p + 1;
        if (mo_jp_key(&j, &k, &kl))
            return j.err;
        if (memchr(k, '\\', kl)) { /* escapes: decode the key again */
            char *name;
            j.p = at - 1;
            if (mo_jp_key_string(&j, &name, &kl))
                return j.err;
            e = strlen(name) == kl ? find_raw(f, name, kl) : NULL;
            free(name);
        } else {
            e = find_raw(f, k, kl);
        }
        uint32_t v = 0;
        int ok = e && mo_jp_peek(&j) == '"' && j.end - j.p >= 10 && j.p[9] == '"';
        for (int i = 1; ok && i <= 8; i++) {
            const int h = hexval((unsigned char)j.p[i]);
            ok = h >= 0;
            v = v << 4 | (uint32_t)(h < 0 ? 0 : h);
        }
        if (!ok)
            return mo_fail(MO_EFORMAT, "mo.crc32: entry '%.*s' names no tensor or is not 8 hex "
                           "digits", (int)(kl < 200 ? kl : 200), k);
        j.p += 10;
        if (e->crc_listed)
            return mo_fail(MO_EFORMAT, "mo.crc32 lists tensor '%s' twice", e->name);
        e->crc_listed = 1;
        e->crc = v;
        listed++;
    }
    if (j.err || mo_jp_finish(&j))
        return j.err == MO_ENOMEM ? j.err
                                  : mo_fail(MO_EFORMAT, "metadata mo.crc32 is not a JSON object");
    if (listed != f->nt)
        return mo_fail(MO_EFORMAT, "mo.crc32 lists %d of %d tensors", listed, f->nt);
    return MO_OK;
}

static int check_checksums(mo_file *f)
{
    const char *s = mo_file_meta(f, "mo.crc32");
    if (!s)
        return mo_fail(MO_EFORMAT, "metadata mo.crc32 is missing");
    int ret = read_checksums(f, s);
    if (ret)
        return ret;
    for (int i = 0; i < f->nt; i++) {
        const entry *e = &f->t[i];
        /* zlib's crc32 takes uInt lengths: feed large tensors in pieces. */
        uLong c = crc32(0L, Z_NULL, 0);
        const uint8_t *p = f->data + e->begin;
        for (uint64_t left = e->end - e->begin; left;) {
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            c = crc32(c, p, n);
            p += n;
            left -= n;
        }
        if ((uint32_t)c != e->crc)
            return mo_fail(MO_EFORMAT, "tensor '%s': checksum mismatch (file is corrupt)",
                           e->name);
    }
    return MO_OK;
}

/* First pass: syntax, only spaces after the object, the number of entries and the
 * largest number of members of an entry (the metadata's bound). */
static int count_header(const char *hdr, size_t n, int *entries, int *members)
{
    mo_jp j;
    mo_jp_init(&j, hdr, n, "header");
    int count = 0;
    *entries = *members = 0;
    if (mo_jp_peek(&j) != '{')
        return mo_fail(MO_EFORMAT, "header is not a JSON object");
    mo_jp_begin(&j, '{');
    while (mo_jp_next(&j, '}', &count)) {
        const char *k;
        size_t kl;
        if (mo_jp_key(&j, &k, &kl))
            break;
        if (mo_jp_peek(&j) != '{') {
            mo_jp_skip(&j);
            continue;
        }
        int inner = 0;
        mo_jp_begin(&j, '{');
        while (mo_jp_next(&j, '}', &inner))
            if (mo_jp_key(&j, &k, &kl) || mo_jp_skip(&j))
                break;
        if (inner > *members)
            *members = inner;
    }
    if (j.err == MO_ENOMEM)
        return j.err;
    if (j.err) {
        char detail[300];
        snprintf(detail, sizeof(detail), "%s", mo_last_error());
        return mo_fail(MO_EFORMAT, "header is not valid JSON (%s)", detail);
    }
    for (const char *p = j.p; p < j.end; p++)
        if (*p != ' ')
            return mo_fail(MO_EFORMAT, "header has trailing bytes after the JSON object");
    *entries = count;
    return MO_OK;
}

static int parse(mo_file *f)
{
    if (f->size < 8)
        return mo_fail(MO_EFORMAT, "file of %zu bytes is too short for a model file", f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | f->bytes[i];
    if (n > MAX_HEADER_BYTES || n > f->size - 8)
        return mo_fail(MO_EFORMAT, "header size %" PRIu64 " does not fit a file of %zu bytes", n,
                       f->size);
    f->data = f->bytes + 8 + n;
    f->data_size = f->size - 8 - n;
    const char *hdr = (const char *)f->bytes + 8;
    int entries, members, ret = count_header(hdr, (size_t)n, &entries, &members);
    if (ret)
        return ret;
    f->t = calloc((size_t)entries + 1, sizeof(entry));
    f->m = calloc((size_t)members + 1, sizeof(meta));
    if (!f->t || !f->m)
        return mo_fail(MO_ENOMEM, "out of memory for a header of %d entries", entries);

    mo_jp j;
    mo_jp_init(&j, hdr, (size_t)n, "header");
    int count = 0, seen_meta = 0;
    mo_jp_begin(&j, '{');
    while (mo_jp_next(&j, '}', &count)) {
        char *key;
        size_t len;
        ret = mo_jp_key_string(&j, &key, &len);
        if ((ret = no_nul(ret, key, len, "a tensor name"))) {
            free(key);
            return ret;
        }
        if (!strcmp(key, "__metadata__")) {
            free(key);
            if (seen_meta++)
                return mo_fail(MO_EFORMAT, "__metadata__ appears twice");
            if ((ret = parse_metadata(f, &j, members)))
                return ret;
            continue;
        }
        if (f->nt == entries) {
            free(key);
            return mo_fail(MO_EFORMAT, "header: more entries than counted");
        }
        entry *e = &f->t[f->nt++];
        e->name = key;
        if ((ret = parse_tensor(f, e, &j)))
            return ret;
    }
    if (j.err)
        return j.err;
    const char *fmt = mo_file_meta(f, "mo.format");
    const char *ver = mo_file_meta(f, "mo.format_version");
    if (!fmt || strcmp(fmt, "mobileone-sdk"))
        return mo_fail(MO_EFORMAT, "not a MobileOne SDK model file (metadata mo.format is %s)",
                       fmt ? fmt : "absent");
    if (!ver || strcmp(ver, "1"))
        return mo_fail(MO_EFORMAT, "model file version %s is not supported (this SDK reads 1)",
                       ver ? ver : "(absent)");
    qsort(f->t, (size_t)f->nt, sizeof(entry), cmp_entry_name);
    for (int i = 1; i < f->nt; i++)
        if (!strcmp(f->t[i - 1].name, f->t[i].name))
            return mo_fail(MO_EFORMAT, "tensor '%s' appears twice", f->t[i].name);
    if (f->nt > 1) {
        const entry **order = malloc(sizeof(*order) * (size_t)f->nt);
        if (!order)
            return mo_fail(MO_ENOMEM, "out of memory");
        for (int i = 0; i < f->nt; i++)
            order[i] = &f->t[i];
        qsort(order, (size_t)f->nt, sizeof(*order), cmp_entry_begin);
        for (int i = 1; i < f->nt && !ret; i++)
            if (order[i]->begin < order[i - 1]->end && order[i]->begin != order[i]->end)
                ret = mo_fail(MO_EFORMAT, "tensors '%s' and '%s' overlap", order[i - 1]->name,
                              order[i]->name);
        free(order);
        if (ret)
            return ret;
    }
    return check_checksums(f);
}

void mo_file_close(mo_file **pf)
{
    if (!pf || !*pf)
        return;
    mo_file *f = *pf;
    for (int i = 0; i < f->nt; i++)
        free(f->t[i].name);
    for (int i = 0; i < f->nm; i++) {
        free(f->m[i].key);
        free(f->m[i].value);
    }
    free(f->t);
    free(f->m);
    free(f->bytes);
    free(f);
    *pf = NULL;
}

/* Takes ownership of bytes. */
static int open_bytes(mo_file **out, uint8_t *bytes, size_t size)
{
    mo_file *f = calloc(1, sizeof(*f));
    if (!f) {
        free(bytes);
        return mo_fail(MO_ENOMEM, "out of memory");
    }
    f->bytes = bytes;
    f->size = size;
    int ret = parse(f);
    if (ret) {
        mo_file_close(&f);
        return ret;
    }
    *out = f;
    return MO_OK;
}

int mo_file_open_memory(mo_file **out, const void *data, size_t size)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(data || !size, MO_EINVAL);
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        return mo_fail(MO_ENOMEM, "out of memory for a %zu-byte model", size);
    if (size)
        memcpy(b, data, size);
    return open_bytes(out, b, size);
}

int mo_file_open(mo_file **out, const char *path)
{
    validate_input_or_ret(out, MO_EINVAL);
    *out = NULL;
    validate_input_or_ret(path, MO_EINVAL);
    mo_limits lim;
    mo_limits_get(&lim);
    uint8_t *b;
    size_t len;
    int r = mo_read_file(path, lim.model_file_bytes, "model_file_bytes", &b, &len);
    if (r)
        return r;
    int ret = open_bytes(out, b, (size_t)len);
    return ret ? mo_fail_prefix(ret, "%s", path) : MO_OK;
}

int mo_file_num_tensors(const mo_file *f)
{
    return f ? f->nt : 0;
}

static void fill_info(const entry *e, mo_tensor_info *info)
{
    info->name = e->name;
    info->dtype = e->dtype;
    info->ndim = e->ndim;
    memset(info->shape, 0, sizeof(info->shape));
    memcpy(info->shape, e->shape, sizeof(int64_t) * (size_t)e->ndim);
    info->numel = e->numel;
}

int mo_file_tensor_at(const mo_file *f, int index, mo_tensor_info *info)
{
    validate_input_or_ret(f && info, MO_EINVAL);
    validate_input_or_ret(index >= 0 && index < f->nt, MO_EINVAL);
    fill_info(&f->t[index], info);
    return MO_OK;
}

int mo_file_tensor(const mo_file *f, const char *name, mo_tensor_info *info)
{
    validate_input_or_ret(f && name, MO_EINVAL);
    const entry *e = find_entry(f, name);
    if (!e)
        return mo_fail(MO_EFORMAT, "tensor '%s' is missing", name);
    if (info)
        fill_info(e, info);
    return MO_OK;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant) { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    } else {
        bits = sign;
    }
    float v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

int mo_file_read_f32(const mo_file *f, const char *name, int ndim, const int64_t *shape,
                     float *dst)
{
    validate_input_or_ret(f && name && dst && (shape || !ndim), MO_EINVAL);
    const entry *e = find_entry(f, name);
    if (!e)
        return mo_fail(MO_EFORMAT, "tensor '%s' is missing", name);
    int same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = e->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        format_shape(got, sizeof(got), e->ndim, e->shape);
        format_shape(want, sizeof(want), ndim, shape);
        return mo_fail(MO_EMISMATCH, "tensor '%s' has shape %s, expected %s", name, got, want);
    }
    const uint8_t *p = f->data + e->begin;
    if (e->dtype == MO_DTYPE_F32) {
        memcpy(dst, p, (size_t)e->numel * 4); /* little-endian hosts only, as the format */
    } else {
        for (int64_t i = 0; i < e->numel; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
            dst[i] = half_to_float(h);
        }
    }
    return MO_OK;
}

int mo_file_digest(const mo_file *f, const char *prefix, char out[17])
{
    validate_input_or_ret(f && prefix && out, MO_EINVAL);
    uint64_t h = 0xcbf29ce484222325ull;
    size_t plen = strlen(prefix);
    int count = 0;
    char line[1024];
    for (int i = 0; i < f->nt; i++) { /* entries are sorted by name (bytewise) */
        const entry *e = &f->t[i];
        if (strncmp(e->name, prefix, plen))
            continue;
        char dims[256];
        size_t used = 0;
        dims[0] = 0;
        for (int d = 0; d < e->ndim; d++)
            used += (size_t)snprintf(dims + used, sizeof(dims) - used, "%s%" PRId64, d ? "," : "",
                                     e->shape[d]);
        int n = snprintf(line, sizeof(line), "%s %s %s %08" PRIx32 "\n", e->name,
                         dtype_name(e->dtype), dims, e->crc);
        if (n < 0 || (size_t)n >= sizeof(line))
            return mo_fail(MO_EFORMAT, "tensor name too long for the digest: '%s'", e->name);
        for (int k = 0; k < n; k++) {
            h ^= (uint8_t)line[k];
            h *= 0x100000001b3ull;
        }
        count++;
    }
    if (!count)
        return mo_fail(MO_EFORMAT, "no tensor starts with '%s'", prefix);
    snprintf(out, 17, "%016" PRIx64, h);
    return MO_OK;
}
