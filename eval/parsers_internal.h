/* Internal: the parsers of libmo_eval on bytes in memory, and the inputs of mo-eval top1.
 * Exported (MO_API) for mo-eval and the fuzz targets (fuzz/); not installed, no stable API.
 * Text parsers take a buffer with a NUL after its last byte (as mo_read_file returns) and
 * may modify it. Each returns MO_OK or an MO_E* code with the detail recorded. */
#ifndef MO_EVAL_PARSERS_INTERNAL_H
#define MO_EVAL_PARSERS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mo/eval.h"

/* State files (as written by mo_*_eval_save_state); `name` names the file in messages. */
MO_API int mo_coco_eval_open_state_memory(mo_coco_eval **out, const uint8_t *data, size_t size,
                                          const char *name);
MO_API int mo_coco_eval_load_state_memory(mo_coco_eval *ev, const uint8_t *data, size_t size,
                                          const char *name);
MO_API int mo_voc_eval_open_state_memory(mo_voc_eval **out, const uint8_t *data, size_t size,
                                         const char *name);
MO_API int mo_voc_eval_load_state_memory(mo_voc_eval *ev, const uint8_t *data, size_t size,
                                         const char *name);
MO_API int mo_seg_eval_open_state_memory(mo_seg_eval **out, const uint8_t *data, size_t size,
                                         const char *name);
MO_API int mo_seg_eval_load_state_memory(mo_seg_eval *ev, const uint8_t *data, size_t size,
                                         const char *name);

/* A VOC evaluation of the 20 classes without a devkit: the image ids of an ImageSets list
 * (set, modified), and the annotation XML (may be NULL) as the ground truth of the first
 * image; the others have none. */
MO_API int mo_voc_eval_open_memory(mo_voc_eval **out, char *set, size_t set_size,
                                   const char *xml, size_t xml_size, const char *name);
/* A comp4_det_*.txt file ("image score xmin ymin xmax ymax" lines) of class cls. */
MO_API int mo_voc_eval_load_detections_memory(mo_voc_eval *ev, int cls, char *data, size_t size,
                                              const char *name);

/* mo-eval top1 --list: "file<TAB>class" (or "file class") lines, blank lines skipped. */
typedef struct mo_top1_item {
    char *file;
    int label;
} mo_top1_item;
MO_API int mo_top1_parse_list(char *data, size_t size, const char *name, mo_top1_item **items,
                              size_t *n);
MO_API int mo_top1_read_list(const char *path, mo_top1_item **items, size_t *n);
MO_API void mo_top1_free_list(mo_top1_item *items, size_t n);

/* mo-eval top1 --pred: mo-classify --json output; entries without a string "image" are
 * skipped, n = 0 when "top" holds no class. */
typedef struct mo_top1_pred {
    char *image;
    size_t index; /* in the JSON array */
    int ranked[MO_TOPK_MAX];
    int n;
} mo_top1_pred;
MO_API int mo_top1_parse_pred(const char *data, size_t size, const char *name,
                              mo_top1_pred **preds, size_t *n);
MO_API int mo_top1_read_pred(const char *path, mo_top1_pred **preds, size_t *n);
MO_API void mo_top1_free_pred(mo_top1_pred *preds, size_t n);

/* Count into t the prediction of every item, matched by the item's path (relative to root,
 * NULL: the working folder) against the prediction's path with root taken off (lexically, or
 * by root's real path for absolute ones). No match, two matches or no class: MO_EFORMAT. */
MO_API int mo_top1_match(const mo_top1_item *items, size_t n, const char *root,
                         const mo_top1_pred *preds, size_t np, const char *pred_name,
                         mo_topk_eval *t);

/* mo-eval seg and merge: the ids of an image list file (first word of each line). */
MO_API int mo_eval_read_ids(const char *path, char ***ids, size_t *n);
MO_API int mo_eval_parse_ids(char *data, size_t size, const char *name, char ***ids, size_t *n);
MO_API void mo_eval_free_ids(char **ids, size_t n);

/* The kind of a state file (MO_STATE_* of eval_internal.h: 1 coco, 2 voc, 3 seg) from its
 * header, opened as any eval input (regular file, size limit). */
MO_API int mo_eval_state_kind(const char *path, int *kind);

#endif
