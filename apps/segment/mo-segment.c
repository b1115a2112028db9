/* mo-segment: DeepLabV3 semantic segmentation of one or many images (and directories).
 *
 * Per image NAME (file name without extension) it writes into --out:
 *   NAME_mask.png     the label map as an indexed PNG in the Pascal VOC palette: viewers
 *                     show colours, evaluation tools read the pixel values as labels
 *                     (--mask-suffix '' names it NAME.png, as mo-eval seg expects)
 *   NAME_overlay.png  the mask blended over the image, class boundaries outlined, and a
 *                     legend of the classes present (share of the pixels) below the image
 *   NAME_labels.pgm   with --raw: the label map as a binary PGM (one byte per pixel)
 * and prints a one-line summary (or, with --json, one JSON array at the end).
 *
 * Input handling (identical to tools/deeplab_ref.py, checked by tests/segment): the whole
 * image, decoded as Pillow's convert("RGB"), scaled to [0, 1] and normalized with the
 * model's mean/std at its own size: no crop, no padding, any size up to --max-side. With
 * --resize N the shorter side is first resized to N (Pillow-exact bilinear, torchvision's
 * SemanticSegmentation preset uses 520); the logits are then sampled at the original size,
 * so masks always match the image.
 *
 * A failing image (unreadable, too large, unwritable output) is reported and the batch
 * goes on; exit status 1 then. Usage and model errors exit with 2.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mo/draw.h"
#include "mo/image.h"
#include "mo/labels.h"
#include "mo/limits.h"
#include "mo/segment.h"

#define DEFAULT_MAX_SIDE 2048

/* Message of the last per-image failure: the app's own checks write it here, SDK failures
 * copy mo_last_error(). */
static char app_msg[600];

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int app_fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app_msg, sizeof(app_msg), fmt, ap);
    va_end(ap);
    return err;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: mo-segment --model FILE [--head FILE] [--out DIR] [options] IMAGE|DIR...\n"
            "  --model FILE    model file with the MobileOne backbone (and the head, unless\n"
            "                  --head is given)\n"
            "  --head FILE     model file with the DeepLabV3 head (seg.) for that backbone\n"
            "  --out DIR       where to write NAME_mask.png, NAME_overlay.png (default .)\n"
            "  --os S          backbone output stride 8, 16 or 32 (default: the head's, 16)\n"
            "  --resize N      resize the shorter side to N before the network (masks stay\n"
            "                  at the image size); default: the image at its own size\n"
            "  --max-side N    refuse network inputs with a side over N (default %d, at most\n"
            "                  %d)\n"
            "  --alpha A       opacity of the mask in the overlay, 0..1 (default 0.55)\n"
            "  --raw           also write the label map as NAME_labels.pgm\n"
            "  --mask-suffix S masks are NAME<S>.png (default _mask; '' gives NAME.png, the\n"
            "                  layout of VOC's SegmentationClass and of mo-eval seg --pred)\n"
            "  --no-overlay    do not write the overlay\n"
            "  --json          print one JSON array: per input {\"image\", \"width\", \"height\",\n"
            "                  \"mask\", \"overlay\", \"labels\", \"classes\": [{\"class\", \"name\",\n"
            "                  \"fraction\"}]} or {\"image\", \"error\"}, in input order\n"
            "The overlay is drawn smaller when it would exceed the image_max_pixels limit;\n"
            "a network input needing more than session_memory_bytes is refused\n"
            "(docs/LIMITS.md).\n"
            "A directory stands for its image files (.jpg .jpeg .png .bmp .gif, sorted, not\n"
            "recursive; files named *_mask.png / *_overlay.png are skipped).\n"
            "exit status: 0 all images segmented, 1 some failed, 2 usage or model error\n",
            DEFAULT_MAX_SIDE, MO_MAX_INPUT_SIDE);
}

/* ----------------------------------------------------------------- options */

typedef struct options {
    const char *model, *head, *out, *mask_suffix;
    int os, resize, max_side, raw, overlay, json;
    float alpha;
} options;

static int parse_int(const char *opt, const char *s, int lo, int hi, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) {
        fprintf(stderr, "mo-segment: %s needs a number in %d..%d, not '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *v = (int)x;
    return 0;
}

/* ------------------------------------------------------------------ inputs */

typedef struct strlist {
    char **v;
    int n, cap;
} strlist;

static int strlist_add(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, sizeof(*v) * (size_t)cap);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static void strlist_free(strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != tolower((unsigned char)suffix[i]))
            return 0;
    return 1;
}

static int is_image_name(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif"};
    if (name[0] == '.' || ends_with_ci(name, "_mask.png") || ends_with_ci(name, "_overlay.png"))
        return 0;
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        if (ends_with_ci(name, ext[i]))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append `arg`, or the image files of directory `arg`, sorted. An unreadable directory is
 * added as is, so it is reported like any failing input. */
static int add_input(strlist *l, const char *arg)
{
    struct stat st;
    if (stat(arg, &st) || !S_ISDIR(st.st_mode))
        return strlist_add(l, arg);
    DIR *d = opendir(arg);
    if (!d)
        return strlist_add(l, arg);
    strlist names = {0};
    struct dirent *e;
    int ret = 0;
    while (!ret && (e = readdir(d)))
        if (is_image_name(e->d_name)) {
            size_t n = strlen(arg) + strlen(e->d_name) + 2;
            char *p = malloc(n);
            if (!p) {
                ret = -1;
                break;
            }
            snprintf(p, n, "%s%s%s", arg, arg[strlen(arg) - 1] == '/' ? "" : "/", e->d_name);
            ret = strlist_add(&names, p);
            free(p);
        }
    closedir(d);
    if (names.n)
        qsort(names.v, (size_t)names.n, sizeof(char *), cmp_str);
    for (int i = 0; !ret && i < names.n; i++)
        ret = strlist_add(l, names.v[i]);
    if (!ret && !names.n)
        fprintf(stderr, "mo-segment: note: %s holds no image files\n", arg);
    strlist_free(&names);
    return ret;
}

/* Output stem: the file name without directory and extension; a name met before gets
 * "-2", "-3", ... so that one run never overwrites its own outputs. */
static char *make_stem(const char *path, strlist *used)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        n = (size_t)(dot - base);
    char *stem = malloc(n + 16);
    if (!stem)
        return NULL;
    memcpy(stem, base, n);
    stem[n] = 0;
    if (!n)
        strcpy(stem, "image");
    for (int k = 2;; k++) {
        int dup = 0;
        for (int i = 0; i < used->n && !dup; i++)
            dup = !strcmp(used->v[i], stem);
        if (!dup)
            break;
        snprintf(stem + n, 16, "-%d", k);
    }
    if (strlist_add(used, stem)) {
        free(stem);
        return NULL;
    }
    return stem;
}

/* ------------------------------------------------------------------- model */

typedef struct segmenter {
    mo_file *file, *head_file;
    mo_backbone *bb;
    mo_seg *seg;
    mo_seg_info info;
    mo_session *session;
    int cap_h, cap_w; /* the session's maxima */
    float mean[3], std[3];
    mo_palette palette;
    int background;   /* label drawn without colour in the overlay, or -1 */
} segmenter;

static void segmenter_close(segmenter *s)
{
    mo_session_close(&s->session);
    mo_seg_close(&s->seg);
    mo_backbone_close(&s->bb);
    mo_file_close(&s->head_file);
    mo_file_close(&s->file);
}

static int segmenter_open(segmenter *s, const options *o)
{
    memset(s, 0, sizeof(*s));
    int r;
    const char *what = o->model;
    if ((r = mo_file_open(&s->file, o->model)) || (r = mo_backbone_open(&s->bb, s->file, NULL)))
        goto fail;
    what = o->head ? o->head : o->model;
    if (o->head && (r = mo_file_open(&s->head_file, o->head)))
        goto fail;
    if ((r = mo_seg_open(&s->seg, s->head_file ? s->head_file : s->file, s->bb, NULL)))
        goto fail;
    mo_seg_get_info(s->seg, &s->info);
    /* the backbone's file first, the head's may override (validated by the library) */
    what = o->model;
    if ((r = mo_file_preprocess(s->file, s->mean, s->std)))
        goto fail;
    what = o->head ? o->head : o->model;
    if (s->head_file && mo_file_meta(s->head_file, "mo.mean") &&
        (r = mo_file_meta_floats(s->head_file, "mo.mean", s->mean, 3)))
        goto fail;
    if (s->head_file && mo_file_meta(s->head_file, "mo.std") &&
        (r = mo_file_meta_floats(s->head_file, "mo.std", s->std, 3)))
        goto fail;
    mo_palette_voc(&s->palette);
    const char *n0 = mo_seg_class_name(s->seg, 0);
    s->background = n0 && (strstr(n0, "background") || !strcmp(n0, "bg")) ? 0 : -1;
    return 0;
fail:
    fprintf(stderr, "mo-segment: %s: %s (%s)\n", what, mo_strerror(r), mo_last_error());
    return -1;
}

/* Make the session fit an input of h x w (sessions are sized once; grow when needed). */
static int ensure_session(segmenter *s, int h, int w, int os)
{
    if (s->session && h <= s->cap_h && w <= s->cap_w)
        return MO_OK;
    /* round up so a directory of slightly different sizes reopens rarely */
    int ch = (h > s->cap_h ? h : s->cap_h) + 63, cw = (w > s->cap_w ? w : s->cap_w) + 63;
    ch = ch / 64 * 64 > MO_MAX_INPUT_SIDE ? MO_MAX_INPUT_SIDE : ch / 64 * 64;
    cw = cw / 64 * 64 > MO_MAX_INPUT_SIDE ? MO_MAX_INPUT_SIDE : cw / 64 * 64;
    mo_session_close(&s->session);
    s->cap_h = s->cap_w = 0;
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ch;
    ss.max_width = cw;
    ss.min_output_stride = os;
    int r = mo_seg_workspace_size(s->seg, ch, cw, os, &ss.workspace_bytes);
    if (!r)
        r = mo_session_open(&s->session, s->bb, &ss);
    if (!r) {
        s->cap_h = ch;
        s->cap_w = cw;
    }
    return r;
}

/* ---------------------------------------------------------------- drawing */

/* Classes present, largest first (io's mo_labelmap_count()). */
typedef mo_label_count class_share;

static int class_shares(const mo_labelmap *m, class_share out[256])
{
    const int k = mo_labelmap_count(m, out);
    return k > 0 ? k : 0;
}

static const char *display_name(const segmenter *s, int label, char *buf, size_t n)
{
    const char *name = mo_seg_class_name(s->seg, label);
    if (!name) {
        snprintf(buf, n, "class %d", label);
        return buf;
    }
    if (label == s->background)
        return "background";
    return name;
}

/*
 * The overlay: the image with the mask blended in and boundaries outlined, above a legend
 * strip listing the classes present (counted on `stats`), largest share first, as
 * "[swatch] name 12.3%" entries flowing left to right over as many rows as needed. When
 * image and strip together would be over the image_max_pixels limit (the image itself is
 * within it), they are drawn scaled down to fit rather than failing after the network ran.
 */
static int make_overlay(const segmenter *s, const mo_image *img, const mo_labelmap *m,
                        const mo_labelmap *stats, float alpha, mo_image *out)
{
    class_share sh[256];
    const int nsh = class_shares(stats, sh);
    const int scale = mo_draw_text_scale(img);

    /* the entries (io's legend: mo_draw_legend()); the canvas is at least as wide as the
     * widest entry */
    char text[256][96];
    mo_legend_entry ent[256];
    for (int i = 0; i < nsh; i++) {
        char buf[32];
        const double pct = 100.0 * (double)sh[i].pixels / ((double)m->w * m->h);
        const char *name = display_name(s, sh[i].label, buf, sizeof(buf));
        if (pct < 0.05)
            snprintf(text[i], sizeof(text[i]), "%s <0.1%%", name);
        else
            snprintf(text[i], sizeof(text[i]), "%s %.*f%%", name, pct < 10 ? 1 : 0, pct);
        const int l = sh[i].label;
        ent[i] = (mo_legend_entry){.text = text[i],
                                   .color = {s->palette.rgb[l][0], s->palette.rgb[l][1],
                                             s->palette.rgb[l][2]},
                                   .outline = l == s->background}; /* not tinted */
    }
    int width = img->w, min_width = 0;
    mo_draw_legend_height(ent, nsh, scale, width, &min_width);
    if (min_width > width)
        width = min_width;
    const int strip = mo_draw_legend_height(ent, nsh, scale, width, NULL);
    mo_limits lim;
    mo_limits_get(&lim);
    const double max_px = (double)(lim.image_max_pixels < MO_IMAGE_MAX_PIXELS
                                       ? lim.image_max_pixels : MO_IMAGE_MAX_PIXELS);
    const double px = (double)width * (img->h + strip);
    if (px > max_px && img->w > 1 && img->h > 1) {
        /* smaller by the square root of the excess (and a margin for the strip, which
         * does not shrink as fast): image resized, labels sampled nearest */
        const double f = sqrt(max_px / px) * 0.95;
        const int w = (int)(img->w * f) > 0 ? (int)(img->w * f) : 1;
        const int h = (int)(img->h * f) > 0 ? (int)(img->h * f) : 1;
        mo_image small = {0};
        mo_labelmap sm = {0};
        int r = mo_image_resize_pil(img, w, h, &small);
        if (!r)
            r = mo_labelmap_alloc(&sm, w, h);
        for (int y = 0; !r && y < h; y++) {
            const uint8_t *row = m->data + (size_t)((long long)y * m->h / h) * m->w;
            for (int x = 0; x < w; x++)
                sm.data[(size_t)y * w + x] = row[(long long)x * m->w / w];
        }
        if (!r)
            r = make_overlay(s, &small, &sm, stats, alpha, out);
        mo_labelmap_free(&sm);
        mo_image_free(&small);
        return r;
    }
    int r = mo_image_alloc(out, width, img->h + strip);
    if (r)
        return r;
    /* blended in place: the canvas's first rows are the picture when it is as wide */
    mo_image blend = {.data = out->data, .w = img->w, .h = img->h};
    if (width != img->w && (r = mo_image_alloc(&blend, img->w, img->h))) {
        mo_image_free(out);
        return r;
    }
    memcpy(blend.data, img->data, (size_t)img->w * img->h * 3);
    r = mo_draw_labels(&blend, m, &s->palette, alpha, s->background);
    if (!r)
        r = mo_draw_label_edges(&blend, m, &s->palette, s->background);

    const mo_rgb panel = {24, 24, 24};
    if (width != img->w) {
        mo_draw_fill_rect(out, 0, 0, out->w, out->h, panel, 1.0f);
        for (int y = 0; !r && y < img->h; y++)
            memcpy(out->data + (size_t)y * out->w * 3, blend.data + (size_t)y * img->w * 3,
                   (size_t)img->w * 3);
        mo_image_free(&blend);
    } else {
        mo_draw_fill_rect(out, 0, img->h, out->w, out->h, panel, 1.0f);
    }
    if (r) {
        mo_image_free(out);
        return r;
    }
    mo_draw_legend(out, img->h, ent, nsh, scale);
    return MO_OK;
}

static int save_pgm(const mo_labelmap *m, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fprintf(f, "P5\n%d %d\n255\n", m->w, m->h) > 0 &&
             fwrite(m->data, 1, (size_t)m->w * m->h, f) == (size_t)m->w * m->h;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* ------------------------------------------------------------------- run */

typedef struct result {
    int w, h;
    char mask[4096], overlay[4096], labels[4096];
    class_share sh[256];
    int nsh;
    char err[600];
} result;

/* Do two paths name the same existing file? */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int out_path(char *dst, size_t n, const char *dir, const char *stem, const char *suffix)
{
    return snprintf(dst, n, "%s/%s%s", dir, stem, suffix) < (int)n ? 0 : -1;
}

static int segment_one(segmenter *s, const options *o, const char *path, const char *stem,
                       result *res)
{
    mo_image img = {0}, rs = {0}, ov = {0};
    mo_labelmap lab = {0};
    float *in = NULL;
    app_msg[0] = 0;
    int r = MO_OK;
    char mask_name[96];
    snprintf(mask_name, sizeof(mask_name), "%s.png", o->mask_suffix);
    if (out_path(res->mask, sizeof(res->mask), o->out, stem, mask_name) ||
        out_path(res->overlay, sizeof(res->overlay), o->out, stem, "_overlay.png") ||
        out_path(res->labels, sizeof(res->labels), o->out, stem, "_labels.pgm")) {
        r = app_fail(MO_EINVAL, "output path too long");
        goto done;
    }
    const char *outs[3] = {res->mask, o->overlay ? res->overlay : "", o->raw ? res->labels : ""};
    for (int i = 0; i < 3; i++)
        if (outs[i][0] && same_file(path, outs[i])) {
            r = app_fail(MO_EINVAL, "the output %s would overwrite the input (use another "
                         "--out or --mask-suffix)", outs[i]);
            goto done;
        }
    if ((r = mo_image_load(&img, path)))
        goto done;
    res->w = img.w;
    res->h = img.h;
    const mo_image *src = &img;
    if (o->resize) {
        int w, h;
        if ((r = mo_resize_short_size(img.w, img.h, o->resize, &w, &h)))
            goto done;
        if (w > o->max_side || h > o->max_side) {
            r = app_fail(MO_EUNSUPPORTED, "resized to %dx%d, over --max-side %d", w, h,
                         o->max_side);
            goto done;
        }
        if ((r = mo_image_resize_pil(&img, w, h, &rs)))
            goto done;
        src = &rs;
    } else if (img.w > o->max_side || img.h > o->max_side) {
        r = app_fail(MO_EUNSUPPORTED, "%dx%d is over --max-side %d (use --resize N or a "
                     "larger --max-side)", img.w, img.h, o->max_side);
        goto done;
    }
    if ((r = ensure_session(s, src->h, src->w, o->os)))
        goto done;
    if (!(in = malloc(sizeof(float) * 3 * (size_t)src->w * (size_t)src->h))) {
        r = app_fail(MO_ENOMEM, "out of memory for a %dx%d input", src->w, src->h);
        goto done;
    }
    mo_tensor t = {.data = in};
    mo_features feats;
    if ((r = mo_labelmap_alloc(&lab, img.w, img.h)) ||
        (r = mo_image_to_tensor(src, 0, 0, src->w, src->h, s->mean, s->std, &t)) ||
        (r = mo_backbone_run(s->session, &t, o->os, &feats)) ||
        (r = mo_seg_run(s->seg, s->session, &feats, img.h, img.w, lab.data, img.w, NULL)))
        goto done;
    res->nsh = class_shares(&lab, res->sh);

    if ((r = mo_labelmap_save_png(&lab, res->mask, &s->palette)))
        goto done;
    if (o->overlay && ((r = make_overlay(s, &img, &lab, &lab, o->alpha, &ov)) ||
                       (r = mo_image_save_png(&ov, res->overlay))))
        goto done;
    if (!o->overlay)
        res->overlay[0] = 0;
    if (o->raw && save_pgm(&lab, res->labels)) {
        r = app_fail(MO_EIO, "cannot write %s: %s", res->labels, strerror(errno));
        goto done;
    }
    if (!o->raw)
        res->labels[0] = 0;
done:
    if (r)
        snprintf(res->err, sizeof(res->err), "%s (%s)", mo_strerror(r),
                 app_msg[0] ? app_msg : mo_last_error());
    free(in);
    mo_labelmap_free(&lab);
    mo_image_free(&ov);
    mo_image_free(&rs);
    mo_image_free(&img);
    return r;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
        return -1;
    for (char *p = buf + 1;; p++) {
        const char c = *p;
        if (c == '/' || c == 0) {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return -1;
            *p = c;
        }
        if (!c)
            break;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

static void print_result(const segmenter *s, const char *path, const result *res)
{
    printf("%s: %dx%d, %d class%s:", path, res->w, res->h, res->nsh, res->nsh == 1 ? "" : "es");
    const int show = res->nsh < 8 ? res->nsh : 6;
    for (int i = 0; i < show; i++) {
        char buf[32];
        printf("%s %s %.1f%%", i ? "," : "", display_name(s, res->sh[i].label, buf, sizeof(buf)),
               100.0 * (double)res->sh[i].pixels / ((double)res->w * res->h));
    }
    if (show < res->nsh)
        printf(", +%d more", res->nsh - show);
    printf("\n  -> %s%s%s%s%s\n", res->mask, res->overlay[0] ? ", " : "", res->overlay,
           res->labels[0] ? ", " : "", res->labels);
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

/* The JSON record of one image, or NULL when json-c runs out of memory. */
static json_object *json_result(const segmenter *s, const char *path, const result *res, int r)
{
    json_object *o = json_object_new_object();
    int ok = obj_add(o, "image", json_object_new_string(path));
    if (r) {
        ok &= obj_add(o, "error", json_object_new_string(res->err));
    } else {
        ok &= obj_add(o, "width", json_object_new_int(res->w));
        ok &= obj_add(o, "height", json_object_new_int(res->h));
        ok &= obj_add(o, "mask", json_object_new_string(res->mask));
        /* a null value: json-c adds NULL as JSON null */
        ok &= res->overlay[0] ? obj_add(o, "overlay", json_object_new_string(res->overlay))
                              : o && !json_object_object_add(o, "overlay", NULL);
        ok &= res->labels[0] ? obj_add(o, "labels", json_object_new_string(res->labels))
                             : o && !json_object_object_add(o, "labels", NULL);
        json_object *list = json_object_new_array();
        for (int i = 0; i < res->nsh; i++) {
            char buf[32];
            json_object *e = json_object_new_object();
            int eok = obj_add(e, "class", json_object_new_int(res->sh[i].label));
            eok &= obj_add(e, "name", json_object_new_string(
                                          display_name(s, res->sh[i].label, buf, sizeof(buf))));
            eok &= obj_add(e, "fraction", json_object_new_double(
                                              (double)res->sh[i].pixels / ((double)res->w * res->h)));
            if (eok) {
                ok &= arr_add(list, e);
            } else {
                ok = 0;
                json_object_put(e);
            }
        }
        ok &= obj_add(o, "classes", list);
    }
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

int main(int argc, char **argv)
{
    options o = {.out = ".", .mask_suffix = "_mask", .os = 0, .max_side = DEFAULT_MAX_SIDE, .overlay = 1,
                 .alpha = 0.55f};
    strlist inputs = {0};
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--model") && has) {
            o.model = argv[++i];
        } else if (!strcmp(a, "--head") && has) {
            o.head = argv[++i];
        } else if (!strcmp(a, "--out") && has) {
            o.out = argv[++i];
        } else if (!strcmp(a, "--os") && has) {
            if (parse_int(a, argv[++i], 8, 32, &o.os))
                return 2;
            if (o.os != 8 && o.os != 16 && o.os != 32) {
                fprintf(stderr, "mo-segment: --os must be 8, 16 or 32\n");
                return 2;
            }
        } else if (!strcmp(a, "--resize") && has) {
            if (parse_int(a, argv[++i], 1, MO_MAX_INPUT_SIDE, &o.resize))
                return 2;
        } else if (!strcmp(a, "--max-side") && has) {
            if (parse_int(a, argv[++i], 1, MO_MAX_INPUT_SIDE, &o.max_side))
                return 2;
        } else if (!strcmp(a, "--alpha") && has) {
            char *end;
            o.alpha = strtof(argv[++i], &end);
            if (*end || end == argv[i] || !(o.alpha >= 0.0f && o.alpha <= 1.0f)) {
                fprintf(stderr, "mo-segment: --alpha needs a number in 0..1\n");
                return 2;
            }
        } else if (!strcmp(a, "--mask-suffix") && has) {
            o.mask_suffix = argv[++i];
            if (strlen(o.mask_suffix) > 64 || strchr(o.mask_suffix, '/') ||
                !strcmp(o.mask_suffix, "_overlay") || !strcmp(o.mask_suffix, "_labels")) {
                fprintf(stderr, "mo-segment: --mask-suffix must be a short name part without "
                                "'/' and not _overlay or _labels\n");
                return 2;
            }
        } else if (!strcmp(a, "--raw")) {
            o.raw = 1;
        } else if (!strcmp(a, "--no-overlay")) {
            o.overlay = 0;
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mo-segment: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        } else {
            break;
        }
    }
    if (!o.model || i >= argc) {
        usage(stderr);
        return 2;
    }
    for (; i < argc; i++)
        if (add_input(&inputs, argv[i])) {
            fprintf(stderr, "mo-segment: out of memory\n");
            return 2;
        }
    if (make_dirs(o.out)) {
        fprintf(stderr, "mo-segment: cannot create the output directory %s: %s\n", o.out,
                strerror(errno));
        strlist_free(&inputs);
        return 2;
    }
    segmenter s;
    if (segmenter_open(&s, &o)) {
        segmenter_close(&s);
        strlist_free(&inputs);
        return 2;
    }
    if (!o.os)
        o.os = s.info.output_stride;
    json_object *results = o.json ? json_object_new_array() : NULL;
    strlist stems = {0};
    result *res = malloc(sizeof(*res));
    if ((o.json && !results) || !res) {
        fprintf(stderr, "mo-segment: out of memory\n");
        return 2;
    }
    int failed = 0;
    for (int k = 0; k < inputs.n; k++) {
        const char *path = inputs.v[k];
        memset(res, 0, sizeof(*res));
        char *stem = make_stem(path, &stems);
        int r = stem ? segment_one(&s, &o, path, stem, res)
                     : app_fail(MO_ENOMEM, "out of memory");
        if (r && !stem)
            snprintf(res->err, sizeof(res->err), "%s", app_msg);
        free(stem);
        if (r) {
            failed++;
            fprintf(stderr, "mo-segment: %s: %s\n", path, res->err);
        } else if (!o.json) {
            print_result(&s, path, res);
        }
        if (results && !arr_add(results, json_result(&s, path, res, r))) {
            fprintf(stderr, "mo-segment: out of memory for the JSON output\n");
            json_object_put(results);
            results = NULL;
            failed = -1;
            break;
        }
        fflush(stdout);
    }
    if (results) {
        /* NULL when json-c runs out of memory while serialising */
        const char *text = json_object_to_json_string_ext(
            results, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text) {
            printf("%s\n", text);
        } else {
            fprintf(stderr, "mo-segment: out of memory for the JSON output\n");
            failed = -1;
        }
        json_object_put(results);
    }
    free(res);
    strlist_free(&stems);
    strlist_free(&inputs);
    segmenter_close(&s);
    return failed < 0 ? 2 : failed ? 1 : 0;
}
