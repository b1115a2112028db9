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

/* Profiling hooks for the heads (mo_session_set_profile()): `t0 = mo_prof_begin(s)` before
 * an operation, 0 when @p s is NULL or does not profile; after it, `if (t0)
 * mo_prof_end(s, t0, model, kind, h, w, c, flops, name_fmt, ...)` records it. */
MO_API double mo_prof_begin(const mo_session *s);
MO_API void mo_prof_end(mo_session *s, double t0, const char *model, const char *kind, int h,
                        int w, int c, double flops, const char *name_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 9, 10)))
#endif
    ;

/* The session's executor (mo_internal/exec.h): its pool and profile. A head runs its ops
 * with mo_exec_run(mo_session_exec(s), &dsp, "det", ops, n); NULL when s is NULL (the ops
 * then run on the caller, unrecorded). */
struct mo_exec;
MO_API struct mo_exec *mo_session_exec(mo_session *s);

#endif
