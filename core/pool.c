/*
 * Worker pool of mo_internal/pool.h.
 *
 * A job is announced by bumping `gen`. Its chunks are cut into one contiguous range per
 * thread; thread t claims from range t first, then from t + 1, t + 2, ... Each range is
 * one 64-bit word holding the job's generation, the range's end and its next chunk,
 * claimed with a compare-and-swap, so a worker that wakes up late can never claim a
 * chunk of a job other than the one it checks (the generation would differ) and never
 * reads fn/ctx of a job that is over: a job ends only when all its chunks are done, and
 * the claimer holds one until it has read them. `done` counts finished chunks; the
 * caller waits for it to reach the count.
 *
 * Waits spin first, then sleep. The sleeping sides announce themselves (`sleepers`,
 * `caller_waiting`) before re-checking their condition under the mutex, and the waking
 * sides check those flags after their own update; with sequentially consistent atomics
 * one of the two sees the other's write, so no wake-up is lost, and while everyone spins
 * no mutex or system call is involved.
 */
#include "mo_internal/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "mo/common.h"

/* Spin this long before sleeping: longer than the gap between two layers of a run, much
 * shorter than a scheduler time slice. */
#define SPIN_NS 200000

typedef struct worker {
    struct mo_pool *pool;
    int index;
    pthread_t tid;
} worker;

/* One thread's range of chunks: gen << 32 | end << 16 | next, on a cache line of its own. */
typedef struct range {
    atomic_uint_fast64_t claim;
    char pad[64 - sizeof(atomic_uint_fast64_t)];
} range;

struct mo_pool {
    int n;       /* threads per job, the caller included */
    int started; /* workers created */
    worker *w;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* workers: a new job (or quit) */
    pthread_cond_t done_cv; /* caller: every chunk done */
    atomic_uint gen;
    range *ranges;  /* n */
    int nchunks;    /* of the current job */
    atomic_int done;
    atomic_int sleepers;
    atomic_int caller_waiting;
    mo_pool_fn *fn; /* of the current job; see the claim protocol above */
    void *ctx;
    int quit;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spin until gen differs from seen or SPIN_NS pass; returns the last value read. */
static unsigned spin_gen(atomic_uint *gen, unsigned seen)
{
    unsigned g = atomic_load_explicit(gen, memory_order_acquire);
    if (g != seen)
        return g;
    const long long t0 = now_ns();
    for (;;) {
        for (int i = 0; i < 64; i++) {
            cpu_relax();
            if ((g = atomic_load_explicit(gen, memory_order_acquire)) != seen)
                return g;
        }
        if (now_ns() - t0 > SPIN_NS)
            return g;
    }
}

/* Claim and run chunks of job g from range r until it is empty or the job is over. Each
 * claim takes half of what is left (at least one chunk), run as one call: consecutive
 * chunks in one call stream a layer's weights once, not once per chunk (one call per
 * chunk made s1 at 2 threads 5% slower than one call per thread: 5.3 against 5.05 ms),
 * while a thread that stalls still leaves the other half of its range to the others. */
static void work_range(mo_pool *p, unsigned g, int r)
{
    atomic_uint_fast64_t *claim = &p->ranges[r].claim;
    uint_fast64_t c = atomic_load(claim);
    for (;;) {
        const unsigned cg = (unsigned)(c >> 32), end = (unsigned)(c >> 16) & 0xffff,
                       i = (unsigned)c & 0xffff;
        if (cg != g || i >= end)
            return;
        const unsigned k = (end - i + 1) / 2;
        if (!atomic_compare_exchange_weak(claim, &c, c + k))
            continue; /* c now holds the current value */
        const int n = p->nchunks; /* job g's: it cannot end while chunk i is held */
        p->fn(p->ctx, (int)i, (int)k, n);
        if (atomic_fetch_add(&p->done, (int)k) + (int)k == n &&
            atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->lock);
        }
        c = atomic_load(claim);
    }
}

/* Thread t's share of job g: its own range, then the others'. */
static void work(mo_pool *p, unsigned g, int t)
{
    for (int k = 0; k < p->n; k++)
        work_range(p, g, (t + k) % p->n);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    mo_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g = spin_gen(&p->gen, seen);
        if (g == seen) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->gen)) == seen)
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        seen = g;
        pthread_mutex_lock(&p->lock);
        const int quit = p->quit;
        pthread_mutex_unlock(&p->lock);
        if (quit)
            break;
        work(p, g, w->index);
    }
    return NULL;
}

int mo_pool_create(mo_pool **out, int nthreads)
{
    *out = NULL;
    mo_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return MO_ENOMEM;
    p->n = nthreads;
    p->w = calloc((size_t)nthreads, sizeof(*p->w));
    p->ranges = aligned_alloc(64, (size_t)nthreads * sizeof(*p->ranges));
    int inited = 0;
    if (p->w && p->ranges && !pthread_mutex_init(&p->lock, NULL)) {
        inited = 1;
        if (!pthread_cond_init(&p->wake, NULL)) {
            inited = 2;
            if (!pthread_cond_init(&p->done_cv, NULL))
                inited = 3;
        }
    }
    if (inited < 3) {
        if (inited > 1)
            pthread_cond_destroy(&p->wake);
        if (inited > 0)
            pthread_mutex_destroy(&p->lock);
        free(p->ranges);
        free(p->w);
        free(p);
        return MO_ENOMEM;
    }
    atomic_init(&p->gen, 0);
    for (int i = 0; i < nthreads; i++)
        atomic_init(&p->ranges[i].claim, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_waiting, 0);
    for (int i = 1; i < nthreads; i++) {
        p->w[i].pool = p;
        p->w[i].index = i;
        if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i])) {
            mo_pool_destroy(&p);
            return MO_ENOMEM;
        }
        p->started = i;
    }
    *out = p;
    return MO_OK;
}

void mo_pool_destroy(mo_pool **pp)
{
    mo_pool *p = pp ? *pp : NULL;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i <= p->started; i++)
        pthread_join(p->w[i].tid, NULL);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->ranges);
    free(p->w);
    free(p);
    *pp = NULL;
}

int mo_pool_threads(const mo_pool *p)
{
    return p->n;
}

void mo_pool_run(mo_pool *p, mo_pool_fn *fn, void *ctx, int nchunks)
{
    /* No worker can be inside a job now (the last one ended with every chunk done), and
     * none reads fn/ctx without first claiming a chunk of the new generation. */
    p->fn = fn;
    p->ctx = ctx;
    p->nchunks = nchunks;
    atomic_store(&p->done, 0);
    const unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    for (int t = 0; t < p->n; t++) {
        const uint_fast64_t b = (uint_fast64_t)nchunks * t / p->n,
                            e = (uint_fast64_t)nchunks * (t + 1) / p->n;
        atomic_store(&p->ranges[t].claim, (uint_fast64_t)g << 32 | e << 16 | b);
    }
    atomic_store(&p->gen, g);
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    work(p, g, 0);
    /* wait for chunks other threads still hold */
    if (atomic_load(&p->done) == nchunks)
        return;
    const long long t0 = now_ns();
    while (now_ns() - t0 < SPIN_NS)
        for (int i = 0; i < 64; i++) {
            cpu_relax();
            if (atomic_load_explicit(&p->done, memory_order_acquire) == nchunks)
                return;
        }
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->caller_waiting, 1);
    while (atomic_load(&p->done) != nchunks)
        pthread_cond_wait(&p->done_cv, &p->lock);
    atomic_store(&p->caller_waiting, 0);
    pthread_mutex_unlock(&p->lock);
}
