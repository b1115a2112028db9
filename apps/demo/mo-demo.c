/* mo-demo: classification, detection and segmentation of each image from one backbone
 * pass (libmo_pipeline), drawn as one composite picture: the segmentation mask blended
 * in, the detection boxes with their labels, the top classes and the timing in a corner,
 * and a legend of the segmented classes. With --video (built with the `video` feature,
 * FFmpeg: video.c), the same on every frame of a video, written as a video. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mo/draw.h"
#include "mo/labels.h"
#include "mo/pipeline.h"
#ifdef MO_DEMO_VIDEO
#include "video.h"
#endif

static void usage(FILE *to)
{
    fprintf(to,
        "usage: mo-demo --model BACKBONE [--cls HEAD] [--det HEAD] [--seg HEAD] [options] IMAGE...\n"
        "  --model FILE      backbone model file (its classification head is used when it has one)\n"
        "  --cls FILE        classification head file (when the backbone file has none)\n"
        "  --det FILE        detection head file\n"
        "  --seg FILE        segmentation head file\n"
        "  --out DIR         folder for the composite pictures (default .): <name>.png\n"
        "  --draw-score T    draw detections with score >= T (default 0.3)\n"
        "  --max-boxes N     draw at most N boxes, best first (default 10)\n"
        "  --overlap T       do not draw a box overlapping a better one of any class by\n"
        "                    IoU > T (default 0.5; 1: draw every box)\n"
        "  --top K           classes listed in the corner (default 3)\n"
        "  --separate        one backbone pass per head (the baseline) instead of one shared pass\n"
        "  --threads N       threads of the backbone passes (and of the video codecs), the\n"
        "                    caller included; 0: one per CPU (default 1)\n"
        "video (when built with FFmpeg: meson feature 'video'):\n"
        "  mo-demo --model BACKBONE [heads] --video IN --out OUT [options]\n"
        "  --video FILE      any video FFmpeg reads; every frame drawn as the images are\n"
        "                    (at its own size, legend over the bottom), audio dropped,\n"
        "                    frame rate, size and timestamps kept\n"
        "  --out FILE        output video; the container follows the name (.mp4, .mkv ...)\n"
        "  --codec NAME      encoder (e.g. libx264, mpeg4, ffv1); default H.264 when an\n"
        "                    encoder exists, else MPEG-4 part 2, else the container's own\n"
        "  --every N         run the heads on every Nth frame, hold the results between\n"
        "  --json FILE       one JSON line per frame (\"-\": stdout): frame, time (s), pts,\n"
        "                    result_of (the frame the results come from), detections\n"
        "                    [{category_id, name, bbox [x, y, w, h], score}], mask_classes\n"
        "                    [{id, name, share}]\n"
        "  --json-score T    detections in --json: score > T (default 0.3)\n"
        "exit status: 0 all images done, 1 some failed (video: the input or output failed;\n"
        "the frames done are kept), 2 usage or model error\n");
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Segmentation classes covering at least 0.5% of the w x h label map, largest first
 * (io's mo_labelmap_count()); 0, the background, is left out. */
static int seg_classes(const uint8_t *lab, int w, int h, int order[256], double share[256])
{
    mo_label_count c[256];
    const mo_labelmap m = {.data = (uint8_t *)lab, .w = w, .h = h};
    const int k = mo_labelmap_count(&m, c);
    const size_t npix = (size_t)w * (size_t)h;
    int n = 0;
    for (int i = 0; i < k; i++)
        if (c[i].label != 0 && c[i].pixels * 200 >= npix) {
            order[n] = c[i].label;
            share[n++] = 100.0 * (double)c[i].pixels / (double)npix;
        }
    return n;
}

/* The legend entries "[swatch] name 12%" of the segmented classes (drawn by io's
 * mo_draw_legend()); text[i] holds entry i's text. */
typedef char legend_text[96];
static void legend_entries(const mo_pipeline *p, const int *order, const double *share, int n,
                           const mo_palette *pal, legend_text *text, mo_legend_entry *e)
{
    for (int i = 0; i < n; i++) {
        const char *name = mo_pipeline_seg_class_name(p, order[i]);
        snprintf(text[i], sizeof(text[i]), "%s %.0f%%", name ? name : "?", share[i]);
        e[i] = (mo_legend_entry){.text = text[i],
                                 .color = {pal->rgb[order[i]][0], pal->rgb[order[i]][1],
                                           pal->rgb[order[i]][2]}};
    }
}

/* What to draw: detections with score >= min_score, at most max_boxes, none overlapping
 * a better one by IoU > overlap; top classes in the corner panel. */
typedef struct draw_opts {
    float min_score;
    int max_boxes;
    double overlap;
    int top;
} draw_opts;

/* Draw the results of a fw x fh frame on img, which shows that frame scaled to its own
 * size: the mask (labels at img's size; NULL: none) blended in, the boxes and their tags,
 * the corner panel (top classes, timing). Allocates nothing. */
static int draw_results(mo_image *img, int fw, int fh, const mo_labelmap *mask,
                        const mo_pipeline *p, const mo_pipeline_result *r,
                        const mo_palette *pal, const draw_opts *o)
{
    const int W = img->w, H = img->h;
    const double fx = (double)W / fw, fy = (double)H / fh;
    const int scale = mo_draw_text_scale(img);
    if (mask)
        mo_draw_labels(img, mask, pal, 0.45f, 0);
    /* boxes: lowest score first so the best end on top, then their tags */
    const mo_det *det = mo_pipeline_det(p);
    const int thick = mo_draw_box_thickness(img);
    /* One box per object in the picture: a candidate overlapping a better one of any class
     * by IoU > overlap is not drawn (the detections are per-class NMS, as torchvision's,
     * so one object can carry a box per class it resembles). */
    enum { MAX_DRAWN = 300 };
    float bx[MAX_DRAWN * 4], sc[MAX_DRAWN];
    int keep[MAX_DRAWN], nb = 0, nc = 0, rc;
    while (nc < r->num_detections && nc < MAX_DRAWN && r->detections[nc].score >= o->min_score) {
        const mo_detection *d = &r->detections[nc];
        bx[4 * nc] = d->x1, bx[4 * nc + 1] = d->y1, bx[4 * nc + 2] = d->x2, bx[4 * nc + 3] = d->y2;
        sc[nc] = d->score;
        nc++;
    }
    /* IoU never exceeds 1, so overlap >= 1 keeps every box */
    if ((rc = mo_nms(bx, sc, NULL, nc, o->overlap, o->max_boxes, keep, &nb)))
        return rc;
    nb = nb < o->max_boxes ? nb : o->max_boxes;
    for (int i = nb - 1; i >= 0; i--) {
        const mo_detection *d = &r->detections[keep[i]];
        mo_draw_box(img, (int)(d->x1 * fx + 0.5), (int)(d->y1 * fy + 0.5),
                    (int)(d->x2 * fx + 0.5), (int)(d->y2 * fy + 0.5), thick,
                    mo_draw_class_color(d->label));
    }
    /* the corner panel: top classes, then the timing */
    char lines[MO_PIPELINE_MAX_TOPK + 1][96];
    int nl = 0;
    const mo_cls *cls = mo_pipeline_cls(p);
    for (int i = 0; i < r->num_top && i < o->top; i++) {
        const char *name = mo_cls_class_name(cls, r->top[i].index);
        char nm[40];
        snprintf(nm, sizeof(nm), "%s", name ? name : "?");
        char *comma = strchr(nm, ','); /* ImageNet names: the first synonym */
        if (comma)
            *comma = 0;
        snprintf(lines[nl++], sizeof(lines[0]), "%4.1f%% %s", 100.0 * r->top[i].prob, nm);
    }
    snprintf(lines[nl++], sizeof(lines[0]), "%.0f ms (backbone %.0f)", r->ms_total,
             r->ms_backbone);
    int th, tw = 0;
    mo_draw_text_size("Ag", scale, NULL, &th);
    for (int i = 0; i < nl; i++) {
        int w;
        mo_draw_text_size(lines[i], scale, &w, NULL);
        tw = w > tw ? w : tw;
    }
    const int pad = 3 * scale, lh = th + 2 * scale;
    const int panel_w = tw + 2 * pad, panel_h = nl * lh + 2 * pad - 2 * scale;
    /* Tags go above their box's corner; one that would sit under the panel moves right
     * of it while that stays on its box, else down below it. */
    const int tag_h = th + 4 * scale; /* mo_draw_tag: text height + 2 x its padding */
    for (int i = nb - 1; i >= 0; i--) {
        const mo_detection *d = &r->detections[keep[i]];
        char text[96];
        mo_draw_tag_text(text, sizeof(text), mo_det_class_name(det, d->label), d->score, scale,
                         W);
        int x = (int)(d->x1 * fx + 0.5), y = (int)(d->y1 * fy + 0.5);
        const int top_of_tag = y - tag_h >= 0 ? y - tag_h : y;
        if (x < panel_w && top_of_tag < panel_h) {
            if (panel_w < (int)(d->x2 * fx + 0.5) - tag_h)
                x = panel_w;
            else
                y = panel_h + tag_h;
        }
        mo_draw_tag(img, x, y, text, scale, mo_draw_class_color(d->label));
    }
    mo_draw_fill_rect(img, 0, 0, panel_w, panel_h, (mo_rgb){16, 16, 16}, 0.9f);
    for (int i = 0; i < nl; i++)
        mo_draw_text(img, pad, pad + i * lh, lines[i], scale,
                     i == nl - 1 ? (mo_rgb){170, 170, 170}
                                 : i == 0 ? (mo_rgb){255, 230, 90} : (mo_rgb){240, 240, 240});
    return MO_OK;
}

/* Pictures are drawn with a longer side of at least MIN_SIDE, so labels stay legible, and at
 * most MAX_SIDE: a larger image is drawn scaled down, so the picture costs at most a few
 * MAX_SIDE^2 buffers whatever the input size (an 8192 x 8192 input would otherwise need
 * three full-size copies and a canvas over the image_max_pixels limit). */
#define MIN_SIDE 640
#define MAX_SIDE 2048

/* The composite of an image: the image (scaled to MIN_SIDE..MAX_SIDE) with draw_results()
 * on it and a legend strip below, drawn straight into the output canvas. */
static int composite(const mo_image *src, const mo_pipeline *p, const mo_pipeline_result *r,
                     const mo_palette *pal, const draw_opts *o, mo_image *out)
{
    const int longer = src->w > src->h ? src->w : src->h;
    const double f = longer < MIN_SIDE ? (double)MIN_SIDE / longer
                     : longer > MAX_SIDE ? (double)MAX_SIDE / longer : 1.0;
    const int W = f != 1 ? (int)(src->w * f + 0.5) > 0 ? (int)(src->w * f + 0.5) : 1 : src->w;
    const int H = f != 1 ? (int)(src->h * f + 0.5) > 0 ? (int)(src->h * f + 0.5) : 1 : src->h;
    int order[256], n = 0;
    double share[256];
    if (r->has_labels)
        n = seg_classes(r->labels, src->w, src->h, order, share);
    /* the canvas: the picture (its first H rows, a W x H image of its own), then the legend */
    mo_image probe = {.w = W, .h = H};
    const int scale = mo_draw_text_scale(&probe);
    legend_text text[256];
    mo_legend_entry ent[256];
    legend_entries(p, order, share, n, pal, text, ent);
    const int strip = mo_draw_legend_height(ent, n, scale, W, NULL);
    int rc = mo_image_alloc(out, W, H + strip);
    if (rc)
        return rc;
    mo_image img = {.data = out->data, .w = W, .h = H};
    if (f != 1) {
        mo_image scaled = {0};
        if ((rc = mo_image_resize_pil(src, W, H, &scaled))) {
            mo_image_free(out);
            return rc;
        }
        memcpy(img.data, scaled.data, (size_t)W * H * 3);
        mo_image_free(&scaled);
    } else {
        memcpy(img.data, src->data, (size_t)W * H * 3);
    }
    mo_labelmap m = {.data = r->labels, .w = W, .h = H}; /* same size: used in place */
    if (r->has_labels && (f != 1 || r->label_stride != W)) {
        if ((rc = mo_labelmap_alloc(&m, W, H))) {
            mo_image_free(out);
            return rc;
        }
        for (int y = 0; y < H; y++) { /* nearest label of the original pixel */
            const uint8_t *row =
                r->labels + (ptrdiff_t)((long long)y * src->h / H) * r->label_stride;
            for (int x = 0; x < W; x++)
                m.data[(size_t)y * W + x] = row[(long long)x * src->w / W];
        }
    }
    rc = draw_results(&img, src->w, src->h, r->has_labels ? &m : NULL, p, r, pal, o);
    if (r->has_labels && m.data != r->labels)
        mo_labelmap_free(&m);
    if (rc) {
        mo_image_free(out);
        return rc;
    }
    mo_draw_fill_rect(out, 0, H, W, H + strip, (mo_rgb){24, 24, 24}, 1.0f);
    mo_draw_legend(out, H, ent, n, scale);
    return MO_OK;
}

#ifdef MO_DEMO_VIDEO
/* ------------------------------------------------------------------ video */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A JSON string of s (class names: quotes, backslashes and control bytes escaped). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* One JSON line: the frame, its timestamp, the frame whose results it carries (--every),
 * its detections with score > json_score (COCO-like) and the classes in its mask. */
static void json_frame(FILE *f, const mo_pipeline *p, long long k, long long src, int64_t pts,
                       double t, const mo_pipeline_result *r, int w, int h, double json_score)
{
    fprintf(f, "{\"frame\": %lld, \"time\": %.6f, \"pts\": %lld, \"result_of\": %lld, "
               "\"detections\": [", k, t, (long long)pts, src);
    const mo_det *det = mo_pipeline_det(p);
    for (int i = 0, n = 0; i < r->num_detections; i++) {
        const mo_detection *d = &r->detections[i];
        if (!(d->score > json_score))
            continue;
        fprintf(f, "%s{\"category_id\": %d, \"name\": ", n++ ? ", " : "",
                mo_det_category_id(det, d->label));
        json_str(f, mo_det_class_name(det, d->label));
        fprintf(f, ", \"bbox\": [%.9g, %.9g, %.9g, %.9g], \"score\": %.9g}", d->x1, d->y1,
                d->x2 - d->x1, d->y2 - d->y1, d->score);
    }
    fputs("], \"mask_classes\": [", f);
    if (r->has_labels) {
        size_t count[256] = {0};
        for (int y = 0; y < h; y++) {
            const uint8_t *row = r->labels + (ptrdiff_t)y * r->label_stride;
            for (int x = 0; x < w; x++)
                count[row[x]]++;
        }
        for (int c = 1, n = 0; c < 256; c++) /* 0 is the background */
            if (count[c]) {
                fprintf(f, "%s{\"id\": %d, \"name\": ", n++ ? ", " : "", c);
                json_str(f, mo_pipeline_seg_class_name(p, c));
                fprintf(f, ", \"share\": %.6f}", (double)count[c] / ((double)w * h));
            }
    }
    fputs("]}\n", f);
}

/* frames/s and ETA on one terminal line */
static void progress(long long k, int64_t total, double t0, int end)
{
    const double el = now_s() - t0, fps = el > 0 ? (double)k / el : 0;
    if (total > 0 && fps > 0) {
        const int eta = k < total ? (int)((double)(total - k) / fps + 0.5) : 0;
        fprintf(stderr, "\rframe %lld/%lld  %.1f frames/s  ETA %d:%02d:%02d ", k,
                (long long)total, fps, eta / 3600, eta / 60 % 60, eta % 60);
    } else {
        fprintf(stderr, "\rframe %lld  %.1f frames/s ", k, fps);
    }
    if (end)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Every frame of `in` through the pipeline (every `every`-th; results held between),
 * drawn and encoded to `out`. Exit status: 0, 1 (input or output failed; the frames
 * done so far are kept in `out`), 2 (usage). All buffers are allocated once. */
static int run_video(const char *in, const char *out, const char *codec, const char *json,
                     int every, int threads, double json_score, const mo_pipeline *p,
                     mo_pipeline_session *s, const mo_palette *pal, const draw_opts *o)
{
    video_info info;
    video_in *vin = NULL;
    video_out *vout = NULL;
    int r = video_in_open(&vin, in, threads, &info);
    if (r) {
        fprintf(stderr, "mo-demo: %s: %s\n", video_strerror(r), video_last_error());
        return 1;
    }
    if ((r = video_out_open(&vout, out, codec, &info, threads))) {
        fprintf(stderr, "mo-demo: %s: %s\n", video_strerror(r), video_last_error());
        video_in_close(&vin);
        return 1;
    }
    FILE *jf = NULL;
    if (json && !(jf = strcmp(json, "-") ? fopen(json, "w") : stdout)) {
        fprintf(stderr, "mo-demo: cannot write %s: %s\n", json, strerror(errno));
        video_out_close(&vout, 0);
        video_in_close(&vin);
        return 1;
    }
    const int W = info.width, H = info.height;
    uint8_t *rgb = malloc((size_t)W * H * 3), *lab = malloc((size_t)W * H);
    static mo_detection det[300];
    mo_pipeline_result res = {.size = sizeof(res)};
    int status = 0;
    if (!rgb || !lab) {
        fprintf(stderr, "mo-demo: out of memory\n");
        status = 1;
    }
    const int tty = isatty(2);
    const double t0 = now_s();
    double shown = t0;
    long long k = 0, src = -1;
    mo_frame fr;
    int64_t pts;
    double t, ts = now_s(), spent[4] = {0}; /* seconds in decode, pipeline, draw, encode */
    while (!status && (r = video_in_read(vin, &fr, &pts, &t)) == 1) {
        double tn = now_s();
        spent[0] += tn - ts;
        ts = tn;
        if (k % every == 0) {
            res = (mo_pipeline_result){.size = sizeof(res), .detections = det,
                                       .det_capacity = 300, .labels = lab, .label_stride = W};
            if ((r = mo_pipeline_run(s, &fr, &res))) {
                fprintf(stderr, "mo-demo: %s: frame %lld: %s (%s)\n", in, k, mo_strerror(r),
                        mo_last_error());
                status = 1;
                break;
            }
            src = k;
        }
        tn = now_s();
        spent[1] += tn - ts;
        ts = tn;
        /* the picture: this frame's RGB (the pipeline's conversion), results drawn in */
        mo_image img = {.data = rgb, .w = W, .h = H};
        const mo_labelmap mask = {.data = lab, .w = W, .h = H};
        if ((r = mo_frame_to_rgb(&fr, rgb, (ptrdiff_t)W * 3)) ||
            (r = draw_results(&img, W, H, res.has_labels ? &mask : NULL, p, &res, pal, o))) {
            fprintf(stderr, "mo-demo: frame %lld: %s (%s)\n", k, mo_strerror(r), mo_last_error());
            status = 1;
            break;
        }
        if (res.has_labels) { /* the legend over the bottom of the frame */
            int order[256];
            double share[256];
            const int n = seg_classes(lab, W, H, order, share);
            const int scale = mo_draw_text_scale(&img);
            static legend_text text[256];
            mo_legend_entry ent[256];
            legend_entries(p, order, share, n, pal, text, ent);
            const int strip = mo_draw_legend_height(ent, n, scale, W, NULL);
            if (strip && strip < H) {
                mo_draw_fill_rect(&img, 0, H - strip, W, H, (mo_rgb){24, 24, 24}, 0.75f);
                mo_draw_legend(&img, H - strip, ent, n, scale);
            }
        }
        tn = now_s();
        spent[2] += tn - ts;
        ts = tn;
        if ((r = video_out_write(vout, rgb, (ptrdiff_t)W * 3, pts))) {
            fprintf(stderr, "mo-demo: %s: %s\n", video_strerror(r), video_last_error());
            status = 1;
            break;
        }
        tn = now_s();
        spent[3] += tn - ts;
        ts = tn;
        if (jf)
            json_frame(jf, p, k, src, pts, t, &res, W, H, json_score);
        k++;
        if (tty && now_s() - shown >= 0.25) {
            shown = now_s();
            progress(k, info.frames, t0, 0);
        }
    }
    if (r < 0 && !status) { /* the reader stopped on an error */
        fprintf(stderr, "mo-demo: %s: %s\n", video_strerror(r), video_last_error());
        status = 1;
    }
    if (tty && k)
        progress(k, info.frames, t0, 1);
    /* what the reader saw at the end: truncated, corrupt packets, no frame */
    if ((r = video_in_close(&vin)) && !status) {
        fprintf(stderr, "mo-demo: %s: %s\n", video_strerror(r), video_last_error());
        status = 1;
    }
    const char *enc = video_out_codec(vout);
    char encname[32];
    snprintf(encname, sizeof(encname), "%s", enc);
    if ((r = video_out_close(&vout, k > 0))) {
        fprintf(stderr, "mo-demo: %s: %s\n", video_strerror(r), video_last_error());
        status = 1;
    }
    if (jf && (jf == stdout ? fflush(jf) : fclose(jf))) {
        fprintf(stderr, "mo-demo: cannot write %s\n", json);
        status = 1;
    }
    const double el = now_s() - t0;
    if (k) /* on stderr when the JSON lines go to stdout */
        fprintf(jf == stdout ? stderr : stdout, "%s -> %s: %lld frames %dx%d (%s), %.2f s, %.2f frames/s; ms per frame: decode "
               "%.1f, pipeline %.1f, draw %.1f, encode %.1f\n", in, out, k, W, H, encname, el,
               el > 0 ? (double)k / el : 0.0, 1e3 * spent[0] / k, 1e3 * spent[1] / k,
               1e3 * spent[2] / k, 1e3 * spent[3] / k);
    free(rgb);
    free(lab);
    return status;
}
#endif

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    const long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "mo-demo: %s needs an integer in %d..%d\n", opt, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *heads[3], *video = NULL, *codec = NULL,
               *json = NULL;
    int nh = 0, first = 0, max_boxes = 10, top = 3, separate = 0, every = 1, threads = 1;
    double min_score = 0.3, overlap = 0.5, json_score = 0.3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model") && has) {
            model = argv[++i];
        } else if ((!strcmp(a, "--cls") || !strcmp(a, "--det") || !strcmp(a, "--seg")) && has) {
            if (nh == 3) {
                usage(stderr);
                return 2;
            }
            heads[nh++] = argv[++i];
        } else if (!strcmp(a, "--out") && has) {
            out = argv[++i];
        } else if (!strcmp(a, "--draw-score") && has) {
            min_score = atof(argv[++i]);
        } else if (!strcmp(a, "--overlap") && has) {
            overlap = atof(argv[++i]);
        } else if (!strcmp(a, "--max-boxes") && has) {
            max_boxes = atoi(argv[++i]);
        } else if (!strcmp(a, "--top") && has) {
            top = atoi(argv[++i]);
            if (top < 0 || top > MO_PIPELINE_MAX_TOPK) {
                fprintf(stderr, "mo-demo: --top must be 0..%d\n", MO_PIPELINE_MAX_TOPK);
                return 2;
            }
        } else if (!strcmp(a, "--separate")) {
            separate = 1;
        } else if (!strcmp(a, "--threads") && has) {
            if (parse_int(a, argv[++i], 0, MO_MAX_THREADS, &threads))
                return 2;
        } else if (!strcmp(a, "--video") && has) {
            video = argv[++i];
        } else if (!strcmp(a, "--every") && has) {
            if (parse_int(a, argv[++i], 1, 1000000, &every))
                return 2;
        } else if (!strcmp(a, "--codec") && has) {
            codec = argv[++i];
        } else if (!strcmp(a, "--json") && has) {
            json = argv[++i];
        } else if (!strcmp(a, "--json-score") && has) {
            json_score = atof(argv[++i]);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mo-demo: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else {
            if (!first)
                first = i;
        }
    }
    if (!model || (!first && !video) || (video && (first || !out))) {
        if (video && first)
            fprintf(stderr, "mo-demo: --video takes no image arguments\n");
        else if (video && !out)
            fprintf(stderr, "mo-demo: --video needs --out FILE (e.g. out.mp4)\n");
        usage(stderr);
        return 2;
    }
    if ((codec || json || every != 1) && !video) {
        fprintf(stderr, "mo-demo: --codec, --json and --every go with --video\n");
        return 2;
    }
#ifndef MO_DEMO_VIDEO
    (void)json_score; /* accepted without video support; only --video reads it */
    if (video) {
        fprintf(stderr, "mo-demo: built without video support (FFmpeg's libavformat, "
                        "libavcodec, libswscale, libavutil: meson setup -Dvideo=enabled)\n");
        return 2;
    }
#endif
    if (!out)
        out = ".";
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    set.share_backbone = !separate;
    set.top_k = top > 0 ? top : 1;
    set.threads = threads;
    mo_pipeline *p = NULL;
    mo_pipeline_session *s = NULL;
    int r = mo_pipeline_open(&p, model, heads, nh, &set);
    if (!r)
        r = mo_pipeline_session_open(&s, p, NULL);
    if (r) {
        fprintf(stderr, "mo-demo: %s (%s)\n", mo_strerror(r), mo_last_error());
        mo_pipeline_session_close(&s);
        mo_pipeline_close(&p);
        return 2;
    }
    mo_palette pal;
    mo_palette_voc(&pal);
    const draw_opts dopt = {(float)min_score, max_boxes, overlap, top};
    int failed = 0;
#ifdef MO_DEMO_VIDEO
    if (video) {
        failed = run_video(video, out, codec, json, every, threads, json_score, p, s, &pal,
                           &dopt);
        mo_pipeline_session_close(&s);
        mo_pipeline_close(&p);
        return failed;
    }
#endif
    mkdir(out, 0777);
    mo_detection det[300];
    for (int i = first; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) { /* an option and its value */
            if (strcmp(argv[i], "--separate"))
                i++;
            continue;
        }
        mo_image img = {0};
        uint8_t *lab = NULL;
        if ((r = mo_image_load(&img, argv[i])) ||
            !(lab = malloc((size_t)img.w * img.h)))
            r = r ? r : MO_ENOMEM;
        mo_pipeline_result res = {.size = sizeof(res), .detections = det, .det_capacity = 300,
                                  .labels = lab, .label_stride = img.w};
        const mo_frame fr = {.format = MO_FRAME_RGB, .width = img.w, .height = img.h,
                             .data = {img.data}, .stride = {(ptrdiff_t)img.w * 3}};
        if (!r)
            r = mo_pipeline_run(s, &fr, &res);
        char path[4096];
        if (!r) {
            const char *b = base_name(argv[i]), *dot = strrchr(b, '.');
            snprintf(path, sizeof(path), "%s/%.*s.png", out, (int)(dot ? dot - b : (long)strlen(b)), b);
            mo_image pic = {0};
            r = composite(&img, p, &res, &pal, &dopt, &pic);
            if (!r)
                r = mo_image_save_png(&pic, path);
            mo_image_free(&pic);
        }
        if (r) {
            fprintf(stderr, "mo-demo: %s: %s (%s)\n", argv[i], mo_strerror(r), mo_last_error());
            failed = 1;
        } else {
            printf("%s -> %s\n", argv[i], path);
            for (int k = 0; k < res.num_top && k < top; k++)
                printf("  %d. %.4f %4d  %s\n", k + 1, res.top[k].prob, res.top[k].index,
                       mo_cls_class_name(mo_pipeline_cls(p), res.top[k].index));
            int shown = 0;
            for (int k = 0; k < res.num_detections && res.detections[k].score >= min_score; k++)
                shown++;
            if (mo_pipeline_det(p))
                printf("  %d detections (%d with score >= %.2f)\n", res.num_detections, shown,
                       min_score);
            printf("  %.1f ms: convert %.1f, preprocess %.1f, backbone %.1f, heads %.1f\n",
                   res.ms_total, res.ms_convert, res.ms_preprocess, res.ms_backbone,
                   res.ms_heads);
        }
        free(lab);
        mo_image_free(&img);
    }
    mo_pipeline_session_close(&s);
    mo_pipeline_close(&p);
    return failed;
}
