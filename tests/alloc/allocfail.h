/*
 * Test helper: fail the Nth allocation (dav1d's alloc_fail idea). allocfail.c defines
 * malloc, calloc, realloc, free, aligned_alloc, posix_memalign, memalign, strdup and
 * strndup in the test executable, so they take the place of libc's (or ASan's) for every
 * caller: the SDK's shared libraries, json-c, libc itself. They forward to the next
 * definition (dlsym RTLD_NEXT) and count the calls while armed.
 */
#ifndef MO_TEST_ALLOCFAIL_H
#define MO_TEST_ALLOCFAIL_H

/* Start counting the allocations of the calling thread; fail_at > 0 makes that one
 * (1-based) return NULL. */
void allocfail_arm(long fail_at);

/* Stop counting; returns the number of allocation calls since allocfail_arm(). */
long allocfail_disarm(void);

/* Whether the armed allocation was reached (and failed) since allocfail_arm(). */
int allocfail_hit(void);

/* Blocks allocated minus blocks freed since allocfail_arm() (realloc counts as neither
 * unless it allocates from NULL or frees with size 0). */
long allocfail_live(void);

#endif
