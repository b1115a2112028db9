/* Internal helpers shared by the evaluators (not installed). */
#ifndef MO_EVAL_INTERNAL_H
#define MO_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "mo_internal/errors.h"
#include "mo_internal/json.h"
#include "mo/eval.h"

/* Whole regular file into memory, NUL-terminated (size excludes the NUL), at most
 * mo_limits.json_file_bytes (json != 0: COCO ground truth and results) or
 * text_file_bytes (VOC XML and lists, state files). Sets the error. */
int mo_eval_read_file(const char *path, int json, char **data, size_t *size);

/* A count of what a file or caller hands the evaluator, checked against mo_limits before it
 * is allocated for: MO_EUNSUPPORTED naming the limit when over it. */
enum {
    MO_EVAL_LIMIT_CATEGORIES = 0,
    MO_EVAL_LIMIT_IMAGES = 1,
    MO_EVAL_LIMIT_DETECTIONS = 2,
    MO_EVAL_LIMIT_BOXES = 3 /* ground truth boxes: also max_detections */
};
int mo_eval_check_limit(const char *name, uint64_t n, int which);

/* Stable argsort by decreasing key (NaN last, as numpy's argsort of -key), of
 * idx[0..n). tmp has room for n entries. */
void mo_eval_argsort_desc(const double *key, uint32_t *idx, uint32_t *tmp, size_t n);

/* numpy's pairwise summation (np.add.reduce on a contiguous float64 array). */
double mo_eval_pairwise_sum(const double *a, size_t n);

/* ----------------------------------------------------------------- state files */

/* A growable byte buffer for writing a state file. */
typedef struct mo_wbuf {
    uint8_t *data;
    size_t size, cap;
    int failed; /* an allocation failed: every later write is dropped */
} mo_wbuf;

void mo_wbuf_put(mo_wbuf *b, const void *p, size_t n);
void mo_wbuf_u32(mo_wbuf *b, uint32_t v);
void mo_wbuf_u64(mo_wbuf *b, uint64_t v);
void mo_wbuf_f64(mo_wbuf *b, double v);
void mo_wbuf_str(mo_wbuf *b, const char *s);
/* Header (magic + kind), then later mo_wbuf_finish appends a CRC-32 and writes. */
void mo_wbuf_header(mo_wbuf *b, uint32_t kind);
int mo_wbuf_finish(mo_wbuf *b, const char *path);

/* A bounds-checked reader: the first failure records the offset and sticks. */
typedef struct mo_rbuf {
    const uint8_t *data;
    size_t size, pos;
    const char *name;
    int err;
} mo_rbuf;

/* Start reading a state file of `kind` in memory (checks magic, format version, kind and
 * CRC; data stays the caller's). */
int mo_rbuf_open_memory(mo_rbuf *r, const uint8_t *data, size_t size, const char *name,
                        uint32_t kind);
uint32_t mo_rbuf_u32(mo_rbuf *r);
uint64_t mo_rbuf_u64(mo_rbuf *r);
double mo_rbuf_f64(mo_rbuf *r);
const uint8_t *mo_rbuf_bytes(mo_rbuf *r, size_t n);
/* Returns a malloc'ed copy or NULL (r->err set). */
char *mo_rbuf_str(mo_rbuf *r);
/* Fail with a message at the current offset (MO_EFORMAT) unless already failed. */
int mo_rbuf_fail(mo_rbuf *r, const char *what);
/* Check a count read from the file against the bytes left (each entry >= unit bytes). */
int mo_rbuf_check_count(mo_rbuf *r, uint64_t count, size_t unit);

enum { MO_STATE_COCO = 1, MO_STATE_VOC = 2, MO_STATE_SEG = 3 };

/* 64-bit FNV-1a, for the fingerprint of a ground truth. */
uint64_t mo_eval_fnv(uint64_t h, const void *p, size_t n);

#endif
