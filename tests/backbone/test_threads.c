/*
 * Threaded sessions (mo_session_settings.threads): every feature level and the pooled
 * vector are bit-identical to a one-thread session, for every variant, output stride,
 * odd input sizes, 2..5 threads and "0 = CPU count", with the SIMD and with the C
 * kernels; after the workers have gone to sleep; with two threaded sessions on one
 * backbone run from two threads at once. Also the threads setting's checks.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mo/backbone.h"
#include "mo/cpu.h"
#include "modelgen.h"
#include "quick.h"

static mo_backbone *open_variant(const char *variant, mo_file **f)
{
    mg_model m;
    mg_build(&m, variant, 1, "backbone.");
    uint8_t *buf;
    const size_t n = mg_serialize(&m, &buf);
    mg_free(&m);
    assert_int_equal(mo_file_open_memory(f, buf, n), MO_OK);
    free(buf);
    mo_backbone *bb = NULL;
    assert_int_equal(mo_backbone_open(&bb, *f, NULL), MO_OK);
    return bb;
}

static mo_session *open_session(const mo_backbone *bb, int h, int w, int threads)
{
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    assert_int_equal(ss.threads, 1);
    ss.max_height = h;
    ss.max_width = w;
    ss.min_output_stride = 8;
    ss.threads = threads;
    mo_session *s = NULL;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
    return s;
}

static float *random_input(int h, int w)
{
    float *x = malloc(sizeof(float) * (size_t)h * w * 3);
    assert_non_null(x);
    for (size_t i = 0; i < (size_t)h * w * 3; i++)
        x[i] = frand() * 2.0f;
    return x;
}

/* Copy of every level and the pooled vector of one run. */
typedef struct snapshot {
    float *level[MO_NUM_LEVELS];
    size_t n[MO_NUM_LEVELS];
    float *pooled;
    int c4;
} snapshot;

static void take(snapshot *sn, const mo_features *f)
{
    for (int l = 0; l < MO_NUM_LEVELS; l++) {
        const mo_tensor *t = &f->level[l];
        assert_true(t->row_stride == (ptrdiff_t)t->w * t->c);
        sn->n[l] = (size_t)t->h * t->w * t->c;
        sn->level[l] = malloc(sizeof(float) * sn->n[l]);
        assert_non_null(sn->level[l]);
        memcpy(sn->level[l], t->data, sizeof(float) * sn->n[l]);
    }
    sn->c4 = f->level[3].c;
    sn->pooled = malloc(sizeof(float) * (size_t)sn->c4);
    assert_non_null(sn->pooled);
    memcpy(sn->pooled, f->pooled, sizeof(float) * (size_t)sn->c4);
}

static void drop(snapshot *sn)
{
    for (int l = 0; l < MO_NUM_LEVELS; l++)
        free(sn->level[l]);
    free(sn->pooled);
}

static void expect_same(const snapshot *ref, const mo_features *f, const char *what)
{
    for (int l = 0; l < MO_NUM_LEVELS; l++) {
        const mo_tensor *t = &f->level[l];
        if ((size_t)t->h * t->w * t->c != ref->n[l] ||
            memcmp(t->data, ref->level[l], sizeof(float) * ref->n[l])) {
            print_error("%s: level %d differs from the one-thread run\n", what, l);
            fail();
        }
    }
    if (memcmp(f->pooled, ref->pooled, sizeof(float) * (size_t)ref->c4)) {
        print_error("%s: pooled vector differs from the one-thread run\n", what);
        fail();
    }
}

/* One-thread reference runs of bb on an h x w input at strides 32, 16, 8, compared with
 * sessions of each thread count in `threads` (terminated by -1). */
static void check_identical(const mo_backbone *bb, const char *label, int h, int w,
                            const int *threads)
{
    static const int strides[3] = {32, 16, 8};
    float *x = random_input(h, w);
    const mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    mo_session *s1 = open_session(bb, h, w, 1);
    assert_int_equal(mo_session_threads(s1), 1);
    snapshot ref[3];
    for (int si = 0; si < 3; si++) {
        mo_features f;
        assert_int_equal(mo_backbone_run(s1, &in, strides[si], &f), MO_OK);
        take(&ref[si], &f);
    }
    mo_session_close(&s1);
    for (const int *t = threads; *t >= 0; t++) {
        mo_session *s = open_session(bb, h, w, *t);
        const int n = mo_session_threads(s);
        assert_true(n >= 1 && n <= MO_MAX_THREADS);
        if (*t)
            assert_int_equal(n, *t);
        for (int si = 0; si < 3; si++) {
            mo_features f;
            assert_int_equal(mo_backbone_run(s, &in, strides[si], &f), MO_OK);
            char what[96];
            snprintf(what, sizeof(what), "%s %dx%d os%d threads %d (%d)", label, h, w,
                     strides[si], *t, n);
            expect_same(&ref[si], &f, what);
        }
        mo_session_close(&s);
        assert_null(s);
    }
    for (int si = 0; si < 3; si++)
        drop(&ref[si]);
    free(x);
}

static void test_variants(void **state)
{
    (void)state;
    static const char *const variants[] = {"s0", "s1", "s2", "s3", "s4"};
    static const int threads[] = {2, 3, 0, -1};
    /* MO_TEST_QUICK (qemu, TSan): the narrowest and the widest variant (SE blocks), 3
     * threads (uneven split) and 0 (CPU count), 224x224 on s0 only. */
    static const int quick_threads[] = {3, 0, -1};
    const int quick = mo_test_quick();
    if (quick)
        mo_quick_note("threads", "variants s0 and s4 only (s1, s2, s3 skipped), 3 and 0 "
                                 "threads (2 skipped), 224x224 on s0 only (s4 skipped)");
    for (int v = 0; v < 5; v++) {
        if (quick && v != 0 && v != 4)
            continue;
        mo_file *f = NULL;
        mo_backbone *bb = open_variant(variants[v], &f);
        const int *tc = quick ? quick_threads : threads;
        check_identical(bb, variants[v], 97, 61, tc);
        check_identical(bb, variants[v], 1, 1, tc);
        if (v == 0 || (v == 4 && !quick)) /* real size: every layer above the parallel threshold */
            check_identical(bb, variants[v], 224, 224, tc);
        mo_backbone_close(&bb);
        mo_file_close(&f);
    }
}

static void test_more_threads_than_work(void **state)
{
    (void)state;
    static const int threads[] = {5, 16, -1};
    mo_file *f = NULL;
    mo_backbone *bb = open_variant("s0", &f);
    check_identical(bb, "s0", 33, 130, threads);
    mo_backbone_close(&bb);
    mo_file_close(&f);
}

static void test_c_kernels(void **state)
{
    (void)state;
    static const int threads[] = {2, 3, -1};
    mo_set_cpu_flags_mask(0);
    mo_file *f = NULL;
    mo_backbone *bb = open_variant("s0", &f);
    mo_set_cpu_flags_mask(~0u);
    check_identical(bb, "s0 (C kernels)", 130, 97, threads);
    mo_backbone_close(&bb);
    mo_file_close(&f);
}

/* Runs far apart, so the workers stop spinning and sleep in between. */
static void test_sleeping_workers(void **state)
{
    (void)state;
    mo_file *f = NULL;
    mo_backbone *bb = open_variant("s0", &f);
    const int h = 128, w = 96;
    float *x = random_input(h, w);
    const mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    mo_session *s1 = open_session(bb, h, w, 1), *s2 = open_session(bb, h, w, 2);
    mo_features f1, f2;
    assert_int_equal(mo_backbone_run(s1, &in, 16, &f1), MO_OK);
    snapshot ref;
    take(&ref, &f1);
    for (int i = 0; i < 4; i++) {
        const struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
        assert_int_equal(mo_backbone_run(s2, &in, 16, &f2), MO_OK);
        expect_same(&ref, &f2, "after a pause");
    }
    drop(&ref);
    mo_session_close(&s1);
    mo_session_close(&s2);
    free(x);
    mo_backbone_close(&bb);
    mo_file_close(&f);
}

/* Two threaded sessions of one backbone, each run from its own thread at once. */
typedef struct runner {
    mo_session *s;
    const mo_tensor *in;
    const snapshot *ref;
    int ok;
} runner;

static void *run_many(void *arg)
{
    runner *r = arg;
    r->ok = 1;
    for (int i = 0; i < 6; i++) {
        mo_features f;
        if (mo_backbone_run(r->s, r->in, 32, &f) != MO_OK)
            r->ok = 0;
        for (int l = 0; l < MO_NUM_LEVELS; l++)
            if (memcmp(f.level[l].data, r->ref->level[l], sizeof(float) * r->ref->n[l]))
                r->ok = 0;
    }
    return NULL;
}

static void test_concurrent_sessions(void **state)
{
    (void)state;
    mo_file *f = NULL;
    mo_backbone *bb = open_variant("s1", &f);
    const int h = 96, w = 80;
    float *x = random_input(h, w);
    const mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    mo_session *s1 = open_session(bb, h, w, 1);
    mo_features f1;
    assert_int_equal(mo_backbone_run(s1, &in, 32, &f1), MO_OK);
    snapshot ref;
    take(&ref, &f1);
    runner r[2];
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (runner){open_session(bb, h, w, 2), &in, &ref, 0};
        assert_int_equal(pthread_create(&tid[i], NULL, run_many, &r[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        assert_true(r[i].ok);
        mo_session_close(&r[i].s);
    }
    drop(&ref);
    mo_session_close(&s1);
    free(x);
    mo_backbone_close(&bb);
    mo_file_close(&f);
}

static void test_settings(void **state)
{
    (void)state;
    mo_file *f = NULL;
    mo_backbone *bb = open_variant("s0", &f);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    mo_session *s = (mo_session *)&s;
    ss.threads = -1;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_EINVAL);
    assert_null(s);
    ss.threads = MO_MAX_THREADS + 1;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "threads"));
    ss.threads = MO_MAX_THREADS;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
    assert_int_equal(mo_session_threads(s), MO_MAX_THREADS);
    mo_session_close(&s);
    ss.threads = 0;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
    printf("  threads = 0 -> %d\n", mo_session_threads(s));
    assert_true(mo_session_threads(s) >= 1);
    mo_session_close(&s);
    assert_int_equal(mo_session_threads(NULL), MO_EINVAL);
    mo_backbone_close(&bb);
    mo_file_close(&f);
}

static void test_cpu_flags(void **state)
{
    (void)state;
    const unsigned all = mo_get_cpu_flags();
    mo_set_cpu_flags_mask(0);
    assert_int_equal(mo_get_cpu_flags(), 0);
    mo_set_cpu_flags_mask(MO_CPU_FLAG_AVX2);
    assert_int_equal(mo_get_cpu_flags(), all & MO_CPU_FLAG_AVX2);
    mo_set_cpu_flags_mask(~0u);
    assert_int_equal(mo_get_cpu_flags(), all);
    printf("  cpu flags 0x%x\n", all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_cpu_flags),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_more_threads_than_work),
        cmocka_unit_test(test_c_kernels),
        cmocka_unit_test(test_sleeping_workers),
        cmocka_unit_test(test_concurrent_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
