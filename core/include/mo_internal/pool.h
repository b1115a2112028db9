/*
 * A small pool of worker threads owned by a session (internal; exported from libmo_core
 * for libmobileone's sessions, not in the public headers).
 *
 * mo_pool_run(p, fn, ctx, n) runs every chunk i in 0 .. n-1 exactly once, as calls
 * fn(ctx, first, count, n) over runs of consecutive chunks, and returns when all have
 * returned. The chunks are dealt in contiguous ranges, one per thread (the caller is
 * thread 0): consecutive jobs cut the same way find their data in the cache of the core
 * that wrote it. A thread claims half of what is left of a range at a time (at least one
 * chunk), and one that has finished its range claims from the others, so a worker the OS
 * has not scheduled (a loaded machine) delays a job only by the chunks it holds, if any.
 * Workers are created once (mo_pool_create) and wait between jobs, spinning for a short
 * while (the next layer usually follows within microseconds) and then sleeping on a
 * condition variable, so a run makes no allocation and, between layers, no system call.
 *
 * One job at a time: mo_pool_run() must not be called concurrently on one pool (a session
 * is used by one thread at a time).
 */
#ifndef MO_POOL_H
#define MO_POOL_H

#include "mo/common.h"

typedef struct mo_pool mo_pool;

typedef void mo_pool_fn(void *ctx, int first, int count, int nchunks);

/** Most chunks of one job. */
#define MO_POOL_MAX_CHUNKS 65535

/**
 * Start nthreads - 1 workers (nthreads >= 2).
 * @return MO_OK, MO_ENOMEM (memory or threads could not be created)
 */
MO_API int mo_pool_create(mo_pool **out, int nthreads);

/** Stop and join the workers, free the pool, set *p = NULL. NULL-safe. */
MO_API void mo_pool_destroy(mo_pool **p);

/** Threads that take part in a job, the caller included. */
MO_API int mo_pool_threads(const mo_pool *p);

/** Run every chunk 0 .. nchunks-1 (1..MO_POOL_MAX_CHUNKS) once, as fn(ctx, first, count,
 *  nchunks) calls over consecutive chunks, on the caller and the workers; wait for all. */
MO_API void mo_pool_run(mo_pool *p, mo_pool_fn *fn, void *ctx, int nchunks);

#endif
