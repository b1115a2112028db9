/* mo-eval seg: mIoU and accuracies of predicted label PNGs against ground truth PNGs. */
#include <dirent.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/eval.h"
#include "parsers_internal.h"
#include "progress.h"
#include "subcommands.h"

static json_object *num_or_null(double v)
{
    return isnan(v) ? NULL : json_object_new_double(v);
}

int seg_report(mo_seg_eval *ev, const char *json)
{
    const int k = mo_seg_eval_num_classes(ev);
    double iou[256], acc[256];
    mo_seg_metrics m;
    int r = mo_seg_eval_metrics(ev, &m, iou, acc);
    if (r)
        return cli_error("metrics", r);
    printf("%-6s %10s %10s\n", "class", "IoU", "accuracy");
    for (int c = 0; c < k; c++) {
        char a[16] = "-", b[16] = "-";
        if (!isnan(iou[c]))
            snprintf(a, sizeof(a), "%.4f", iou[c]);
        if (!isnan(acc[c]))
            snprintf(b, sizeof(b), "%.4f", acc[c]);
        printf("%-6d %10s %10s\n", c, a, b);
    }
    printf("mIoU %.4f (%d classes)  pixel accuracy %.4f  mean class accuracy %.4f  pixels %llu\n",
           m.miou, m.num_present, m.pixel_acc, m.mean_class_acc, (unsigned long long)m.pixels);
    if (!json)
        return 0;
    json_object *root = json_object_new_object(), *ji = json_object_new_array(),
                *ja = json_object_new_array(), *cm = json_object_new_array();
    const uint64_t *mat = mo_seg_eval_confusion(ev);
    for (int c = 0; c < k; c++) {
        json_object_array_add(ji, num_or_null(iou[c]));
        json_object_array_add(ja, num_or_null(acc[c]));
        json_object *row = json_object_new_array();
        for (int j = 0; j < k; j++)
            json_object_array_add(row, json_object_new_int64((int64_t)mat[(size_t)c * k + j]));
        json_object_array_add(cm, row);
    }
    json_object_object_add(root, "miou", num_or_null(m.miou));
    json_object_object_add(root, "pixel_acc", num_or_null(m.pixel_acc));
    json_object_object_add(root, "mean_class_acc", num_or_null(m.mean_class_acc));
    json_object_object_add(root, "pixels", json_object_new_int64((int64_t)m.pixels));
    json_object_object_add(root, "iou", ji);
    json_object_object_add(root, "acc", ja);
    json_object_object_add(root, "confusion", cm);
    int ret = 0;
    if (json_object_to_file_ext(json, root, JSON_C_TO_STRING_PLAIN)) {
        fprintf(stderr, "mo-eval: %s: cannot write\n", json);
        ret = 1;
    }
    json_object_put(root);
    return ret;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Ids from a list file (first word of each line) or every *.png of dir (sorted). */
static char **read_ids(const char *list, const char *dir, int *n)
{
    if (list) {
        char **ids;
        size_t k;
        int r = mo_eval_read_ids(list, &ids, &k);
        if (!r && k > INT_MAX) {
            mo_eval_free_ids(ids, k);
            r = MO_EUNSUPPORTED;
        }
        if (r) {
            cli_error("--list", r);
            return NULL;
        }
        *n = (int)k;
        return ids;
    }
    size_t cap = 64, k = 0;
    char **ids = malloc(sizeof(char *) * cap);
    if (!ids)
        return NULL;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "mo-eval: %s: cannot list the folder\n", dir);
        free(ids);
        return NULL;
    }
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".png"))
            continue;
        if (k == cap) {
            char **p = realloc(ids, sizeof(char *) * (cap *= 2));
            if (!p)
                break;
            ids = p;
        }
        ids[k] = strdup(e->d_name);
        if (ids[k])
            ids[k][len - 4] = 0;
        k++;
    }
    closedir(d);
    qsort(ids, k, sizeof(char *), cmp_str);
    *n = (int)k;
    return ids;
}

int cmd_seg(int argc, char **argv)
{
    const char *gt = NULL, *pred = NULL, *list = NULL, *json = NULL, *state = NULL;
    int classes = 21, ignore = 255, shard = 0, nshards = 1, prog = -1, sharded = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--gt") && more) {
            gt = argv[++i];
        } else if (!strcmp(a, "--pred") && more) {
            pred = argv[++i];
        } else if (!strcmp(a, "--list") && more) {
            list = argv[++i];
        } else if (!strcmp(a, "--json") && more) {
            json = argv[++i];
        } else if (!strcmp(a, "--state") && more) {
            state = argv[++i];
        } else if ((!strcmp(a, "--classes") || !strcmp(a, "--ignore")) && more) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            int is_cls = !strcmp(a, "--classes");
            if (*end || v < (is_cls ? 1 : -1) || v > 255)
                return cli_usage("bad value '%s' (--classes 1..255, --ignore -1..255)", argv[i]);
            *(is_cls ? &classes : &ignore) = (int)v;
        } else if (!strcmp(a, "--shard") && more) {
            sharded = 1;
            if (cli_parse_shard(argv[++i], &shard, &nshards))
                return cli_usage("--shard wants I/N with 0 <= I < N, not '%s'", argv[i]);
        } else if (!cli_progress_flag(a, &prog)) {
            return cli_usage("seg: unknown or incomplete option '%s'", a);
        }
    }
    if (!gt || !pred)
        return cli_usage("seg needs --gt DIR and --pred DIR%s", "");
    if (sharded && !state)
        return cli_usage("--shard needs --state FILE%s", "");
    int n = 0;
    char **ids = read_ids(list, gt, &n);
    if (!ids)
        return 1;
    if (n == 0) {
        free(ids);
        fprintf(stderr, "mo-eval: no label maps to evaluate\n");
        return 1;
    }
    mo_seg_eval *ev;
    int r = mo_seg_eval_open(&ev, classes, ignore), ret = 0;
    /* The list and this shard go into the state: a merge refuses overlaps and gaps. */
    if (!r && (r = mo_seg_eval_set_images(ev, (const char *const *)ids, n, shard, nshards)))
        mo_seg_eval_close(&ev);
    if (r) {
        ret = cli_error("seg", r);
    } else {
        progress p;
        progress_init(&p, "evaluating", prog);
        size_t total = (size_t)((n + nshards - 1 - shard) / nshards), done = 0;
        for (int i = shard; i < n && !ret; i += nshards) {
            size_t lg = strlen(gt) + strlen(ids[i]) + 8, lp = strlen(pred) + strlen(ids[i]) + 8;
            char *pg = malloc(lg), *pp = malloc(lp);
            if (!pg || !pp) {
                ret = cli_error("seg", MO_ENOMEM);
            } else {
                snprintf(pg, lg, "%s/%s.png", gt, ids[i]);
                snprintf(pp, lp, "%s/%s.png", pred, ids[i]);
                if ((r = mo_seg_eval_add_files(ev, pg, pp)))
                    ret = cli_error(ids[i], r);
            }
            free(pg);
            free(pp);
            progress_update(&p, ++done, total);
        }
        progress_end(&p, done, total);
        if (!ret && state && (r = mo_seg_eval_save_state(ev, state)))
            ret = cli_error(state, r);
        if (!ret && !sharded)
            ret = seg_report(ev, json);
        mo_seg_eval_close(&ev);
    }
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return ret;
}
