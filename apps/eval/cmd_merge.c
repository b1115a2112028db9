/* mo-eval merge: report the union of shard states as a single run would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/eval.h"
#include "parsers_internal.h"
#include "subcommands.h"

/* Kind of a state file from its header: 1 coco, 2 voc, 3 seg; -1 unreadable (said). */
static int state_kind(const char *path)
{
    int kind, r = mo_eval_state_kind(path, &kind);
    if (r) {
        cli_error("merge", r);
        return -1;
    }
    return kind;
}

int cmd_merge(int argc, char **argv)
{
    const char *json = NULL, *plot = NULL, *plot_cats = NULL;
    const char **st = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0, per_category = 0;
    if (!st)
        return cli_error("merge", MO_ENOMEM);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json") && i + 1 < argc) {
            json = argv[++i];
        } else if (!strcmp(a, "--plot") && i + 1 < argc) {
            plot = argv[++i];
        } else if (!strcmp(a, "--plot-category") && i + 1 < argc) {
            plot_cats = argv[++i];
        } else if (!strcmp(a, "--per-category")) {
            per_category = 1;
        } else if (a[0] == '-' && a[1]) {
            free(st);
            return cli_usage("merge: unknown or incomplete option '%s'", a);
        } else {
            st[n++] = a;
        }
    }
    if (!n) {
        free(st);
        return cli_usage("merge needs state files%s", "");
    }
    int kind = state_kind(st[0]), ret = 0, r;
    if (kind == 1) {
        mo_coco_eval *ev;
        if ((r = mo_coco_eval_open_state(&ev, st[0])))
            ret = cli_error("merge", r);
        for (int i = 1; i < n && !ret; i++)
            if ((r = mo_coco_eval_load_state(ev, st[i])))
                ret = cli_error("merge", r);
        if (!ret)
            ret = coco_report(ev, json, per_category, plot, plot_cats);
        mo_coco_eval_close(&ev);
    } else if (kind == 2) {
        mo_voc_eval *ev;
        if ((r = mo_voc_eval_open_state(&ev, st[0])))
            ret = cli_error("merge", r);
        for (int i = 1; i < n && !ret; i++)
            if ((r = mo_voc_eval_load_state(ev, st[i])))
                ret = cli_error("merge", r);
        if (!ret)
            ret = voc_report(ev, json, plot);
        mo_voc_eval_close(&ev);
    } else if (kind == 3) {
        mo_seg_eval *ev;
        if ((r = mo_seg_eval_open_state(&ev, st[0])))
            ret = cli_error("merge", r);
        for (int i = 1; i < n && !ret; i++)
            if ((r = mo_seg_eval_load_state(ev, st[i])))
                ret = cli_error("merge", r);
        if (!ret)
            ret = seg_report(ev, json);
        mo_seg_eval_close(&ev);
    } else {
        if (kind >= 0)
            fprintf(stderr, "mo-eval: %s: unknown state kind %d\n", st[0], kind);
        ret = 1;
    }
    free(st);
    return ret;
}
