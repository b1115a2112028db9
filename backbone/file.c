/* Model file loader: safetensors with the SDK's metadata (weights/FORMAT.md).
 * The whole file is read once and validated before any tensor is handed out. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <zlib.h>

#include "errors_internal.h"
#include "fileio_internal.h"
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

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static const entry *find_entry(const mo_file *f, const char *name)
{
    entry key = { .name = (char *)name };
    return bsearch(&key, f->t, (size_t)f->nt, sizeof(entry), cmp_entry_name);
}

const char *mo_file_meta(const mo_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (int i = 0; i < f->nm; i++)
        if (!strcmp(f->m[i].key, key))
            return f->m[i].value;
    return NULL;
}

static int get_u64(json_object *o, uint64_t *v)
{
    if (!json_object_is_type(o, json_type_int))
        return 0;
    errno = 0;
    int64_t x = json_object_get_int64(o);
    if (x < 0 || errno)
        return 0;
    *v = (uint64_t)x;
    return 1;
}

static int parse_tensor(mo_file *f, entry *e, const char *name, json_object *o)
{
    json_object *jd, *js, *jo;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "dtype", &jd) ||
        !json_object_object_get_ex(o, "shape", &js) ||
        !json_object_object_get_ex(o, "data_offsets", &jo))
        return mo_fail(MO_EFORMAT, "tensor '%s': needs dtype, shape and data_offsets", name);
    const char *ds = json_object_get_string(jd);
    if (!json_object_is_type(jd, json_type_string) || (strcmp(ds, "F32") && strcmp(ds, "F16")))
        return mo_fail(MO_EFORMAT, "tensor '%s': dtype must be F32 or F16", name);
    e->dtype = strcmp(ds, "F16") ? MO_DTYPE_F32 : MO_DTYPE_F16;
    if (!json_object_is_type(js, json_type_array) || json_object_array_length(js) > MO_MAX_DIMS)
        return mo_fail(MO_EFORMAT, "tensor '%s': shape must be a list of at most %d dims", name,
                       MO_MAX_DIMS);
    e->ndim = (int)json_object_array_length(js);
    e->numel = 1;
    for (int i = 0; i < e->ndim; i++) {
        uint64_t d;
        if (!get_u64(json_object_array_get_idx(js, (size_t)i), &d) || d > (uint64_t)MAX_NUMEL)
            return mo_fail(MO_EFORMAT, "tensor '%s': dim %d is not a size", name, i);
        e->shape[i] = (int64_t)d;
        if (d && e->numel > MAX_NUMEL / (int64_t)d)
            return mo_fail(MO_EFORMAT, "tensor '%s': too many elements", name);
        e->numel *= (int64_t)d;
    }
    if (!json_object_is_type(jo, json_type_array) || json_object_array_length(jo) != 2 ||
        !get_u64(json_object_array_get_idx(jo, 0), &e->begin) ||
        !get_u64(json_object_array_get_idx(jo, 1), &e->end))
        return mo_fail(MO_EFORMAT, "tensor '%s': data_offsets must be [begin, end]", name);
    uint64_t es = dtype_size(e->dtype);
    if (e->end < e->begin || e->end > f->data_size)
        return mo_fail(MO_EFORMAT,
                       "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] outside the data area of %" PRIu64 " bytes",
                       name, e->begin, e->end, f->data_size);
    if (e->end - e->begin != (uint64_t)e->numel * es)
        return mo_fail(MO_EFORMAT, "tensor '%s': %" PRIu64 " bytes for %" PRId64 " %s elements",
                       name, e->end - e->begin, e->numel, ds);
    if (e->begin % es)
        return mo_fail(MO_EFORMAT, "tensor '%s': misaligned data offset", name);
    return MO_OK;
}

static int parse_metadata(mo_file *f, json_object *o)
{
    if (!json_object_is_type(o, json_type_object))
        return mo_fail(MO_EFORMAT, "__metadata__ is not an object");
    f->m = calloc((size_t)json_object_object_length(o) + 1, sizeof(meta));
    if (!f->m)
        return mo_fail(MO_ENOMEM, "out of memory reading metadata");
    json_object_object_foreach(o, key, val) {
        if (!json_object_is_type(val, json_type_string))
            return mo_fail(MO_EFORMAT, "metadata '%s' is not a string", key);
        meta *m = &f->m[f->nm];
        m->key = dup_str(key);
        m->value = dup_str(json_object_get_string(val));
        f->nm++;
        if (!m->key || !m->value)
            return mo_fail(MO_ENOMEM, "out of memory reading metadata");
    }
    return MO_OK;
}

static int check_checksums(mo_file *f)
{
    const char *s = mo_file_meta(f, "mo.crc32");
    if (!s)
        return mo_fail(MO_EFORMAT, "metadata mo.crc32 is missing");
    json_object *o = json_tokener_parse(s);
    int ret = MO_OK;
    if (!o || !json_object_is_type(o, json_type_object)) {
        ret = mo_fail(MO_EFORMAT, "metadata mo.crc32 is not a JSON object");
        goto done;
    }
    int listed = 0;
    json_object_object_foreach(o, name, val) {
        entry *e = (entry *)find_entry(f, name);
        const char *hex = json_object_get_string(val);
        char *end = NULL;
        unsigned long v = json_object_is_type(val, json_type_string) ? strtoul(hex, &end, 16) : 0;
        if (!e || !end || end - hex != 8 || *end) {
            ret = mo_fail(MO_EFORMAT, "mo.crc32: entry '%s' names no tensor or is not 8 hex digits",
                          name);
            goto done;
        }
        e->crc = (uint32_t)v;
        listed++;
    }
    if (listed != f->nt) {
        ret = mo_fail(MO_EFORMAT, "mo.crc32 lists %d of %d tensors", listed, f->nt);
        goto done;
    }
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
        if ((uint32_t)c != e->crc) {
            ret = mo_fail(MO_EFORMAT, "tensor '%s': checksum mismatch (file is corrupt)", e->name);
            goto done;
        }
    }
done:
    json_object_put(o);
    return ret;
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

    json_tokener *tok = json_tokener_new();
    if (!tok)
        return mo_fail(MO_ENOMEM, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, (const char *)f->bytes + 8, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int ret = MO_OK;
    if (!root || jerr != json_tokener_success) {
        ret = mo_fail(MO_EFORMAT, "header is not valid JSON (%s)",
                      root ? "trailing data" : json_tokener_error_desc(jerr));
        goto done;
    }
    for (size_t i = used; i < n; i++)
        if (f->bytes[8 + i] != ' ') {
            ret = mo_fail(MO_EFORMAT, "header has trailing bytes after the JSON object");
            goto done;
        }
    if (!json_object_is_type(root, json_type_object)) {
        ret = mo_fail(MO_EFORMAT, "header is not a JSON object");
        goto done;
    }
    f->t = calloc((size_t)json_object_object_length(root) + 1, sizeof(entry));
    if (!f->t) {
        ret = mo_fail(MO_ENOMEM, "out of memory");
        goto done;
    }
    json_object_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if ((ret = parse_metadata(f, val)))
                goto done;
            continue;
        }
        entry *e = &f->t[f->nt];
        if (!(e->name = dup_str(key))) {
            ret = mo_fail(MO_ENOMEM, "out of memory");
            goto done;
        }
        f->nt++;
        if ((ret = parse_tensor(f, e, key, val)))
            goto done;
    }
    const char *fmt = mo_file_meta(f, "mo.format");
    const char *ver = mo_file_meta(f, "mo.format_version");
    if (!fmt || strcmp(fmt, "mobileone-sdk")) {
        ret = mo_fail(MO_EFORMAT, "not a MobileOne SDK model file (metadata mo.format is %s)",
                      fmt ? fmt : "absent");
        goto done;
    }
    if (!ver || strcmp(ver, "1")) {
        ret = mo_fail(MO_EFORMAT, "model file version %s is not supported (this SDK reads 1)",
                      ver ? ver : "(absent)");
        goto done;
    }
    qsort(f->t, (size_t)f->nt, sizeof(entry), cmp_entry_name);
    for (int i = 1; i < f->nt; i++)
        if (!strcmp(f->t[i - 1].name, f->t[i].name)) {
            ret = mo_fail(MO_EFORMAT, "tensor '%s' appears twice", f->t[i].name);
            goto done;
        }
    if (f->nt > 1) {
        const entry **order = malloc(sizeof(*order) * (size_t)f->nt);
        if (!order) {
            ret = mo_fail(MO_ENOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < f->nt; i++)
            order[i] = &f->t[i];
        qsort(order, (size_t)f->nt, sizeof(*order), cmp_entry_begin);
        for (int i = 1; i < f->nt && !ret; i++)
            if (order[i]->begin < order[i - 1]->end && order[i]->begin != order[i]->end)
                ret = mo_fail(MO_EFORMAT, "tensors '%s' and '%s' overlap", order[i - 1]->name,
                              order[i]->name);
        free(order);
        if (ret)
            goto done;
    }
    ret = check_checksums(f);
done:
    json_object_put(root);
    return ret;
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
