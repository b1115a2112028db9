/* mo-detect: SSDLite object detection on MobileOne for one or many images (and folders).
 * Writes one annotated picture per input and, with --json, COCO-format results.
 * Per-image failures are reported and do not stop the batch. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mo/detect.h"
#include "mo/draw.h"
#include "mo/image.h"
#include "mo/limits.h"

static void usage(FILE *to)
{
    fprintf(to,
        "usage: mo-detect --model FILE [--head FILE] [options] IMAGE|DIR...\n"
        "  --model FILE     backbone model file, or backbone + detection head in one file\n"
        "  --head FILE      detection head file (mo.contents [\"det\"]) naming that backbone\n"
        "  --out DIR        folder for the annotated pictures (default: .), created if needed;\n"
        "                   one <name>.png (or .jpg) per input\n"
        "  --no-images      write no pictures\n"
        "  --jpeg           write JPEG (quality 90) instead of PNG\n"
        "  --keep-size      draw on the image as it is; by default an image whose longer\n"
        "                   side is under 256 px is enlarged (pixels repeated) until it\n"
        "                   reaches 256 px, so that labels stay legible\n"
        "  --score T        keep detections with score > T (default 0.001, torchvision's; the\n"
        "                   value for COCO evaluation)\n"
        "  --draw-score T   draw only detections with score >= T (default 0.3)\n"
        "  --max-dets N     detections per image (default 300)\n"
        "  --nms T          NMS IoU threshold (default 0.55)\n"
        "  --class-agnostic NMS across classes: one label per object\n"
        "  --soft-nms SIGMA Gaussian soft-NMS instead of NMS (e.g. 0.5)\n"
        "  --max-classes N  each default box proposes at most its N best classes\n"
        "  --json FILE      write all detections as COCO results (\"-\": stdout):\n"
        "                   [{\"image_id\", \"category_id\", \"bbox\": [x, y, w, h], \"score\"}]\n"
        "                   (category_id: the head's det.category_ids, else the class index)\n"
        "  --annotations F  COCO instances file: image ids by file name (default: the\n"
        "                   digits of the file name, e.g. 000000000139.jpg -> 139)\n"
        "  --quiet          no per-image summary on stdout\n"
        "Folders are read one level deep (.jpg .jpeg .png .bmp .gif, sorted by name).\n"
        "Images up to %d pixels a side and %d pixels in all (decoder limits); grayscale\n"
        "and palette images are converted to RGB.\n"
        "exit status: 0 all images done, 1 some failed, 2 usage or model error\n",
        MO_IMAGE_MAX_SIDE, MO_IMAGE_MAX_PIXELS);
}

/* ------------------------------------------------------------------ inputs */

typedef struct strlist {
    char **s;
    int n, cap;
} strlist;

static int push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->s, sizeof(char *) * (size_t)cap);
        if (!p)
            return -1;
        l->s = p;
        l->cap = cap;
    }
    return (l->s[l->n] = strdup(s)) ? l->n++, 0 : -1;
}

static void strlist_free(strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    static const char *const ext[] = { ".jpg", ".jpeg", ".png", ".bmp", ".gif" };
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        if (!strcasecmp(dot, ext[i]))
            return 1;
    return 0;
}

/* A file is taken as given; a folder contributes its image files, sorted. */
static int add_input(strlist *l, const char *path)
{
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode))
        return push(l, path);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "mo-detect: %s: %s\n", path, strerror(errno));
        return push(l, path); /* reported again as a failed image */
    }
    strlist names = { 0 };
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && has_image_ext(e->d_name) && push(&names, e->d_name)) {
            closedir(d);
            strlist_free(&names);
            return -1;
        }
    closedir(d);
    if (names.n)
        qsort(names.s, (size_t)names.n, sizeof(char *), cmp_str);
    int r = 0;
    for (int i = 0; i < names.n && !r; i++) {
        size_t len = strlen(path) + strlen(names.s[i]) + 2;
        char *full = malloc(len);
        if (!full) {
            r = -1;
            break;
        }
        snprintf(full, len, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/",
                 names.s[i]);
        r = push(l, full);
        free(full);
    }
    strlist_free(&names);
    return r;
}

/* "dir/000000000139.jpg" -> "000000000139" */
static void stem_of(const char *path, char *buf, size_t size)
{
    const char *b = strrchr(path, '/');
    snprintf(buf, size, "%s", b ? b + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = 0;
}

/* ------------------------------------------------------------------ image ids */

typedef struct id_map {
    json_object *by_name; /* file name -> id, from --annotations */
} id_map;

static int id_map_load(id_map *m, const char *path)
{
    /* Checked before json-c opens it: a FIFO would block that open, /dev/zero be read without
     * bound, a huge file be parsed into a larger tree (the SDK's limit json_file_bytes). */
    struct stat st;
    mo_limits lim;
    mo_limits_get(&lim);
    if (stat(path, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > lim.json_file_bytes) {
        fprintf(stderr, "mo-detect: %s: %s\n", path,
                stat(path, &st) ? strerror(errno)
                : !S_ISREG(st.st_mode) ? "not a regular file (a FIFO, device or directory)"
                                       : "over the limit json_file_bytes");
        return -1;
    }
    json_object *root = json_object_from_file(path), *images;
    if (!root || !json_object_object_get_ex(root, "images", &images) ||
        !json_object_is_type(images, json_type_array)) {
        fprintf(stderr, "mo-detect: %s is not a COCO annotation file (no \"images\" list)\n",
                path);
        json_object_put(root);
        return -1;
    }
    m->by_name = json_object_new_object();
    for (size_t i = 0; i < json_object_array_length(images); i++) {
        json_object *im = json_object_array_get_idx(images, i), *fn, *id;
        if (json_object_object_get_ex(im, "file_name", &fn) &&
            json_object_object_get_ex(im, "id", &id))
            json_object_object_add(m->by_name, json_object_get_string(fn),
                                   json_object_new_int64(json_object_get_int64(id)));
    }
    json_object_put(root);
    return 0;
}

/* The image id: from the annotations, else the digits of an all-digit stem, else -1. */
static long long image_id(const id_map *m, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    json_object *id;
    if (m->by_name)
        return json_object_object_get_ex(m->by_name, base, &id) ? json_object_get_int64(id) : -1;
    char stem[512];
    stem_of(path, stem, sizeof(stem));
    if (!stem[0] || strlen(stem) > 18)
        return -1;
    for (const char *p = stem; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    return atoll(stem);
}

/* ------------------------------------------------------------------ drawing */

/* Draw the detections (in original image pixels) on img, which is the image enlarged
 * f times. */
static void draw(mo_image *img, int f, const mo_det *det, const mo_detection *d, int n,
                 float min_score)
{
    const int thick = mo_draw_box_thickness(img); /* 2 px at 480, 12 at 3000 */
    const int scale = mo_draw_text_scale(img);
    /* boxes first (lowest score first, so the best end on top), then every tag above them */
    for (int i = n - 1; i >= 0; i--) {
        if (d[i].score < min_score)
            continue;
        mo_draw_box(img, (int)(d[i].x1 * f + 0.5f), (int)(d[i].y1 * f + 0.5f),
                    (int)(d[i].x2 * f + 0.5f), (int)(d[i].y2 * f + 0.5f), thick,
                    mo_draw_class_color(d[i].label));
    }
    for (int i = n - 1; i >= 0; i--) {
        if (d[i].score < min_score)
            continue;
        char text[96];
        mo_draw_tag_text(text, sizeof(text), mo_det_class_name(det, d[i].label), d[i].score,
                         scale, img->w);
        mo_draw_tag(img, (int)(d[i].x1 * f + 0.5f), (int)(d[i].y1 * f + 0.5f), text, scale,
                    mo_draw_class_color(d[i].label));
    }
}

/* Small images are enlarged f times (pixel replication) before drawing, so that labels
 * stay legible: f = ceil(ENLARGE_TO / longer side) when that side is below ENLARGE_TO. */
#define ENLARGE_TO 256

static int enlarge(const mo_image *src, int f, mo_image *dst)
{
    int r = mo_image_alloc(dst, src->w * f, src->h * f);
    if (r)
        return r;
    for (int y = 0; y < dst->h; y++) {
        const uint8_t *s = src->data + (size_t)(y / f) * src->w * 3;
        uint8_t *o = dst->data + (size_t)y * dst->w * 3;
        for (int x = 0; x < dst->w; x++)
            memcpy(o + 3 * (size_t)x, s + 3 * (size_t)(x / f), 3);
    }
    return MO_OK;
}

/* ------------------------------------------------------------------ main */

typedef struct detector {
    mo_file *file, *head_file;
    mo_backbone *bb;
    mo_det *det;
    mo_session *s;
    int in_w, in_h;
    float mean[3], std[3];
    float *input;
    mo_detection *dets;
    int cap;
} detector;

static void detector_close(detector *d)
{
    mo_session_close(&d->s);
    mo_det_close(&d->det);
    mo_backbone_close(&d->bb);
    mo_file_close(&d->head_file);
    mo_file_close(&d->file);
    free(d->input);
    free(d->dets);
}

static int detector_open(detector *d, const char *model, const char *head,
                         const mo_det_settings *set)
{
    int r;
    const char *what = model;
    if ((r = mo_file_open(&d->file, model)) || (r = mo_backbone_open(&d->bb, d->file, NULL)))
        goto fail;
    what = head ? head : model;
    if (head && (r = mo_file_open(&d->head_file, head)))
        goto fail;
    if ((r = mo_det_open(&d->det, head ? d->head_file : d->file, d->bb, set)))
        goto fail;
    mo_det_input_size(d->det, &d->in_w, &d->in_h);
    mo_det_normalization(d->det, d->mean, d->std);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_width = d->in_w;
    ss.max_height = d->in_h;
    ss.workspace_bytes = mo_det_workspace_size(d->det);
    what = "session";
    if ((r = mo_session_open(&d->s, d->bb, &ss)))
        goto fail;
    d->cap = set->detections_per_img;
    d->input = malloc(sizeof(float) * 3 * (size_t)d->in_w * (size_t)d->in_h);
    d->dets = malloc(sizeof(*d->dets) * (size_t)d->cap);
    if (!d->input || !d->dets) {
        fprintf(stderr, "mo-detect: out of memory\n");
        return -1;
    }
    return 0;
fail:
    fprintf(stderr, "mo-detect: %s: %s (%s)\n", what, mo_strerror(r), mo_last_error());
    return -1;
}

/* Detect on a decoded image; fills d->dets. */
static int detect(detector *d, const mo_image *img, int *n)
{
    mo_tensor t = { .data = d->input, .w = d->in_w, .h = d->in_h };
    mo_features f;
    int r;
    if ((r = mo_preprocess_resize(img, d->mean, d->std, &t)) ||
        (r = mo_backbone_run(d->s, &t, 32, &f)))
        return r;
    return mo_det_run(d->det, d->s, &f, NULL, img->w, img->h, d->dets, d->cap, n);
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *v)
{
    char *end;
    *v = strtod(s, &end);
    if (end == s || *end || !(*v >= lo && *v <= hi)) {
        fprintf(stderr, "mo-detect: %s needs a number in %g..%g\n", opt, lo, hi);
        return -1;
    }
    return 0;
}

/* An output name not used before in this run: <out>/<stem>[-2, -3 ...].<ext> */
static int out_path(char *buf, size_t size, const char *dir, const char *stem, const char *ext,
                    strlist *used)
{
    for (int k = 1; k < 100000; k++) {
        if (k == 1)
            snprintf(buf, size, "%s/%s.%s", dir, stem, ext);
        else
            snprintf(buf, size, "%s/%s-%d.%s", dir, stem, k, ext);
        int taken = 0;
        for (int i = 0; i < used->n && !taken; i++)
            taken = !strcmp(used->s[i], buf);
        if (!taken)
            return push(used, buf);
    }
    return -1;
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

/* One COCO result {"image_id", "category_id", "bbox": [x, y, w, h], "score"} appended to
 * results; 0 when json-c runs out of memory (nothing is added then). */
static int add_result(json_object *results, long long id, const mo_det *det,
                      const mo_detection *e)
{
    json_object *o = json_object_new_object(), *bbox = json_object_new_array();
    int ok = arr_add(bbox, json_object_new_double(e->x1));
    ok &= arr_add(bbox, json_object_new_double(e->y1));
    ok &= arr_add(bbox, json_object_new_double(e->x2 - e->x1));
    ok &= arr_add(bbox, json_object_new_double(e->y2 - e->y1));
    ok &= obj_add(o, "image_id", json_object_new_int64(id));
    ok &= obj_add(o, "category_id", json_object_new_int(mo_det_category_id(det, e->label)));
    ok &= obj_add(o, "bbox", bbox);
    ok &= obj_add(o, "score", json_object_new_double(e->score));
    if (!ok) {
        json_object_put(o);
        return 0;
    }
    return arr_add(results, o);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *head = NULL, *out_dir = ".", *json_path = NULL, *ann = NULL;
    int images = 1, jpeg = 0, quiet = 0, keep_size = 0, first = argc;
    double draw_score = 0.3, v;
    mo_det_settings set;
    mo_det_default_settings(&set);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--model") && has)
            model = argv[++i];
        else if (!strcmp(a, "--head") && has)
            head = argv[++i];
        else if (!strcmp(a, "--out") && has)
            out_dir = argv[++i];
        else if (!strcmp(a, "--json") && has)
            json_path = argv[++i];
        else if (!strcmp(a, "--annotations") && has)
            ann = argv[++i];
        else if (!strcmp(a, "--no-images"))
            images = 0;
        else if (!strcmp(a, "--jpeg"))
            jpeg = 1;
        else if (!strcmp(a, "--keep-size"))
            keep_size = 1;
        else if (!strcmp(a, "--quiet"))
            quiet = 1;
        else if (!strcmp(a, "--class-agnostic"))
            set.class_agnostic = 1;
        else if (!strcmp(a, "--score") && has) {
            if (parse_num(a, argv[++i], 0, 1, &set.score_thresh))
                return 2;
        } else if (!strcmp(a, "--draw-score") && has) {
            if (parse_num(a, argv[++i], 0, 1, &draw_score))
                return 2;
        } else if (!strcmp(a, "--nms") && has) {
            if (parse_num(a, argv[++i], 0, 1, &set.nms_thresh))
                return 2;
        } else if (!strcmp(a, "--soft-nms") && has) {
            if (parse_num(a, argv[++i], 1e-6, 100, &set.soft_nms_sigma))
                return 2;
        } else if (!strcmp(a, "--max-dets") && has) {
            if (parse_num(a, argv[++i], 1, 100000, &v))
                return 2;
            set.detections_per_img = (int)v;
        } else if (!strcmp(a, "--max-classes") && has) {
            if (parse_num(a, argv[++i], 0, 100000, &v))
                return 2;
            set.max_classes_per_box = (int)v;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--")) {
            first = i + 1;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mo-detect: unknown option or missing value: %s\n", a);
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
    strlist inputs = { 0 }, used = { 0 };
    id_map ids = { 0 };
    detector d = { 0 };
    json_object *results = NULL;
    int ret = 2;
    for (int i = first; i < argc; i++)
        if (add_input(&inputs, argv[i])) {
            fprintf(stderr, "mo-detect: out of memory\n");
            goto done;
        }
    if (!inputs.n) {
        fprintf(stderr, "mo-detect: no images found\n");
        goto done;
    }
    if (ann && id_map_load(&ids, ann))
        goto done;
    if (images && mkdir(out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "mo-detect: cannot create %s: %s\n", out_dir, strerror(errno));
        goto done;
    }
    if (detector_open(&d, model, head, &set))
        goto done;
    json_c_set_serialization_double_format("%.6g", JSON_C_OPTION_GLOBAL);
    results = json_path ? json_object_new_array() : NULL;
    if (json_path && !results) {
        fprintf(stderr, "mo-detect: out of memory\n");
        goto done;
    }
    int failed = 0, unnamed = 0;
    for (int i = 0; i < inputs.n; i++) {
        const char *path = inputs.s[i];
        mo_image img = { 0 };
        int n = 0, r = mo_image_load(&img, path);
        if (!r)
            r = detect(&d, &img, &n);
        if (r) {
            failed++;
            fprintf(stderr, "mo-detect: %s: %s (%s)\n", path, mo_strerror(r), mo_last_error());
            mo_image_free(&img);
            continue;
        }
        if (!quiet) {
            int shown = 0;
            for (int j = 0; j < n; j++)
                shown += d.dets[j].score >= draw_score;
            printf("%s: %dx%d, %d detections, %d with score >= %.2f\n", path, img.w, img.h, n,
                   shown, draw_score);
            for (int j = 0; j < n && j < 5 && d.dets[j].score >= draw_score; j++)
                printf("  %-16s %.3f  [%.1f, %.1f, %.1f, %.1f]\n",
                       mo_det_class_name(d.det, d.dets[j].label), d.dets[j].score,
                       d.dets[j].x1, d.dets[j].y1, d.dets[j].x2, d.dets[j].y2);
        }
        if (results) {
            long long id = image_id(&ids, path);
            if (id < 0) {
                id = i + 1;
                if (!unnamed++)
                    fprintf(stderr, "mo-detect: %s: no image id (not in --annotations, or not "
                            "a numeric name); using its position, %lld\n", path, id);
            }
            int ok = 1;
            for (int j = 0; j < n && ok; j++)
                ok = add_result(results, id, d.det, &d.dets[j]);
            if (!ok) {
                fprintf(stderr, "mo-detect: out of memory for the detections of %s\n", path);
                mo_image_free(&img);
                ret = 2;
                goto done;
            }
        }
        if (images) {
            char stem[512], dst[4096];
            stem_of(path, stem, sizeof(stem));
            const int side = img.w > img.h ? img.w : img.h;
            const int f = keep_size || side >= ENLARGE_TO ? 1 : (ENLARGE_TO + side - 1) / side;
            mo_image big = { 0 };
            if (f > 1 && (r = enlarge(&img, f, &big)) == MO_OK) {
                mo_image_free(&img);
                img = big;
            }
            if (!r) {
                draw(&img, f, d.det, d.dets, n, (float)draw_score);
                if (out_path(dst, sizeof(dst), out_dir, stem, jpeg ? "jpg" : "png", &used))
                    r = MO_ENOMEM;
                else
                    r = jpeg ? mo_image_save_jpeg(&img, dst, 90) : mo_image_save_png(&img, dst);
            }
            if (r) {
                failed++;
                fprintf(stderr, "mo-detect: %s: %s (%s)\n", dst, mo_strerror(r), mo_last_error());
            }
        }
        mo_image_free(&img);
    }
    ret = failed ? 1 : 0;
    if (results) {
        /* NULL when json-c runs out of memory while serialising */
        const char *text = json_object_to_json_string_ext(results, JSON_C_TO_STRING_PLAIN);
        FILE *f = !text ? NULL : strcmp(json_path, "-") ? fopen(json_path, "w") : stdout;
        int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        if (f && f != stdout)
            ok &= fclose(f) == 0;
        if (!ok) {
            fprintf(stderr, "mo-detect: cannot write %s: %s\n", json_path,
                    text ? strerror(errno) : "out of memory");
            ret = 2;
        }
    }
done:
    json_object_put(results);
    json_object_put(ids.by_name);
    detector_close(&d);
    strlist_free(&inputs);
    strlist_free(&used);
    return ret;
}
