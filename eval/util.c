/* Helpers shared by the evaluators: files, sorting, numpy's
 * pairwise sum, and the binary state files of sharded evaluation. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "eval_internal.h"
#include "mo_internal/fileio.h"

int mo_eval_read_file(const char *path, int json, char **data, size_t *size)
{
    mo_limits lim;
    mo_limits_get(&lim);
    return mo_read_file(path, json ? lim.json_file_bytes : lim.text_file_bytes,
                        json ? "json_file_bytes" : "text_file_bytes", (uint8_t **)data, size);
}

int mo_eval_check_limit(const char *name, uint64_t n, int which)
{
    mo_limits lim;
    mo_limits_get(&lim);
    static const char *const what[4] = { "categories", "images", "detections",
                                         "ground truth boxes" };
    static const char *const limit[4] = { "max_categories", "max_images", "max_detections",
                                          "max_detections" };
    const int64_t max = which == MO_EVAL_LIMIT_CATEGORIES ? lim.max_categories
                        : which == MO_EVAL_LIMIT_IMAGES   ? lim.max_images
                                                          : lim.max_detections;
    if (n <= (uint64_t)max)
        return MO_OK;
    return mo_fail(MO_EUNSUPPORTED, "%s: %llu %s is over the limit %s (%lld)", name,
                   (unsigned long long)n, what[which], limit[which], (long long)max);
}

/* a before b when key[a] > key[b], NaN after every number. */
static inline int before(const double *key, uint32_t a, uint32_t b)
{
    const double x = key[a], y = key[b];
    return x > y || (isnan(y) && !isnan(x));
}

void mo_eval_argsort_desc(const double *key, uint32_t *idx, uint32_t *tmp, size_t n)
{
    /* Insertion sort on runs of 16, then bottom-up merges; both stable. */
    const size_t run = 16;
    for (size_t s = 0; s < n; s += run) {
        size_t e = s + run < n ? s + run : n;
        for (size_t i = s + 1; i < e; i++) {
            uint32_t v = idx[i];
            size_t j = i;
            while (j > s && before(key, v, idx[j - 1])) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
    }
    uint32_t *src = idx, *dst = tmp;
    for (size_t w = run; w < n; w *= 2) {
        for (size_t s = 0; s < n; s += 2 * w) {
            size_t m = s + w < n ? s + w : n, e = s + 2 * w < n ? s + 2 * w : n;
            size_t i = s, j = m, k = s;
            while (i < m && j < e)
                dst[k++] = before(key, src[j], src[i]) ? src[j++] : src[i++];
            while (i < m)
                dst[k++] = src[i++];
            while (j < e)
                dst[k++] = src[j++];
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        memcpy(idx, src, n * sizeof(*idx));
}

/* numpy/core/src/umath/loops_utils.h.src: pairwise_sum, PW_BLOCKSIZE 128, unrolled by 8. */
static double pairwise(const double *a, size_t n)
{
    if (n < 8) {
        double r = -0.0;
        for (size_t i = 0; i < n; i++)
            r += a[i];
        return r;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

double mo_eval_pairwise_sum(const double *a, size_t n)
{
    /* np.add.reduce hands a contiguous 1-D array to the loop in buffers of 8192 items,
     * adding each block's pairwise sum to the running total. */
    double total = 0.0;
    for (size_t s = 0; s < n; s += 8192) {
        size_t m = n - s < 8192 ? n - s : 8192;
        total = s == 0 ? pairwise(a, m) : total + pairwise(a + s, m);
    }
    return total;
}

uint64_t mo_eval_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ------------------------------------------------------------------ state files */

/* The last byte is the format version: 2 added the image coverage of segmentation states
 * (shard overlap and missing shards are refused as for COCO and VOC). */
enum { STATE_VERSION = 2 };
static const uint8_t state_magic[8] = { 'M', 'O', 'E', 'V', 'A', 'L', 0, STATE_VERSION };

void mo_wbuf_put(mo_wbuf *b, const void *p, size_t n)
{
    if (b->failed || !n) /* n = 0: nothing to copy, and data may still be NULL */
        return;
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->size + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

void mo_wbuf_u32(mo_wbuf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    mo_wbuf_put(b, x, 4);
}

void mo_wbuf_u64(mo_wbuf *b, uint64_t v)
{
    mo_wbuf_u32(b, (uint32_t)v);
    mo_wbuf_u32(b, (uint32_t)(v >> 32));
}

void mo_wbuf_f64(mo_wbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    mo_wbuf_u64(b, u);
}

void mo_wbuf_str(mo_wbuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    mo_wbuf_u32(b, (uint32_t)n);
    mo_wbuf_put(b, s ? s : "", n);
}

void mo_wbuf_header(mo_wbuf *b, uint32_t kind)
{
    mo_wbuf_put(b, state_magic, sizeof(state_magic));
    mo_wbuf_u32(b, kind);
}

int mo_wbuf_finish(mo_wbuf *b, const char *path)
{
    if (!b->failed) {
        uLong crc = crc32(0L, Z_NULL, 0);
        for (size_t o = 0; o < b->size;) {
            size_t n = b->size - o > (1u << 30) ? (1u << 30) : b->size - o;
            crc = crc32(crc, b->data + o, (uInt)n);
            o += n;
        }
        mo_wbuf_u32(b, (uint32_t)crc);
    }
    if (b->failed) {
        free(b->data);
        memset(b, 0, sizeof(*b));
        return mo_fail(MO_ENOMEM, "%s: out of memory writing the state", path);
    }
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b->data, 1, b->size, f) == b->size;
    if (f && fclose(f))
        ok = 0;
    free(b->data);
    memset(b, 0, sizeof(*b));
    if (!ok)
        return mo_fail(MO_EIO, "%s: cannot write: %s", path, strerror(errno));
    return MO_OK;
}

int mo_rbuf_fail(mo_rbuf *r, const char *what)
{
    if (!r->err)
        r->err = mo_fail(MO_EFORMAT, "%s: offset %zu: %s", r->name, r->pos, what);
    return r->err;
}

static const uint8_t *take(mo_rbuf *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->size - r->pos) {
        mo_rbuf_fail(r, "state file truncated");
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += n;
    return p;
}

uint32_t mo_rbuf_u32(mo_rbuf *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
             : 0;
}

uint64_t mo_rbuf_u64(mo_rbuf *r)
{
    uint64_t lo = mo_rbuf_u32(r);
    return lo | (uint64_t)mo_rbuf_u32(r) << 32;
}

double mo_rbuf_f64(mo_rbuf *r)
{
    uint64_t u = mo_rbuf_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

const uint8_t *mo_rbuf_bytes(mo_rbuf *r, size_t n)
{
    return take(r, n);
}

char *mo_rbuf_str(mo_rbuf *r)
{
    uint32_t n = mo_rbuf_u32(r);
    const uint8_t *p = take(r, n);
    if (!p)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->err = mo_fail(MO_ENOMEM, "%s: out of memory", r->name);
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int mo_rbuf_check_count(mo_rbuf *r, uint64_t count, size_t unit)
{
    if (r->err)
        return r->err;
    if (unit && count > (r->size - r->pos) / unit)
        return mo_rbuf_fail(r, "count larger than the file");
    return MO_OK;
}

int mo_rbuf_open_memory(mo_rbuf *r, const uint8_t *data, size_t size, const char *name,
                        uint32_t kind)
{
    memset(r, 0, sizeof(*r));
    r->data = data;
    r->size = size;
    r->name = name;
    if (size < sizeof(state_magic) + 8 || memcmp(r->data, state_magic, sizeof(state_magic) - 1))
        return mo_rbuf_fail(r, "not an mo-eval state file");
    if (r->data[sizeof(state_magic) - 1] != STATE_VERSION) {
        if (!r->err)
            r->err = mo_fail(MO_EFORMAT,
                             "%s: state file format version %d; this mo-eval reads version %d "
                             "(write the state again with this version)",
                             name, r->data[sizeof(state_magic) - 1], STATE_VERSION);
        return r->err;
    }
    const uint8_t *t = r->data + size - 4;
    uint32_t stored = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
                      (uint32_t)t[3] << 24;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t o = 0; o < size - 4;) {
        size_t n = size - 4 - o > (1u << 30) ? (1u << 30) : size - 4 - o;
        crc = crc32(crc, r->data + o, (uInt)n);
        o += n;
    }
    if ((uint32_t)crc != stored) {
        r->pos = size - 4;
        return mo_rbuf_fail(r, "CRC-32 mismatch (corrupt state file)");
    }
    r->size = size - 4;
    r->pos = sizeof(state_magic);
    uint32_t k = mo_rbuf_u32(r);
    if (k != kind) {
        static const char *names[] = { "?", "coco", "voc", "seg" };
        char msg[96];
        snprintf(msg, sizeof(msg), "a %s state where a %s state is expected",
                 k < 4 ? names[k] : "unknown", kind < 4 ? names[kind] : "?");
        r->pos -= 4;
        return mo_rbuf_fail(r, msg);
    }
    return MO_OK;
}
