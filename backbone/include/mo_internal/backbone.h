/*
 * Internal: what the heads and the pipeline ask of the backbone beyond the public API
 * (backbone/session.c, in libmobileone). Exported (heads and the pipeline are separate
 * libraries) but not in the public headers; comes with mo_backbone_dep's include directory.
 */
#ifndef MO_INTERNAL_BACKBONE_H
#define MO_INTERNAL_BACKBONE_H

#include <stddef.h>

#include "mo/backbone.h"

/* Bytes of the buffers of a session of bb for inputs up to h x w, output stride os. */
MO_API int mo_session_bytes(const mo_backbone *bb, int h, int w, int os, size_t *bytes);

/*
 * Refuse (MO_EUNSUPPORTED, naming `field` and the limit) when what a model's metadata asks
 * for exceeds mo_limits.model_memory_bytes: a session of bb for an h x w input at output
 * stride os, the float input tensor of that size, and `head_bytes` more (head workspace and
 * buffers sized by the metadata). Called at open, before anything of that size is allocated.
 */
MO_API int mo_meta_check_memory(const mo_backbone *bb, int h, int w, int os, size_t head_bytes,
                                const char *field);

/* The session's executor (mo_internal/exec.h): its pool and its profile
 * (mo_session_set_profile()). A head runs its ops with mo_exec_run(mo_session_exec(s),
 * &dsp, "det", ops, n), and times serial code (NMS, ...) with mo_exec_prof_begin/end; NULL
 * when s is NULL (ops then run on the caller, unrecorded). */
struct mo_exec;
MO_API struct mo_exec *mo_session_exec(mo_session *s);

#endif
