/*
 * MO_TEST_QUICK=1: the heaviest unit and thread tests run a smaller but still meaningful set
 * (fewer variants, thread counts, sizes or iterations), for runs where every operation is
 * many times slower: ./test.sh sets it for the AArch64 tests under qemu and for the
 * ThreadSanitizer build only. The release x86 run (`meson test -C build`) runs everything.
 * A test that reduces itself says so in one line of its output, naming what it skipped,
 * through mo_quick_note():
 *
 *   if (mo_test_quick())
 *       mo_quick_note("threads", "variants s0 and s4 only (s1..s3 skipped)");
 *
 * Include as "quick.h" (tests/ is on the test's include path: tests_inc in meson).
 */
#ifndef MO_TESTS_QUICK_H
#define MO_TESTS_QUICK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when MO_TEST_QUICK is set to anything but "" or "0". */
static inline int mo_test_quick(void)
{
    const char *e = getenv("MO_TEST_QUICK");
    return e && *e && strcmp(e, "0") != 0;
}

/* The one line a reduced test prints: what it left out and where the full run is. */
static inline void mo_quick_note(const char *test, const char *skipped)
{
    printf("MO_TEST_QUICK: %s: %s; the full set: run without MO_TEST_QUICK "
           "(meson test -C BUILD %s)\n",
           test, skipped, test);
    fflush(stdout);
}

#endif
