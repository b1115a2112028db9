/* Internal: the pipeline's head detection on a file already open, for the fuzz target
 * (fuzz/fuzz_head_meta.c) and mo_pipeline_open. Exported, not in the public headers. */
#ifndef MO_PIPELINE_INTERNAL_H
#define MO_PIPELINE_INTERNAL_H

#include "mo/pipeline.h"

/* Open f as the head its mo.contents names (cls, det or seg) on p's backbone and add it;
 * `path` names the file in messages. MO_EINVAL for no kind, several, or a second one. */
MO_API int mo_pipeline_add_head(mo_pipeline *p, const mo_file *f, const char *path);

/* Close every head of p (the backbone stays). */
MO_API void mo_pipeline_drop_heads(mo_pipeline *p);

/* The checks of mo_frame_to_rgb() (fn names the caller in messages), and its conversion of
 * rows y0 .. y1 - 1 alone on a checked frame: the pipeline converts a frame in bands on
 * the session's threads, with the same bytes as one call. */
int mo_frame_check(const mo_frame *f, ptrdiff_t rgb_stride, const char *fn);
void mo_frame_rgb_rows(const mo_frame *f, uint8_t *rgb, ptrdiff_t rgb_stride, int y0, int y1);

#endif
