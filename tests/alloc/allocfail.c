/*
 * Allocation functions of the test executable: counted, the armed one fails. See
 * allocfail.h. Built with -fno-builtin so the compiler does not turn strdup's malloc +
 * memcpy back into a call to strdup.
 *
 * Why definitions in the executable and not LD_PRELOAD: an executable's symbols come
 * first in the lookup of every library, and "the next definition" is libc's malloc in a
 * release build and ASan's under -fsanitize=address, so the same code counts in both and
 * ASan still sees (and leak-checks) every block.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocfail.h"

void *memalign(size_t align, size_t size);

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static void *(*next_aligned_alloc)(size_t, size_t);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_memalign)(size_t, size_t);

static atomic_int armed, hit, trace;
/* Only the arming thread counts: worker threads and the sanitizer runtime (which
 * allocates while it sets a new thread up, and aborts when that fails) are not the calls
 * under test, and their timing would make the count vary. */
static _Thread_local int this_thread;
static atomic_long calls, fail_at, live;

/* dlsym may allocate while the pointers above are looked up: those blocks come from here
 * (never freed; a free of one is ignored). */
static _Alignas(64) unsigned char boot[1 << 16];
static size_t boot_used;
static int resolving;

static void *boot_alloc(size_t n)
{
    n = (n + 63) & ~(size_t)63;
    if (n > sizeof(boot) - boot_used)
        return NULL;
    void *p = boot + boot_used;
    boot_used += n;
    return p;
}

static int is_boot(const void *p)
{
    return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof(boot);
}

static void resolve(void)
{
    if (next_malloc || resolving)
        return;
    resolving = 1; /* first call, before any thread is started */
    next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    next_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    next_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    next_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    resolving = 0;
}

/* Count one allocation call; 1 when it must fail. */
static int fail_now(void)
{
    if (!this_thread || !atomic_load(&armed))
        return 0;
    const long n = atomic_fetch_add(&calls, 1) + 1;
    if (n != atomic_load(&fail_at))
        return 0;
    atomic_store(&hit, 1);
    if (atomic_load(&trace)) { /* ALLOCFAIL_TRACE=1: where the failing call came from */
        void *frames[32];
        backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
        (void)!write(2, "--\n", 3);
    }
    errno = ENOMEM;
    return 1;
}

static void *counted(void *p)
{
    if (p && this_thread && atomic_load(&armed))
        atomic_fetch_add(&live, 1);
    return p;
}

void *malloc(size_t n)
{
    resolve();
    if (!next_malloc)
        return boot_alloc(n);
    return fail_now() ? NULL : counted(next_malloc(n));
}

void *calloc(size_t n, size_t size)
{
    resolve();
    if (!next_calloc) {
        if (size && n > SIZE_MAX / size)
            return NULL;
        return boot_alloc(n * size); /* static: already zero */
    }
    return fail_now() ? NULL : counted(next_calloc(n, size));
}

void free(void *p)
{
    if (!p || is_boot(p))
        return;
    resolve();
    if (this_thread && atomic_load(&armed))
        atomic_fetch_sub(&live, 1);
    next_free(p);
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (is_boot(p)) { /* rare: move it out of the boot pool (its size is unknown: copy n) */
        void *q = malloc(n);
        if (q)
            memcpy(q, p, n < sizeof(boot) - (size_t)((unsigned char *)p - boot)
                             ? n : sizeof(boot) - (size_t)((unsigned char *)p - boot));
        return q;
    }
    resolve();
    if (!n) {
        if (this_thread && atomic_load(&armed))
            atomic_fetch_sub(&live, 1);
        return next_realloc(p, n);
    }
    return fail_now() ? NULL : next_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    return fail_now() ? NULL : counted(next_aligned_alloc(align, n));
}

int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    if (fail_now())
        return ENOMEM;
    const int r = next_posix_memalign(out, align, n);
    if (!r)
        counted(*out);
    return r;
}

void *memalign(size_t align, size_t n)
{
    resolve();
    return fail_now() ? NULL : counted(next_memalign(align, n));
}

char *strdup(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *strndup(const char *s, size_t max)
{
    const size_t n = strnlen(s, max);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void allocfail_arm(long n)
{
    static int checked;
    if (!checked) {
        checked = 1;
        if (getenv("ALLOCFAIL_TRACE")) {
            void *frames[4];
            backtrace(frames, 4); /* loads libgcc_s now, not inside a counted call */
            atomic_store(&trace, 1);
        }
    }
    atomic_store(&calls, 0);
    atomic_store(&live, 0);
    atomic_store(&hit, 0);
    atomic_store(&fail_at, n);
    this_thread = 1;
    atomic_store(&armed, 1);
}

long allocfail_disarm(void)
{
    atomic_store(&armed, 0);
    this_thread = 0;
    return atomic_load(&calls);
}

int allocfail_hit(void)
{
    return atomic_load(&hit);
}

long allocfail_live(void)
{
    return atomic_load(&live);
}
