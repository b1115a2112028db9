/* mo-classify: top-k ImageNet-style classification of one or many images.
 * Per-image failures are reported and do not stop the batch. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/classify.h"
#include "mo/image.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: mo-classify --model FILE [--top K] [--json] IMAGE...\n"
            "  --model FILE  model file holding a backbone and a classification head\n"
            "  --top K       number of classes to print per image (default 5)\n"
            "  --json        print one JSON array: {\"image\", \"top\": [{\"class\", \"name\", "
            "\"prob\"}]}\n"
            "                or {\"image\", \"error\"} per input, in input order\n"
            "exit status: 0 all images classified, 1 some failed, 2 usage or model error\n");
}

typedef struct classifier {
    mo_file *file;
    mo_backbone *bb;
    mo_cls *cls;
    mo_session *session;
    int resize, crop;
    float mean[3], std[3];
    float *input, *probs;
} classifier;

static void classifier_close(classifier *c)
{
    mo_session_close(&c->session);
    mo_cls_close(&c->cls);
    mo_backbone_close(&c->bb);
    mo_file_close(&c->file);
    free(c->input);
    free(c->probs);
}

static int classifier_open(classifier *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    int r;
    if ((r = mo_file_open(&c->file, path)) || (r = mo_backbone_open(&c->bb, c->file, NULL)) ||
        (r = mo_cls_open(&c->cls, c->file, c->bb, NULL))) {
        fprintf(stderr, "mo-classify: %s: %s (%s)\n", path, mo_strerror(r), mo_last_error());
        return -1;
    }
    /* read and validated once, when the head was opened */
    mo_cls_preprocess(c->cls, &c->resize, &c->crop, c->mean, c->std);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ss.max_width = c->crop;
    if ((r = mo_session_open(&c->session, c->bb, &ss))) {
        fprintf(stderr, "mo-classify: %s (%s)\n", mo_strerror(r), mo_last_error());
        return -1;
    }
    c->input = malloc(sizeof(float) * 3 * (size_t)c->crop * (size_t)c->crop);
    c->probs = malloc(sizeof(float) * (size_t)mo_cls_num_classes(c->cls));
    if (!c->input || !c->probs) {
        fprintf(stderr, "mo-classify: out of memory\n");
        return -1;
    }
    return 0;
}

/* Fills c->probs; on failure returns the error and leaves the message in mo_last_error(). */
static int classify_one(classifier *c, const char *image)
{
    mo_image img = { 0 };
    int r = mo_image_load(&img, image);
    if (r)
        return r;
    mo_tensor t = { .data = c->input };
    r = mo_preprocess_classify(&img, c->resize, c->crop, c->mean, c->std, &t);
    mo_image_free(&img);
    mo_features feats;
    if (!r)
        r = mo_backbone_run(c->session, &t, 32, &feats);
    if (!r)
        r = mo_cls_logits(c->cls, &feats, c->probs);
    if (!r)
        mo_softmax(c->probs, mo_cls_num_classes(c->cls));
    return r;
}

/* json-c's adds leave the value with the caller when they fail (out of memory): these
 * free it then. 1 when the value was added. */
static int obj_add(json_object *o, const char *key, json_object *v)
{
    if (o && v && !json_object_object_add(o, key, v))
        return 1;
    json_object_put(v);
    return 0;
}

static int arr_add(json_object *a, json_object *v)
{
    if (a && v && !json_object_array_add(a, v))
        return 1;
    json_object_put(v);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int top = 5, json = 0, first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000000) {
                fprintf(stderr, "mo-classify: --top needs a positive number\n");
                return 2;
            }
            top = (int)v;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--")) {
            first = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "mo-classify: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (!model || first >= argc) {
        usage(stderr);
        return 2;
    }
    classifier c;
    if (classifier_open(&c, model)) {
        classifier_close(&c);
        return 2;
    }
    int k = top < mo_cls_num_classes(c.cls) ? top : mo_cls_num_classes(c.cls);
    mo_class_score *best = malloc(sizeof(*best) * (size_t)k);
    json_object *results = json_object_new_array();
    if (!best || !results) {
        fprintf(stderr, "mo-classify: out of memory\n");
        return 2;
    }
    int failed = 0, oom = 0;
    for (int i = first; i < argc && !oom; i++) {
        int r = classify_one(&c, argv[i]);
        json_object *item = json ? json_object_new_object() : NULL;
        int ok = !json || obj_add(item, "image", json_object_new_string(argv[i]));
        if (r) {
            failed++;
            fprintf(stderr, "mo-classify: %s: %s (%s)\n", argv[i], mo_strerror(r), mo_last_error());
            if (json)
                ok = ok && obj_add(item, "error", json_object_new_string(mo_last_error()));
        } else {
            int n = mo_topk(c.probs, mo_cls_num_classes(c.cls), k, best);
            json_object *list = json ? json_object_new_array() : NULL;
            if (!json)
                printf("%s\n", argv[i]);
            for (int j = 0; j < n; j++) {
                const char *name = mo_cls_class_name(c.cls, best[j].index);
                if (json) {
                    json_object *e = json_object_new_object();
                    if (obj_add(e, "class", json_object_new_int(best[j].index)) &&
                        obj_add(e, "name", json_object_new_string(name)) &&
                        obj_add(e, "prob", json_object_new_double(best[j].prob))) {
                        ok &= arr_add(list, e);
                    } else {
                        ok = 0;
                        json_object_put(e);
                    }
                } else {
                    printf("  %d. %6.4f  %4d  %s\n", j + 1, best[j].prob, best[j].index, name);
                }
            }
            if (json)
                ok = obj_add(item, "top", list) && ok;
        }
        if (json && ok)
            ok = arr_add(results, item);
        else if (json)
            json_object_put(item);
        oom = json && !ok;
    }
    /* json-c returns NULL when it runs out of memory while serialising */
    const char *text = json && !oom ? json_object_to_json_string_ext(
                                          results, JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE)
                                    : NULL;
    if (json && !text) {
        fprintf(stderr, "mo-classify: out of memory for the JSON output\n");
        failed = -1;
    } else if (json) {
        printf("%s\n", text);
    }
    json_object_put(results);
    free(best);
    classifier_close(&c);
    return failed < 0 ? 2 : failed ? 1 : 0;
}
