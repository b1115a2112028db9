/*
 * The SDK's JSON reader: small, strict (RFC 8259), no tree; the caller walks the text,
 * values it does not need are skipped without allocation. It reads the model file header
 * and the JSON metadata values of the heads (see mo_internal/json.h), and the large inputs of
 * evaluation (COCO ground truth and results files). Why not json-c: on a 77 MB,
 * 500k-detection results file json-c's tree takes 1.1-1.5 s and 900 MB of memory, and a
 * tree has lost the positions, so a missing key or an unknown image id could not be
 * reported with its line and column as the evaluation tools must; and json-c 0.16's parser
 * does not survive a failed allocation (an object key whose strdup fails is inserted as
 * NULL and hashed: a crash), where a model open must report MO_ENOMEM. Every error here
 * gives the name, line and column; an allocation failure is MO_ENOMEM. Fuzzed by
 * fuzz/fuzz_eval_json.c and fuzz/fuzz_model_file.c.
 *
 * Numbers: JSON grammar checked, then converted exactly: decimal mantissas below 2^53 with
 * a power of ten up to 22 by one correctly rounded multiplication or division (both
 * operands exact), anything else by strtod (correctly rounded in glibc), so the doubles are
 * those Python's json module gives.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/json.h"

/* Line and column (1-based) of byte `offset` of `data`. */
static void line_col(const char *data, size_t offset, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < offset; i++) {
        if (data[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

void mo_jp_init(mo_jp *j, const char *data, size_t size, const char *name)
{
    j->data = j->p = data;
    j->end = data + size;
    j->name = name;
    j->err = 0;
    j->depth = 0;
}

int mo_jp_fail_at(mo_jp *j, const char *at, const char *fmt, ...)
{
    if (j->err)
        return j->err;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line, col;
    line_col(j->data, (size_t)(at - j->data), &line, &col);
    j->err = mo_fail(MO_EFORMAT, "%s:%d:%d: %s", j->name, line, col, msg);
    return j->err;
}

static inline void ws(mo_jp *j)
{
    const char *p = j->p, *e = j->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    j->p = p;
}

int mo_jp_peek(mo_jp *j)
{
    ws(j);
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

static int expect(mo_jp *j, char c, const char *what)
{
    if (j->err)
        return j->err;
    ws(j);
    if (j->p >= j->end)
        return mo_jp_fail_at(j, j->p, "invalid JSON: unexpected end of file, expected %s", what);
    if (*j->p != c)
        return mo_jp_fail_at(j, j->p, "invalid JSON: expected %s", what);
    j->p++;
    return 0;
}

int mo_jp_begin(mo_jp *j, char open)
{
    if (expect(j, open, open == '[' ? "'['" : "'{'"))
        return j->err;
    if (++j->depth > 256)
        return mo_jp_fail_at(j, j->p, "invalid JSON: nesting deeper than 256");
    return 0;
}

/* After begin: 1 when an element follows (its value is next), 0 at the closing bracket. */
int mo_jp_next(mo_jp *j, char close, int *count)
{
    if (j->err)
        return 0;
    ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    if (*count > 0 && expect(j, ',', close == ']' ? "',' or ']'" : "',' or '}'"))
        return 0;
    if (*count > 0) {
        ws(j);
        if (j->p < j->end && *j->p == close) {
            mo_jp_fail_at(j, j->p, "invalid JSON: trailing comma");
            return 0;
        }
    }
    ++*count;
    return 1;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Scan a string; with out != NULL, write the UTF-8 value (room: raw length + 1). */
static int string_scan(mo_jp *j, const char **raw, size_t *rawlen, char *out, size_t *outlen)
{
    if (expect(j, '"', "a string"))
        return j->err;
    const char *s = j->p, *p = s, *e = j->end;
    size_t n = 0;
    while (p < e && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return mo_jp_fail_at(j, p, "invalid JSON: control character in a string");
        if (c != '\\') {
            if (out)
                out[n] = (char)c;
            n++;
            p++;
            continue;
        }
        if (p + 1 >= e)
            break;
        char x = p[1];
        const char *map = strchr("\"\\/bfnrt", x);
        if (x && map) {
            static const char val[] = "\"\\/\b\f\n\r\t";
            if (out)
                out[n] = val[map - "\"\\/bfnrt"];
            n++;
            p += 2;
            continue;
        }
        if (x != 'u')
            return mo_jp_fail_at(j, p, "invalid JSON: bad escape in a string");
        unsigned cp = 0;
        for (int k = 0; k < 4; k++) {
            int h = p + 2 + k < e ? hexval(p[2 + k]) : -1;
            if (h < 0)
                return mo_jp_fail_at(j, p, "invalid JSON: bad \\u escape");
            cp = cp << 4 | (unsigned)h;
        }
        p += 6;
        if (cp >= 0xD800 && cp < 0xDC00 && p + 6 <= e && p[0] == '\\' && p[1] == 'u') {
            unsigned lo = 0;
            int ok = 1;
            for (int k = 0; k < 4; k++) {
                int h = hexval(p[2 + k]);
                ok &= h >= 0;
                lo = lo << 4 | (unsigned)(h < 0 ? 0 : h);
            }
            if (ok && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
        }
        char u[4];
        int m;
        if (cp < 0x80) {
            u[0] = (char)cp;
            m = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
            m = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | cp >> 12);
            u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            m = 3;
        } else {
            u[0] = (char)(0xF0 | cp >> 18);
            u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            m = 4;
        }
        if (out)
            memcpy(out + n, u, (size_t)m);
        n += (size_t)m;
    }
    if (p >= e)
        return mo_jp_fail_at(j, s - 1, "invalid JSON: unterminated string");
    j->p = p + 1;
    if (raw)
        *raw = s;
    if (rawlen)
        *rawlen = (size_t)(p - s);
    if (out)
        out[n] = 0;
    if (outlen)
        *outlen = n;
    return 0;
}

int mo_jp_key(mo_jp *j, const char **key, size_t *len)
{
    if (string_scan(j, key, len, NULL, NULL))
        return j->err;
    return expect(j, ':', "':'");
}

int mo_jp_string_n(mo_jp *j, char **out, size_t *len)
{
    *out = NULL;
    ws(j);
    const char *save = j->p, *raw;
    size_t rawlen;
    if (string_scan(j, &raw, &rawlen, NULL, NULL))
        return j->err;
    char *s = malloc(rawlen + 1);
    if (!s)
        return j->err = mo_fail(MO_ENOMEM, "%s: out of memory", j->name);
    j->p = save;
    string_scan(j, NULL, NULL, s, len);
    *out = s;
    return j->err;
}

int mo_jp_string(mo_jp *j, char **out)
{
    return mo_jp_string_n(j, out, NULL);
}

int mo_jp_key_string(mo_jp *j, char **key, size_t *len)
{
    if (mo_jp_string_n(j, key, len))
        return j->err;
    if (expect(j, ':', "':'")) {
        free(*key);
        *key = NULL;
    }
    return j->err;
}

static const double pow10_exact[23] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };

/* Number token; *is_int when it has neither fraction nor exponent. */
static int number(mo_jp *j, double *v, int64_t *iv, int *is_int)
{
    if (j->err)
        return j->err;
    ws(j);
    const char *s = j->p, *p = s, *e = j->end;
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e || *p < '0' || *p > '9')
        return mo_jp_fail_at(j, s, "invalid JSON: expected a number");
    uint64_t m = 0;
    int digits = 0, exp10 = 0, ok_fast = 1;
    if (*p == '0') {
        p++;
    } else {
        while (p < e && *p >= '0' && *p <= '9') {
            if (digits < 19)
                m = m * 10 + (uint64_t)(*p - '0');
            else
                ok_fast = 0;
            digits += m != 0 || digits;
            p++;
        }
    }
    *is_int = 1;
    if (p < e && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return mo_jp_fail_at(j, p, "invalid JSON: digit expected after '.'");
        while (p < e && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                exp10--;
                digits += m != 0 || digits;
            } else {
                ok_fast = 0;
            }
            p++;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        int eneg = 0, ev = 0;
        if (p < e && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= e || *p < '0' || *p > '9')
            return mo_jp_fail_at(j, p, "invalid JSON: digit expected in the exponent");
        while (p < e && *p >= '0' && *p <= '9') {
            if (ev < 100000)
                ev = ev * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -ev : ev;
    }
    j->p = p;
    if (*is_int && ok_fast && m <= (uint64_t)INT64_MAX) {
        *iv = neg ? -(int64_t)m : (int64_t)m;
    } else if (*is_int) {
        *is_int = 0; /* out of int64: use the double */
    }
    if (ok_fast && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;
        d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
        *v = neg ? -d : d;
        return 0;
    }
    char buf[64];
    size_t len = (size_t)(p - s);
    char *tmp = len < sizeof(buf) ? buf : malloc(len + 1);
    if (!tmp)
        return j->err = mo_fail(MO_ENOMEM, "%s: out of memory", j->name);
    memcpy(tmp, s, len);
    tmp[len] = 0;
    *v = strtod(tmp, NULL);
    if (tmp != buf)
        free(tmp);
    return 0;
}

int mo_jp_number(mo_jp *j, double *v)
{
    int64_t iv;
    int is_int;
    return number(j, v, &iv, &is_int);
}

int mo_jp_int(mo_jp *j, int64_t *v, int *is_int)
{
    double d;
    int64_t iv = 0;
    int ii;
    if (number(j, &d, &iv, &ii))
        return j->err;
    if (!ii) {
        if (d > -9.2e18 && d < 9.2e18 && d == (double)(int64_t)d) {
            iv = (int64_t)d;
            ii = 1;
        }
    }
    *v = iv;
    *is_int = ii;
    return 0;
}

int mo_jp_skip(mo_jp *j)
{
    int c = mo_jp_peek(j);
    if (j->err)
        return j->err;
    if (c == '"')
        return string_scan(j, NULL, NULL, NULL, NULL);
    if (c == '{' || c == '[') {
        const char close = c == '{' ? '}' : ']';
        if (mo_jp_begin(j, (char)c))
            return j->err;
        int n = 0;
        while (mo_jp_next(j, close, &n)) {
            if (close == '}') {
                const char *k;
                size_t kl;
                if (mo_jp_key(j, &k, &kl))
                    return j->err;
            }
            if (mo_jp_skip(j))
                return j->err;
        }
        return j->err;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        double d;
        return mo_jp_number(j, &d);
    }
    static const char *const lits[] = { "true", "false", "null" };
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(lits[k]);
        if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, lits[k], n)) {
            j->p += n;
            return 0;
        }
    }
    if (c < 0)
        return mo_jp_fail_at(j, j->p, "invalid JSON: unexpected end of file");
    return mo_jp_fail_at(j, j->p, "invalid JSON: unexpected character '%c'", c);
}

int mo_jp_literal(mo_jp *j, const char *lit)
{
    ws(j);
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, lit, n)) {
        j->p += n;
        return 1;
    }
    return 0;
}

int mo_jp_finish(mo_jp *j)
{
    if (j->err)
        return j->err;
    ws(j);
    if (j->p != j->end)
        return mo_jp_fail_at(j, j->p, "invalid JSON: text after the value");
    return 0;
}
