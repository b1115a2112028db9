/*
 * Golden test: the C backbone against tools/mobileone_ref.py (PyTorch) on the files of
 * tools/make_golden.py: every case of DIR/golden.json (s0..s4, fused and train-time
 * weights, an F16 file, a 224x224 input, the real S0 checkpoint when it was available),
 * every output stride (32, 16, 8), every stage output, and the logits computed here from
 * `pooled` and the model file's cls.linear.* tensors.
 *
 * Tolerance: per tensor, max |C - ref| <= 1e-4 * max(1, max |ref|).
 *
 * Usage: test_golden DIR [CASE...]: with CASE names, only those cases run (the emulated
 * AArch64 run picks a few: every one names a case of golden.json, else it fails). Exits 77 (meson's SKIP) with a message when DIR or its
 * golden.json is absent (generate them with tools/make_golden.py --out DIR).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "mo/backbone.h"
#include "mo/file.h"
#include "quick.h"

#define REL_TOL 1e-4

static const char *golden_dir;

typedef struct gcase {
    char name[64], model[128], vectors[128], variant[8], form[16], digest[17];
    int h, w, top1; /* top1 = -1 when the case has no expected class */
} gcase;

static void path_of(char *out, size_t n, const char *file)
{
    snprintf(out, n, "%s/%s", golden_dir, file);
}

/* max |a - ref| / max(1, max |ref|) over n floats */
static double rel_diff(const float *a, const float *ref, size_t n, double *maxref)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - ref[i]);
        d = e > d || isnan(e) ? e : d;
        m = fabs(ref[i]) > m ? fabs(ref[i]) : m;
    }
    if (maxref)
        *maxref = m;
    return d / (m > 1.0 ? m : 1.0);
}

static float *read_tensor(const mo_file *f, const char *name, int ndim, int64_t *shape)
{
    mo_tensor_info info;
    if (mo_file_tensor(f, name, &info) != MO_OK) {
        print_error("vectors: no tensor %s\n", name);
        return NULL;
    }
    assert_int_equal(info.ndim, ndim);
    for (int i = 0; i < ndim; i++)
        shape[i] = info.shape[i];
    float *buf = malloc(sizeof(float) * (size_t)(info.numel ? info.numel : 1));
    assert_non_null(buf);
    assert_int_equal(mo_file_read_f32(f, name, ndim, shape, buf), MO_OK);
    return buf;
}

static void run_case(void **state)
{
    const gcase *gc = *state;
    char path[1024];
    mo_file *mf = NULL, *vf = NULL;
    path_of(path, sizeof(path), gc->model);
    int ret = mo_file_open(&mf, path);
    if (ret != MO_OK)
        fail_msg("%s: %s (%s)", path, mo_strerror(ret), mo_last_error());
    path_of(path, sizeof(path), gc->vectors);
    ret = mo_file_open(&vf, path);
    if (ret != MO_OK)
        fail_msg("%s: %s (%s)", path, mo_strerror(ret), mo_last_error());

    mo_backbone *bb = NULL;
    ret = mo_backbone_open(&bb, mf, NULL);
    if (ret != MO_OK)
        fail_msg("%s: mo_backbone_open: %s (%s)", gc->model, mo_strerror(ret), mo_last_error());
    assert_string_equal(mo_backbone_variant(bb), gc->variant);
    assert_string_equal(mo_backbone_digest(bb), gc->digest);

    int64_t ishape[3];
    float *input = read_tensor(vf, "input", 3, ishape);
    assert_non_null(input);
    assert_int_equal(ishape[0], gc->h);
    assert_int_equal(ishape[1], gc->w);
    assert_int_equal(ishape[2], 3);
    mo_tensor in = {.data = input, .h = gc->h, .w = gc->w, .c = 3, .row_stride = gc->w * 3};

    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = gc->h;
    ss.max_width = gc->w;
    ss.min_output_stride = 8;
    mo_session *sess = NULL;
    assert_int_equal(mo_session_open(&sess, bb, &ss), MO_OK);

    /* classifier of the model file */
    const int c4 = mo_backbone_channels(bb, 3);
    mo_tensor_info li;
    float *lw = NULL, *lb = NULL;
    int64_t k = 0;
    if (mo_file_tensor(mf, "cls.linear.weight", &li) == MO_OK) {
        k = li.shape[0];
        const int64_t ws[2] = {k, c4}, bs[1] = {k};
        lw = malloc(sizeof(float) * (size_t)(k * c4));
        lb = malloc(sizeof(float) * (size_t)k);
        assert_true(lw && lb);
        assert_int_equal(mo_file_read_f32(mf, "cls.linear.weight", 2, ws, lw), MO_OK);
        assert_int_equal(mo_file_read_f32(mf, "cls.linear.bias", 1, bs, lb), MO_OK);
    }

    static const int strides[3] = {32, 16, 8};
    double worst = 0;
    char line[512];
    int pos = snprintf(line, sizeof(line), "%-16s", gc->name);
    for (int si = 0; si < 3; si++) {
        const int os = strides[si];
        mo_features feat;
        const clock_t t0 = clock();
        ret = mo_backbone_run(sess, &in, os, &feat);
        const double ms = 1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC;
        if (ret != MO_OK)
            fail_msg("run os %d: %s (%s)", os, mo_strerror(ret), mo_last_error());
        double os_worst = 0;
        for (int l = 0; l < MO_NUM_LEVELS; l++) {
            char name[32];
            snprintf(name, sizeof(name), "os%d.stage%d", os, l + 1);
            int64_t shape[3];
            float *ref = read_tensor(vf, name, 3, shape);
            assert_non_null(ref);
            const mo_tensor *t = &feat.level[l];
            if (t->h != shape[0] || t->w != shape[1] || t->c != shape[2])
                fail_msg("%s %s: C map %dx%dx%d, reference %lldx%lldx%lld", gc->name, name,
                         t->h, t->w, t->c, (long long)shape[0], (long long)shape[1],
                         (long long)shape[2]);
            assert_int_equal(t->row_stride, (ptrdiff_t)t->w * t->c);
            double maxref;
            const double d = rel_diff(t->data, ref, (size_t)t->h * t->w * t->c, &maxref);
            if (!(d <= REL_TOL))
                fail_msg("%s %s: max diff %.3g x max(1, %.3g) > %.0e", gc->name, name, d, maxref,
                         REL_TOL);
            os_worst = d > os_worst ? d : os_worst;
            free(ref);
        }
        pos += snprintf(line + pos, sizeof(line) - (size_t)pos, " os%-2d %.2e (%6.1f ms)", os,
                        os_worst, ms);
        worst = os_worst > worst ? os_worst : worst;

        if (os == 32 && lw) {
            float *logits = malloc(sizeof(float) * (size_t)k);
            assert_non_null(logits);
            for (int64_t i = 0; i < k; i++) {
                double a = lb[i];
                for (int c = 0; c < c4; c++)
                    a += (double)lw[i * c4 + c] * feat.pooled[c];
                logits[i] = (float)a;
            }
            int64_t shape[1];
            const char *names[2] = {"logits", "fused.logits"};
            for (int j = 0; j < 2; j++) {
                mo_tensor_info ti;
                if (mo_file_tensor(vf, names[j], &ti) != MO_OK)
                    continue;
                float *ref = read_tensor(vf, names[j], 1, shape);
                assert_int_equal(shape[0], k);
                const double d = rel_diff(logits, ref, (size_t)k, NULL);
                if (!(d <= REL_TOL))
                    fail_msg("%s %s: max diff %.3g > %.0e", gc->name, names[j], d, REL_TOL);
                pos += snprintf(line + pos, sizeof(line) - (size_t)pos, " %s %.2e",
                                names[j], d);
                free(ref);
            }
            if (gc->top1 >= 0) {
                int best = 0;
                for (int64_t i = 1; i < k; i++)
                    if (logits[i] > logits[best])
                        best = (int)i;
                assert_int_equal(best, gc->top1);
                pos += snprintf(line + pos, sizeof(line) - (size_t)pos, " top1 %d", best);
            }
            free(logits);
        }
    }
    printf("%s\n", line);

    free(lw);
    free(lb);
    free(input);
    mo_session_close(&sess);
    mo_backbone_close(&bb);
    mo_file_close(&mf);
    mo_file_close(&vf);
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

static int jint(json_object *o, const char *key, int def)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int(v) : def;
}

/* Whether case @p name runs: all when no case is named. */
static int selected(int nsel, const char *const *sel, const char *name)
{
    if (nsel == 0)
        return 1;
    for (int a = 0; a < nsel; a++)
        if (strcmp(sel[a], name) == 0)
            return 1;
    return 0;
}

/* MO_TEST_QUICK (./test.sh's AArch64 step under qemu) without CASE arguments: five of the
 * 13 cases: train-time loading (s0_unfused), a 224 input, the widest variant with SE blocks
 * (s4_fused), an F16 file and the real S0; the other eight are the same kernels at other
 * widths (x86 runs all 13). */
static const char *const quick_cases[] = {"s0_unfused", "s0_fused_224", "s4_fused",
                                          "s1_fused_f16", "s0_real_tabby"};

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("SKIP: no golden directory given (usage: %s DIR)\n", argv[0]);
        return 77;
    }
    golden_dir = argv[1];
    char path[1024];
    path_of(path, sizeof(path), "golden.json");
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        printf("SKIP: %s is absent; generate the vectors with "
               "`tools/make_golden.py --out %s`\n", path, golden_dir);
        return 77;
    }
    fclose(fp);
    json_object *root = json_object_from_file(path), *arr;
    if (!root || !json_object_object_get_ex(root, "cases", &arr) ||
        !json_object_is_type(arr, json_type_array)) {
        fprintf(stderr, "%s: not a golden manifest\n", path);
        return 1;
    }
    int nsel = argc - 2, quick = 0;
    const char *const *sel = (const char *const *)argv + 2;
    if (nsel == 0 && mo_test_quick()) {
        quick = 1;
        nsel = (int)(sizeof(quick_cases) / sizeof(quick_cases[0]));
        sel = quick_cases;
        mo_quick_note("golden", "5 of the 13 cases (s0_unfused s0_fused_224 s4_fused "
                                "s1_fused_f16 s0_real_tabby)");
    }
    const size_t n = json_object_array_length(arr);
    gcase *cases = calloc(n ? n : 1, sizeof(*cases));
    struct CMUnitTest *tests = calloc(n ? n : 1, sizeof(*tests));
    if (!cases || !tests)
        return 1;
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, i);
        const char *name = jstr(o, "case"), *model = jstr(o, "model"),
                   *vec = jstr(o, "vectors"), *variant = jstr(o, "variant"),
                   *form = jstr(o, "form"), *digest = jstr(o, "backbone_digest");
        if (!name || !model || !vec || !variant || !form || !digest) {
            fprintf(stderr, "%s: case %zu lacks a field\n", path, i);
            return 1;
        }
        gcase *g = &cases[nt];
        snprintf(g->name, sizeof(g->name), "%s", name);
        snprintf(g->model, sizeof(g->model), "%s", model);
        snprintf(g->vectors, sizeof(g->vectors), "%s", vec);
        snprintf(g->variant, sizeof(g->variant), "%s", variant);
        snprintf(g->form, sizeof(g->form), "%s", form);
        snprintf(g->digest, sizeof(g->digest), "%s", digest);
        g->h = jint(o, "height", 0);
        g->w = jint(o, "width", 0);
        g->top1 = jint(o, "top1", -1);
        if (!selected(nsel, sel, name))
            continue;
        tests[nt] = (struct CMUnitTest){.name = g->name, .test_func = run_case,
                                        .initial_state = g};
        nt++;
    }
    for (int a = 0; a < nsel; a++) { /* a misspelt case must not pass by running nothing */
        int found = 0;
        for (size_t i = 0; i < nt; i++)
            found |= strcmp(cases[i].name, sel[a]) == 0;
        json_object *skipped, *why;
        if (!found && quick && strstr(sel[a], "_real_") &&
            json_object_object_get_ex(root, "skipped", &skipped) &&
            json_object_object_get_ex(skipped, "real", &why)) {
            /* make_golden.py made no real-checkpoint case, and says why */
            printf("golden: %s has no case %s (not made: %s): not run\n", path, sel[a],
                   json_object_get_string(why));
        } else if (!found) {
            fprintf(stderr, "%s: no case named %s\n", path, sel[a]);
            return 1;
        }
    }
    printf("golden: %zu cases in %s, tolerance max|C-ref| <= %.0e * max(1, max|ref|)\n", nt,
           golden_dir, REL_TOL);
    const int failed = _cmocka_run_group_tests("golden", tests, nt, NULL, NULL);
    free(cases);
    free(tests);
    json_object_put(root);
    return failed ? 1 : 0;
}
