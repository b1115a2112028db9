/*
 * Allocation-failure sweep (dav1d's alloc_fail idea): each step below is run once to count
 * its allocation calls (malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign,
 * strdup, strndup, made by the SDK, json-c or libc), then again for every N up to that
 * count with the Nth call failing. Every run must return MO_ENOMEM with a message that
 * mentions memory, or MO_OK where a callee recovers (glibc's qsort falls back to an
 * in-place sort when its buffer cannot be allocated), and free everything it allocated
 * (counted here in every build; ASan builds add their leak check at exit).
 *
 * Steps: opening the backbone file (mo_file_open + mo_backbone_open), each head (cls,
 * det, seg), the pipeline with all three heads, and one inference of each head and of
 * the pipeline (session open + run), on small generated models (S0 backbone; heads on
 * 64 x 64 inputs) written to a temporary directory.
 *
 * --fork runs each injected failure in a child process, so a crash is counted (with its
 * N) instead of ending the test; --only NAME sweeps one step.
 */
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "detect/detgen.h"
#include "segment/seggen.h"
#include "allocfail.h"
#include "mo_internal/errors.h"
#include "mo/pipeline.h"

#define IN 64
#define NCLS 7
#define SENTINEL "(no message set)"

static char dir[64], bb_path[128], det_path[128], seg_path[128];
static uint8_t *pic; /* PW x PH RGB frame */
enum { PW = 77, PH = 45 };

/* Opened once, without injected failures: what the head and run steps need. */
static struct {
    mo_file *bbf;
    mo_backbone *bb;
    mo_cls *cls;
    mo_det *det;
    mo_seg *seg;
    mo_pipeline *pipe;
    float in[IN * IN * 3];
} fx;

#define CHECK(x)                                                                         \
    do {                                                                                 \
        if (!(x)) {                                                                      \
            fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #x,           \
                    mo_last_error());                                                    \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    CHECK(!fclose(f));
}

/* The model files of tests/pipeline: backbone + cls head, det head, seg head. */
static void make_models(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mo-allocfail-XXXXXX");
    CHECK(mkdtemp(dir));
    mg_model bbm;
    mg_build_cls7(&bbm);
    bbm.meta[1][0] = "cls.resize";
    bbm.meta[1][1] = "72";
    bbm.meta[2][0] = "cls.crop";
    bbm.meta[2][1] = "64";
    uint8_t *bytes;
    size_t n = mg_serialize(&bbm, &bytes);
    snprintf(bb_path, sizeof(bb_path), "%s/bb.safetensors", dir);
    write_file(bb_path, bytes, n);
    mo_file *f;
    mo_backbone *bb;
    CHECK(!mo_file_open_memory(&f, bytes, n) && !mo_backbone_open(&bb, f, NULL));
    char digest[17];
    snprintf(digest, sizeof(digest), "%s", mo_backbone_digest(bb));
    mo_backbone_close(&bb);
    mo_file_close(&f);
    free(bytes);
    mg_free(&bbm);

    mg_model hm;
    json_object *m = dg_small_head(&hm, digest);
    dg_meta(m, "mo.mean", "[0.5,0.5,0.5]");
    dg_meta(m, "mo.std", "[0.25,0.25,0.25]");
    n = dg_serialize(&hm, m, &bytes);
    snprintf(det_path, sizeof(det_path), "%s/det.safetensors", dir);
    write_file(det_path, bytes, n);
    free(bytes);
    json_object_put(m);
    mg_free(&hm);

    mg_model sm;
    const head_spec sh = small_seg_head(&sm, 5);
    n = serialize_seg_head(&sm, &sh, digest, "16", &bytes);
    snprintf(seg_path, sizeof(seg_path), "%s/seg.safetensors", dir);
    write_file(seg_path, bytes, n);
    free(bytes);
    mg_free(&sm);

    pic = malloc(PW * PH * 3);
    CHECK(pic);
    for (int i = 0; i < PW * PH * 3; i++)
        pic[i] = (uint8_t)(i * 7 + (i / 3) % PW);
    for (int i = 0; i < IN * IN * 3; i++)
        fx.in[i] = frand();
}

/* ------------------------------------------------------------------ steps */

static int step_backbone_open(void)
{
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    int r = mo_file_open(&f, bb_path);
    if (!r)
        r = mo_backbone_open(&bb, f, NULL);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    return r;
}

static int step_cls_open(void)
{
    mo_cls *c = NULL;
    const int r = mo_cls_open(&c, fx.bbf, fx.bb, NULL);
    mo_cls_close(&c);
    return r;
}

static int step_det_open(void)
{
    mo_file *f = NULL;
    mo_det *d = NULL;
    int r = mo_file_open(&f, det_path);
    if (!r)
        r = mo_det_open(&d, f, fx.bb, NULL);
    mo_det_close(&d);
    mo_file_close(&f);
    return r;
}

static int step_seg_open(void)
{
    mo_file *f = NULL;
    mo_seg *s = NULL;
    int r = mo_file_open(&f, seg_path);
    if (!r)
        r = mo_seg_open(&s, f, fx.bb, NULL);
    mo_seg_close(&s);
    mo_file_close(&f);
    return r;
}

static int step_pipeline_open(void)
{
    const char *heads[2] = {det_path, seg_path};
    mo_pipeline *p = NULL;
    const int r = mo_pipeline_open(&p, bb_path, heads, 2, NULL);
    mo_pipeline_close(&p);
    return r;
}

static int session(mo_session **s, size_t workspace, int threads)
{
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ss.max_width = IN;
    ss.min_output_stride = 16;
    ss.workspace_bytes = workspace;
    ss.threads = threads;
    return mo_session_open(s, fx.bb, &ss);
}

static int step_cls_run(void)
{
    mo_session *s = NULL;
    mo_features feats;
    float logits[NCLS];
    const mo_tensor in = {fx.in, IN, IN, 3, IN * 3};
    int r = session(&s, 0, 1);
    if (!r)
        r = mo_backbone_run(s, &in, 32, &feats);
    if (!r)
        r = mo_cls_logits(fx.cls, &feats, logits);
    mo_session_close(&s);
    return r;
}

/* The backbone run on 2 threads: the session starts a worker. */
static int step_threads_run(void)
{
    mo_session *s = NULL;
    mo_features feats;
    const mo_tensor in = {fx.in, IN, IN, 3, IN * 3};
    int r = session(&s, 0, 2);
    if (!r)
        r = mo_backbone_run(s, &in, 32, &feats);
    mo_session_close(&s);
    return r;
}

static int step_det_run(void)
{
    mo_session *s = NULL;
    mo_features feats;
    mo_detection det[20];
    int n;
    const mo_tensor in = {fx.in, IN, IN, 3, IN * 3};
    int r = session(&s, mo_det_workspace_size(fx.det), 1);
    if (!r)
        r = mo_backbone_run(s, &in, 32, &feats);
    if (!r)
        r = mo_det_run(fx.det, s, &feats, NULL, PW, PH, det, 20, &n);
    mo_session_close(&s);
    return r;
}

static int step_seg_run(void)
{
    mo_session *s = NULL;
    mo_features feats;
    static uint8_t labels[IN * IN];
    const mo_tensor in = {fx.in, IN, IN, 3, IN * 3};
    size_t ws = 0;
    int r = mo_seg_workspace_size(fx.seg, IN, IN, 16, &ws);
    if (!r)
        r = session(&s, ws, 1);
    if (!r)
        r = mo_backbone_run(s, &in, 16, &feats);
    if (!r)
        r = mo_seg_run(fx.seg, s, &feats, IN, IN, labels, IN, NULL);
    mo_session_close(&s);
    return r;
}

static int step_pipeline_run(void)
{
    mo_pipeline_session *s = NULL;
    static mo_detection det[20];
    static uint8_t labels[PW * PH];
    mo_pipeline_result res = {.size = sizeof(res), .detections = det, .det_capacity = 20,
                              .labels = labels, .label_stride = PW};
    const mo_frame fr = {.format = MO_FRAME_RGB, .width = PW, .height = PH, .data = {pic},
                         .stride = {PW * 3}};
    int r = mo_pipeline_session_open(&s, fx.pipe, NULL);
    if (!r)
        r = mo_pipeline_run(s, &fr, &res);
    mo_pipeline_session_close(&s);
    return r;
}

static const struct step {
    const char *name;
    int (*fn)(void);
} steps[] = {
    {"backbone-open", step_backbone_open},
    {"cls-open", step_cls_open},
    {"det-open", step_det_open},
    {"seg-open", step_seg_open},
    {"pipeline-open", step_pipeline_open},
    {"cls-run", step_cls_run},
    {"threads-run", step_threads_run},
    {"det-run", step_det_run},
    {"seg-run", step_seg_run},
    {"pipeline-run", step_pipeline_run},
};

/* ------------------------------------------------------------------ the sweep */

/* One run with allocation n failing: 0 when it behaved, else 1 with why. */
static int run_one(const struct step *st, long n, char *why, size_t cap, int *recovered)
{
    mo_set_error("%s", SENTINEL);
    allocfail_arm(n);
    const int r = st->fn();
    allocfail_disarm();
    const long live = allocfail_live();
    const char *msg = mo_last_error();
    *recovered = 0;
    if (live) {
        snprintf(why, cap, "%ld blocks not freed (returned %s)", live, mo_strerror(r));
        return 1;
    }
    if (!allocfail_hit() || r == MO_OK) {
        if (r != MO_OK) {
            snprintf(why, cap, "no failure injected, yet %s (%s)", mo_strerror(r), msg);
            return 1;
        }
        *recovered = allocfail_hit();
        return 0;
    }
    if (r != MO_ENOMEM) {
        snprintf(why, cap, "returned %s: %s", mo_strerror(r), msg);
        return 1;
    }
    if (!strcmp(msg, SENTINEL) || !strstr(msg, "memory")) {
        snprintf(why, cap, "MO_ENOMEM with message \"%s\"", msg);
        return 1;
    }
    return 0;
}

/* In a child: 0 behaved, 1 misbehaved, -signal crashed. */
static int run_forked(const struct step *st, long n, char *why, size_t cap, int *recovered)
{
    int fds[2];
    CHECK(!pipe(fds));
    fflush(NULL);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (!pid) {
        close(fds[0]);
        char buf[512];
        int rec;
        const int bad = run_one(st, n, buf, sizeof(buf), &rec);
        if (bad && write(fds[1], buf, strlen(buf)) < 0)
            _exit(3);
        _exit(bad ? 1 : rec ? 2 : 0);
    }
    close(fds[1]);
    const ssize_t got = read(fds[0], why, cap - 1);
    why[got > 0 ? got : 0] = 0;
    close(fds[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    *recovered = WIFEXITED(status) && WEXITSTATUS(status) == 2;
    if (WIFSIGNALED(status)) {
        snprintf(why, cap, "crashed (signal %d)", WTERMSIG(status));
        return -WTERMSIG(status);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

static int sweep(const struct step *st, int use_fork, long *total_out)
{
    /* first run: lazily initialised state (stdio, thread-locals) is not counted */
    int r = st->fn();
    if (r) {
        fprintf(stderr, "%s: fails without injected failures: %s\n", st->name, mo_last_error());
        return 1;
    }
    allocfail_arm(0);
    r = st->fn();
    const long total = allocfail_disarm(), live = allocfail_live();
    *total_out = total;
    if (r || live) {
        fprintf(stderr, "%s: counting run returned %s, %ld blocks not freed\n", st->name,
                mo_strerror(r), live);
        return 1;
    }
    if (!total) {
        fprintf(stderr, "%s: no allocation counted: interposition does not work\n", st->name);
        return 1;
    }
    long bad = 0, crashes = 0, recovered = 0;
    for (long n = 1; n <= total; n++) {
        char why[512];
        int rec;
        const int b = use_fork ? run_forked(st, n, why, sizeof(why), &rec)
                               : run_one(st, n, why, sizeof(why), &rec);
        recovered += rec;
        if (rec && getenv("ALLOCFAIL_TRACE"))
            fprintf(stderr, "^^ %s: allocation %ld of %ld failed, the call returned MO_OK\n",
                    st->name, n, total);
        if (!b)
            continue;
        if (b < 0)
            crashes++;
        else
            bad++;
        if (bad + crashes <= 5)
            fprintf(stderr, "  %s: allocation %ld of %ld failing: %s\n", st->name, n, total,
                    why);
    }
    printf("%-14s %5ld allocations swept: %ld wrong, %ld crashes, %ld recovered (MO_OK)\n",
           st->name, total, bad, crashes, recovered);
    fflush(stdout);
    return bad || crashes;
}

int main(int argc, char **argv)
{
    int use_fork = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fork"))
            use_fork = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
    }
    /* The model files (~9 MB) and weights are allocated and freed on every run: keep them
     * in the heap rather than in fresh mmaps, which cost page faults each time (most of the
     * sweep's time otherwise). No effect under ASan, whose allocator is its own. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    make_models();
    CHECK(!mo_file_open(&fx.bbf, bb_path) && !mo_backbone_open(&fx.bb, fx.bbf, NULL));
    CHECK(!mo_cls_open(&fx.cls, fx.bbf, fx.bb, NULL));
    mo_file *f = NULL;
    CHECK(!mo_file_open(&f, det_path) && !mo_det_open(&fx.det, f, fx.bb, NULL));
    mo_file_close(&f);
    CHECK(!mo_file_open(&f, seg_path) && !mo_seg_open(&fx.seg, f, fx.bb, NULL));
    mo_file_close(&f);
    const char *heads[2] = {det_path, seg_path};
    CHECK(!mo_pipeline_open(&fx.pipe, bb_path, heads, 2, NULL));

    /* the interposed malloc is the one the SDK calls */
    allocfail_arm(1);
    const int r = mo_file_open(&f, bb_path);
    allocfail_disarm();
    CHECK(r == MO_ENOMEM && allocfail_hit());

    const clock_t t0 = clock();
    int failed = 0;
    long all = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (only && strcmp(only, steps[i].name))
            continue;
        long total = 0;
        failed |= sweep(&steps[i], use_fork, &total);
        all += total;
    }
    printf("%ld allocation failures injected in %.1f s CPU%s\n", all,
           (double)(clock() - t0) / CLOCKS_PER_SEC, use_fork ? " (parent only, --fork)" : "");

    mo_pipeline_close(&fx.pipe);
    mo_seg_close(&fx.seg);
    mo_det_close(&fx.det);
    mo_cls_close(&fx.cls);
    mo_backbone_close(&fx.bb);
    mo_file_close(&fx.bbf);
    free(pic);
    remove(bb_path);
    remove(det_path);
    remove(seg_path);
    rmdir(dir);
    return failed;
}
