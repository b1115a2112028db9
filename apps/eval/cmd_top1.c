/* mo-eval top1: top-1 / top-5 accuracy of a classification model on a labelled image list,
 * run here (--model) or read from predictions (--pred: mo-classify --json output, or lines
 * "file<TAB>c1 c2 ..."). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/classify.h"
#include "mo/eval.h"
#include "mo/image.h"
#include "parsers_internal.h"
#include "progress.h"
#include "subcommands.h"

typedef mo_top1_item item;

static void report(const mo_topk_eval *t, const char *json)
{
    printf("images %llu  top-1 %.4f  top-5 %.4f\n", (unsigned long long)t->total,
           mo_topk_eval_accuracy(t, 1), mo_topk_eval_accuracy(t, 5));
    if (!json)
        return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "images", json_object_new_int64((int64_t)t->total));
    json_object_object_add(o, "top1", json_object_new_double(mo_topk_eval_accuracy(t, 1)));
    json_object_object_add(o, "top5", json_object_new_double(mo_topk_eval_accuracy(t, 5)));
    json_object_object_add(o, "correct1", json_object_new_int64((int64_t)t->correct[0]));
    json_object_object_add(o, "correct5", json_object_new_int64((int64_t)t->correct[4]));
    if (json_object_to_file_ext(json, o, JSON_C_TO_STRING_PRETTY))
        fprintf(stderr, "mo-eval: %s: cannot write\n", json);
    json_object_put(o);
}

/* Predictions of mo-classify --json: [{"image", "top": [{"class"}...]}...], matched by the
 * image path relative to --root (parsers_internal.h). */
static int eval_pred(const item *items, int n, const char *root, const char *pred,
                     mo_topk_eval *t)
{
    mo_top1_pred *preds;
    size_t np;
    int r = mo_top1_read_pred(pred, &preds, &np);
    if (r)
        return cli_error("--pred", r);
    r = mo_top1_match(items, (size_t)n, root, preds, np, pred, t);
    mo_top1_free_pred(preds, np);
    return r ? cli_error("--pred", r) : 0;
}

static int eval_model(const item *items, int n, const char *root, const char *model,
                      mo_topk_eval *t, int prog)
{
    mo_file *file = NULL;
    mo_backbone *bb = NULL;
    mo_cls *cls = NULL;
    mo_session *s = NULL;
    float *in = NULL, *p = NULL;
    int r, ret = 0;
    if ((r = mo_file_open(&file, model)) || (r = mo_backbone_open(&bb, file, NULL)) ||
        (r = mo_cls_open(&cls, file, bb, NULL))) {
        ret = cli_error(model, r);
        goto done;
    }
    /* read and validated once, when the head was opened */
    int resize, crop;
    float mean[3], std[3];
    mo_cls_preprocess(cls, &resize, &crop, mean, std);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ss.max_width = crop;
    const int nc = mo_cls_num_classes(cls);
    in = malloc(sizeof(float) * 3 * (size_t)crop * (size_t)crop);
    p = malloc(sizeof(float) * (size_t)nc);
    if ((r = mo_session_open(&s, bb, &ss)) || !in || !p) {
        ret = cli_error(model, r ? r : MO_ENOMEM);
        goto done;
    }
    progress pb;
    progress_init(&pb, "classifying", prog);
    for (int i = 0; i < n && !ret; i++) {
        char path[8192];
        snprintf(path, sizeof(path), "%s%s%s", root ? root : "", root ? "/" : "", items[i].file);
        mo_image img = { 0 };
        mo_tensor ten = { .data = in };
        mo_features feats;
        mo_class_score best[MO_TOPK_MAX];
        r = mo_image_load(&img, path);
        if (!r)
            r = mo_preprocess_classify(&img, resize, crop, mean, std, &ten);
        mo_image_free(&img);
        if (!r)
            r = mo_backbone_run(s, &ten, 32, &feats);
        if (!r)
            r = mo_cls_logits(cls, &feats, p);
        if (r) {
            ret = cli_error(path, r);
            break;
        }
        mo_softmax(p, nc);
        int k = mo_topk(p, nc, MO_TOPK_MAX, best), ranked[MO_TOPK_MAX];
        for (int j = 0; j < k; j++)
            ranked[j] = best[j].index;
        mo_topk_eval_add(t, items[i].label, ranked, k);
        progress_update(&pb, (size_t)i + 1, (size_t)n);
    }
    progress_end(&pb, t->total, (size_t)n);
done:
    free(in);
    free(p);
    mo_session_close(&s);
    mo_cls_close(&cls);
    mo_backbone_close(&bb);
    mo_file_close(&file);
    return ret;
}

int cmd_top1(int argc, char **argv)
{
    const char *list = NULL, *root = NULL, *model = NULL, *pred = NULL, *json = NULL;
    int prog = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--list") && more)
            list = argv[++i];
        else if (!strcmp(a, "--root") && more)
            root = argv[++i];
        else if (!strcmp(a, "--model") && more)
            model = argv[++i];
        else if (!strcmp(a, "--pred") && more)
            pred = argv[++i];
        else if (!strcmp(a, "--json") && more)
            json = argv[++i];
        else if (!cli_progress_flag(a, &prog))
            return cli_usage("top1: unknown or incomplete option '%s'", a);
    }
    if (!list || !model == !pred)
        return cli_usage("top1 needs --list and one of --model, --pred%s", "");
    size_t nitems = 0;
    item *items;
    int r = mo_top1_read_list(list, &items, &nitems);
    if (r)
        return cli_error("--list", r);
    const int n = (int)nitems; /* at most INT_MAX (mo_top1_parse_list) */
    mo_topk_eval t = { 0 };
    int ret = model ? eval_model(items, n, root, model, &t, prog) : eval_pred(items, n, root, pred, &t);
    if (!ret)
        report(&t, json);
    mo_top1_free_list(items, nitems);
    return ret;
}
