/* mo-eval coco: COCO box AP of results files (pycocotools COCOeval, bbox). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/eval.h"
#include "mo/pipeline.h"
#include "progress.h"
#include "subcommands.h"

/* Curves for --plot: overall (plot_cats NULL), "all", or a comma list of category ids. */
static int coco_plot(const mo_coco_eval *ev, const char *path, const char *plot_cats)
{
    const int K = mo_coco_eval_num_categories(ev);
    int *ks = malloc(sizeof(int) * (size_t)(K + 1));
    int n = 0;
    if (!ks)
        return cli_error("plot", MO_ENOMEM);
    if (!plot_cats) {
        ks[n++] = -1;
    } else if (!strcmp(plot_cats, "all")) {
        for (int k = 0; k < K; k++)
            if (mo_coco_eval_category_ap(ev, k, 0) >= 0)
                ks[n++] = k;
    } else {
        const char *p = plot_cats;
        while (*p && n < K) {
            char *end;
            long long id = strtoll(p, &end, 10);
            int found = -1;
            for (int k = 0; k < K && end != p; k++)
                if (mo_coco_eval_category_id(ev, k) == id)
                    found = k;
            if (found < 0 || (*end && *end != ',')) {
                free(ks);
                return cli_usage("--plot-category: '%s' is not a list of category ids", plot_cats);
            }
            ks[n++] = found;
            p = *end ? end + 1 : end;
        }
    }
    if (n == 0) {
        free(ks);
        fprintf(stderr, "mo-eval: --plot: no category has ground truth\n");
        return 1;
    }
    double *prec = malloc(sizeof(double) * MO_COCO_NUM_RECALL * (size_t)n);
    const double **xs = malloc(sizeof(*xs) * (size_t)n), **ys = malloc(sizeof(*ys) * (size_t)n);
    size_t *ns = malloc(sizeof(size_t) * (size_t)n);
    const char **names = malloc(sizeof(char *) * (size_t)n);
    static double rec[MO_COCO_NUM_RECALL];
    for (int r = 0; r < MO_COCO_NUM_RECALL; r++)
        rec[r] = r == MO_COCO_NUM_RECALL - 1 ? 1.0 : r * (1.0 / 100);
    int ret = 0;
    if (!prec || !xs || !ys || !ns || !names) {
        ret = cli_error("plot", MO_ENOMEM);
    } else {
        for (int i = 0; i < n; i++) {
            mo_coco_eval_pr_curve(ev, ks[i], 0, prec + (size_t)i * MO_COCO_NUM_RECALL);
            xs[i] = rec;
            ys[i] = prec + (size_t)i * MO_COCO_NUM_RECALL;
            ns[i] = MO_COCO_NUM_RECALL;
            names[i] = ks[i] < 0 ? "all categories" : mo_coco_eval_category_name(ev, ks[i]);
        }
        int r = mo_eval_plot_pr(path, n, xs, ys, ns, names,
                                "COCO precision-recall, IoU=0.50, area=all, maxDets=100");
        if (r)
            ret = cli_error(path, r);
    }
    free(prec);
    free(xs);
    free(ys);
    free(ns);
    free(names);
    free(ks);
    return ret;
}

int coco_report(mo_coco_eval *ev, const char *json, int per_category, const char *plot,
                const char *plot_cats)
{
    int r = mo_coco_eval_accumulate(ev);
    if (r)
        return cli_error("accumulate", r);
    if ((r = mo_coco_eval_print(ev, stdout, per_category)))
        return cli_error("stdout", r);
    if (json && (r = mo_coco_eval_write_json(ev, json)))
        return cli_error(json, r);
    if (plot)
        return coco_plot(ev, plot, plot_cats);
    return 0;
}

/* How the head's classes meet the ground truth's categories: class k is category
 * mo_det_category_id(k) (the file's det.category_ids, else k: torchvision's 91 indexing).
 * A note on stderr when no class maps to a category of the ground truth, or when a mapped
 * category has another name than the class (a head trained on other data, or ids that do
 * not follow the dataset); the evaluation goes on. */
static void check_categories(const mo_coco_eval *ev, const mo_det *det, const char *head)
{
    int mapped = 0, differ = 0;
    const int nc = mo_coco_eval_num_categories(ev);
    for (int i = 1; i < mo_det_num_classes(det); i++) {
        const int id = mo_det_category_id(det, i);
        for (int k = 0; k < nc; k++) {
            if (mo_coco_eval_category_id(ev, k) != id)
                continue;
            mapped++;
            const char *a = mo_det_class_name(det, i), *b = mo_coco_eval_category_name(ev, k);
            if (a && b && strcmp(a, b) && !differ++)
                fprintf(stderr, "mo-eval: note: class %d of %s is '%s', but category %d of the "
                        "ground truth is '%s'\n", i, head, a, id, b);
        }
    }
    if (!mapped)
        fprintf(stderr, "mo-eval: note: no class of %s maps to a category id of the ground "
                "truth (det.category_ids)\n", head);
    else if (differ > 1)
        fprintf(stderr, "mo-eval: note: %d classes of %s are named otherwise in the ground "
                "truth\n", differ, head);
}

/* Run a detection model over every ground-truth image (IMAGES/file_name) and add its
 * detections (category ids: check_categories). */
static int detect_all(mo_coco_eval *ev, const char *model, const char *head, const char *images,
                      int prog)
{
    mo_pipeline_settings ps;
    mo_pipeline_default_settings(&ps);
    ps.classify = 0;
    mo_pipeline *p = NULL;
    mo_pipeline_session *s = NULL;
    int r = mo_pipeline_open(&p, model, &head, 1, &ps);
    if (!r && !mo_pipeline_det(p)) {
        mo_pipeline_close(&p);
        return cli_usage("--head %s holds no detection head", head);
    }
    if (!r)
        r = mo_pipeline_session_open(&s, p, NULL);
    if (r) {
        mo_pipeline_close(&p);
        return cli_error(head, r);
    }
    const mo_det *det = mo_pipeline_det(p);
    check_categories(ev, det, head);
    enum { CAP = 300 };
    mo_detection dets[CAP];
    mo_coco_det cd[CAP];
    const int n = mo_coco_eval_num_images(ev);
    progress pr;
    progress_init(&pr, "detecting", prog);
    int ret = 0;
    for (int i = 0; i < n && !ret; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", images, mo_coco_eval_image_file(ev, i));
        mo_image img = { 0 };
        r = mo_image_load(&img, path);
        if (!r) {
            mo_frame f = { .format = MO_FRAME_RGB, .width = img.w, .height = img.h,
                           .data = { img.data, NULL }, .stride = { (ptrdiff_t)img.w * 3, 0 } };
            mo_pipeline_result res = { .size = sizeof(res), .detections = dets, .det_capacity = CAP };
            r = mo_pipeline_run(s, &f, &res);
            for (int k = 0; !r && k < res.num_detections; k++) {
                const mo_detection *d = &dets[k];
                cd[k] = (mo_coco_det){ .image_id = mo_coco_eval_image_id(ev, i),
                                       .category_id = mo_det_category_id(det, d->label),
                                       .bbox = { d->x1, d->y1, d->x2 - d->x1, d->y2 - d->y1 },
                                       .score = d->score };
            }
            if (!r)
                r = mo_coco_eval_add_detections(ev, cd, (size_t)res.num_detections);
        }
        mo_image_free(&img);
        if (r)
            ret = cli_error(path, r);
        progress_update(&pr, (size_t)i + 1, (size_t)n);
    }
    progress_end(&pr, (size_t)n, (size_t)n);
    mo_pipeline_session_close(&s);
    mo_pipeline_close(&p);
    return ret;
}

int cmd_coco(int argc, char **argv)
{
    const char *model = NULL, *head = NULL, *images = NULL;
    const char *gt = NULL, *json = NULL, *plot = NULL, *plot_cats = NULL, *state = NULL;
    const char **results = calloc((size_t)argc + 1, sizeof(char *));
    int nres = 0, per_category = 0, shard = 0, nshards = 1, prog = -1, sharded = 0;
    if (!results)
        return cli_error("mo-eval", MO_ENOMEM);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--gt") && more) {
            gt = argv[++i];
        } else if (!strcmp(a, "--model") && more) {
            model = argv[++i];
        } else if (!strcmp(a, "--head") && more) {
            head = argv[++i];
        } else if (!strcmp(a, "--images") && more) {
            images = argv[++i];
        } else if (!strcmp(a, "--results") && more) {
            results[nres++] = argv[++i];
        } else if (!strcmp(a, "--json") && more) {
            json = argv[++i];
        } else if (!strcmp(a, "--plot") && more) {
            plot = argv[++i];
        } else if (!strcmp(a, "--plot-category") && more) {
            plot_cats = argv[++i];
        } else if (!strcmp(a, "--per-category")) {
            per_category = 1;
        } else if (!strcmp(a, "--state") && more) {
            state = argv[++i];
        } else if (!strcmp(a, "--shard") && more) {
            sharded = 1;
            if (cli_parse_shard(argv[++i], &shard, &nshards)) {
                free(results);
                return cli_usage("--shard wants I/N with 0 <= I < N, not '%s'", argv[i]);
            }
        } else if (!cli_progress_flag(a, &prog)) {
            free(results);
            return cli_usage("coco: unknown or incomplete option '%s'", a);
        }
    }
    if (!gt || (!nres && !model) || (model && (!head || !images))) {
        free(results);
        return cli_usage("coco needs --gt and --results, or --gt, --model, --head and --images%s",
                         "");
    }
    if (sharded && !state) {
        free(results);
        return cli_usage("--shard needs --state FILE%s", "");
    }
    mo_coco_eval *ev;
    int r = mo_coco_eval_open(&ev, gt), ret = 0;
    if (r) {
        free(results);
        return cli_error("ground truth", r);
    }
    for (int i = 0; i < nres && !ret; i++)
        if ((r = mo_coco_eval_load_results(ev, results[i])))
            ret = cli_error("results", r);
    if (!ret && model)
        ret = detect_all(ev, model, head, images, prog);
    if (!ret && mo_coco_eval_num_ignored(ev))
        fprintf(stderr, "mo-eval: note: %zu detections of categories absent from %s ignored\n",
                mo_coco_eval_num_ignored(ev), gt);
    if (!ret) {
        progress p;
        progress_init(&p, "evaluating", prog);
        r = mo_coco_eval_evaluate(ev, shard, nshards, progress_update, &p);
        size_t total = (size_t)((mo_coco_eval_num_images(ev) + nshards - 1 - shard) / nshards);
        progress_end(&p, total, total);
        if (r)
            ret = cli_error("evaluate", r);
    }
    if (!ret && state && (r = mo_coco_eval_save_state(ev, state)))
        ret = cli_error(state, r);
    if (!ret && !sharded)
        ret = coco_report(ev, json, per_category, plot, plot_cats);
    mo_coco_eval_close(&ev);
    free(results);
    return ret;
}
