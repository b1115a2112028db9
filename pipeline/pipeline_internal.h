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

#endif
