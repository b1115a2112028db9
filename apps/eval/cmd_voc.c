/* mo-eval voc: Pascal VOC detection AP (classic voc_eval) of per-class results files. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mo/eval.h"
#include "progress.h"
#include "subcommands.h"

static int voc_plot(const mo_voc_eval *ev, const char *path)
{
    const int C = mo_voc_eval_num_classes(ev);
    const double **xs = calloc((size_t)C, sizeof(*xs)), **ys = calloc((size_t)C, sizeof(*ys));
    size_t *ns = calloc((size_t)C, sizeof(size_t));
    const char **names = calloc((size_t)C, sizeof(char *));
    int n = 0, ret = 0;
    if (!xs || !ys || !ns || !names) {
        ret = cli_error("plot", MO_ENOMEM);
    } else {
        for (int c = 0; c < C; c++) {
            if (mo_voc_eval_ap(ev, c, 0) < 0)
                continue;
            mo_voc_eval_pr_curve(ev, c, &xs[n], &ys[n], &ns[n]);
            names[n++] = mo_voc_eval_class_name(ev, c);
        }
        int r = n ? mo_eval_plot_pr(path, n, xs, ys, ns, names, "VOC precision-recall")
                  : MO_EINVAL;
        if (r)
            ret = cli_error(path, r);
    }
    free(xs);
    free(ys);
    free(ns);
    free(names);
    return ret;
}

int voc_report(mo_voc_eval *ev, const char *json, const char *plot)
{
    int r = mo_voc_eval_accumulate(ev);
    if (r)
        return cli_error("accumulate", r);
    printf("%-14s %10s %10s\n", "class", "AP(07)", "AP");
    json_object *root = json ? json_object_new_object() : NULL, *arr = json_object_new_array();
    for (int c = 0; c < mo_voc_eval_num_classes(ev); c++) {
        double a7 = mo_voc_eval_ap(ev, c, 1), a = mo_voc_eval_ap(ev, c, 0);
        if (a < 0)
            printf("%-14s %10s %10s\n", mo_voc_eval_class_name(ev, c), "-", "-");
        else
            printf("%-14s %10.4f %10.4f\n", mo_voc_eval_class_name(ev, c), a7, a);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(mo_voc_eval_class_name(ev, c)));
        json_object_object_add(o, "ap07", json_object_new_double(a7));
        json_object_object_add(o, "ap", json_object_new_double(a));
        json_object_array_add(arr, o);
    }
    printf("%-14s %10.4f %10.4f\n", "mAP", mo_voc_eval_map(ev, 1), mo_voc_eval_map(ev, 0));
    int ret = 0;
    if (root) {
        json_object_object_add(root, "classes", arr);
        json_object_object_add(root, "map07", json_object_new_double(mo_voc_eval_map(ev, 1)));
        json_object_object_add(root, "map", json_object_new_double(mo_voc_eval_map(ev, 0)));
        if (json_object_to_file_ext(json, root, JSON_C_TO_STRING_PRETTY)) {
            fprintf(stderr, "mo-eval: %s: cannot write\n", json);
            ret = 1;
        }
        json_object_put(root);
    } else {
        json_object_put(arr);
    }
    if (!ret && plot)
        ret = voc_plot(ev, plot);
    return ret;
}

int cmd_voc(int argc, char **argv)
{
    const char *devkit = NULL, *set = NULL, *det = NULL, *json = NULL, *plot = NULL, *state = NULL;
    int shard = 0, nshards = 1, prog = -1, sharded = 0;
    double iou = 0.5;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--devkit") && more) {
            devkit = argv[++i];
        } else if (!strcmp(a, "--set") && more) {
            set = argv[++i];
        } else if (!strcmp(a, "--det") && more) {
            det = argv[++i];
        } else if (!strcmp(a, "--json") && more) {
            json = argv[++i];
        } else if (!strcmp(a, "--plot") && more) {
            plot = argv[++i];
        } else if (!strcmp(a, "--state") && more) {
            state = argv[++i];
        } else if (!strcmp(a, "--iou") && more) {
            char *end;
            iou = strtod(argv[++i], &end);
            if (*end || !(iou >= 0 && iou <= 1))
                return cli_usage("--iou wants a number in [0, 1], not '%s'", argv[i]);
        } else if (!strcmp(a, "--shard") && more) {
            sharded = 1;
            if (cli_parse_shard(argv[++i], &shard, &nshards))
                return cli_usage("--shard wants I/N with 0 <= I < N, not '%s'", argv[i]);
        } else if (!cli_progress_flag(a, &prog)) {
            return cli_usage("voc: unknown or incomplete option '%s'", a);
        }
    }
    if (!devkit || !set || !det)
        return cli_usage("voc needs --devkit, --set and --det%s", "");
    if (!strstr(det, "{}"))
        return cli_usage("--det '%s' has no '{}' for the class name", det);
    if (sharded && !state)
        return cli_usage("--shard needs --state FILE%s", "");
    mo_voc_eval *ev;
    int r = mo_voc_eval_open(&ev, devkit, set, NULL, 0), ret = 0;
    if (r)
        return cli_error("ground truth", r);
    for (int c = 0; c < mo_voc_eval_num_classes(ev) && !ret; c++) {
        const char *name = mo_voc_eval_class_name(ev, c), *brace = strstr(det, "{}");
        size_t len = strlen(det) + strlen(name);
        char *path = malloc(len);
        if (!path) {
            ret = cli_error("mo-eval", MO_ENOMEM);
            break;
        }
        snprintf(path, len, "%.*s%s%s", (int)(brace - det), det, name, brace + 2);
        /* A class without a file has no detections; anything else that exists is read
         * (or refused: a FIFO or device is not opened, let alone read). */
        struct stat st;
        if (!stat(path, &st) && (r = mo_voc_eval_load_detections(ev, c, path)))
            ret = cli_error("detections", r);
        free(path);
    }
    if (!ret) {
        progress p;
        progress_init(&p, "evaluating", prog);
        r = mo_voc_eval_evaluate(ev, iou, shard, nshards, progress_update, &p);
        size_t total = (size_t)((mo_voc_eval_num_images(ev) + nshards - 1 - shard) / nshards);
        progress_end(&p, total, total);
        if (r)
            ret = cli_error("evaluate", r);
    }
    if (!ret && state && (r = mo_voc_eval_save_state(ev, state)))
        ret = cli_error(state, r);
    if (!ret && !sharded)
        ret = voc_report(ev, json, plot);
    mo_voc_eval_close(&ev);
    return ret;
}
