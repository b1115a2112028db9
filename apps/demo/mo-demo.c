/* mo-demo: classification, detection and segmentation of each image from one backbone
 * pass (libmo_pipeline), drawn as one composite picture: the segmentation mask blended
 * in, the detection boxes with their labels, the top classes and the timing in a corner,
 * and a legend of the segmented classes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mo/draw.h"
#include "mo/labels.h"
#include "mo/pipeline.h"

static void usage(FILE *to)
{
    fprintf(to,
        "usage: mo-demo --model BACKBONE [--cls HEAD] [--det HEAD] [--seg HEAD] [options] IMAGE...\n"
        "  --model FILE      backbone model file (its classification head is used when it has one)\n"
        "  --cls FILE        classification head file (when the backbone file has none)\n"
        "  --det FILE        detection head file\n"
        "  --seg FILE        segmentation head file\n"
        "  --out DIR         folder for the composite pictures (default .): <name>.png,\n"
        "                    640 to 2048 pixels on the longer side\n"
        "  --draw-score T    draw detections with score >= T (default 0.3)\n"
        "  --max-boxes N     draw at most N boxes, best first (default 10)\n"
        "  --overlap T       do not draw a box overlapping a better one of any class by\n"
        "                    IoU > T (default 0.5; 1: draw every box)\n"
        "  --top K           classes listed in the corner (default 3)\n"
        "  --separate        one backbone pass per head (the baseline) instead of one shared pass\n"
        "exit status: 0 all images done, 1 some failed, 2 usage or model error\n");
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Segmentation classes covering at least 0.5% of the image, largest first. */
static int seg_classes(const uint8_t *lab, size_t npix, int order[256], double share[256])
{
    size_t count[256] = {0};
    for (size_t i = 0; i < npix; i++)
        count[lab[i]]++;
    int n = 0;
    for (int c = 1; c < 256; c++) /* 0 is the background */
        if (count[c] * 200 >= npix)
            order[n++] = c;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && count[order[j]] > count[order[j - 1]]; j--) {
            const int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < n; i++)
        share[i] = 100.0 * (double)count[order[i]] / (double)npix;
    return n;
}

/* Lay out (draw = 0: only measure the height) the legend entries "[swatch] name 12%"
 * left to right from y0 over the canvas width. */
static int legend(mo_image *img, int y0, int draw, const mo_pipeline *p, const int *order,
                  const double *share, int n, const mo_palette *pal, int scale)
{
    int th;
    mo_draw_text_size("Ag", scale, NULL, &th);
    const int pad = 3 * scale, sw = th, row = th + 2 * pad;
    int x = pad, y = y0 + pad;
    for (int i = 0; i < n; i++) {
        char text[96];
        const char *name = mo_pipeline_seg_class_name(p, order[i]);
        snprintf(text, sizeof(text), "%s %.0f%%", name ? name : "?", share[i]);
        int tw;
        mo_draw_text_size(text, scale, &tw, NULL);
        const int ew = sw + pad + tw;
        if (x > pad && x + ew > img->w - pad) {
            x = pad;
            y += row;
        }
        if (draw) {
            const mo_rgb c = {pal->rgb[order[i]][0], pal->rgb[order[i]][1],
                              pal->rgb[order[i]][2]};
            mo_draw_fill_rect(img, x, y + pad, x + sw, y + pad + sw, c, 1.0f);
            mo_draw_rect(img, x, y + pad, x + sw, y + pad + sw, 1, (mo_rgb){200, 200, 200});
            mo_draw_text(img, x + sw + pad, y + pad, text, scale, (mo_rgb){240, 240, 240});
        }
        x += ew + 3 * pad;
    }
    return n ? y + row + pad - y0 : 0;
}

/* "name 0.87" shortened until it fits in max_w pixels. */
static void fit_text(char *buf, size_t size, const char *name, float score, int scale,
                     int max_w)
{
    char n[64];
    snprintf(n, sizeof(n), "%s", name ? name : "?");
    for (size_t len = strlen(n);; len--) {
        snprintf(buf, size, "%s %.2f", n, score);
        int w;
        mo_draw_text_size(buf, scale, &w, NULL);
        if (w + 4 * scale <= max_w || len <= 2)
            return;
        n[len - 2] = '.';
        n[len - 1] = 0;
    }
}

/* Pictures are drawn with a longer side of at least MIN_SIDE, so labels stay legible, and at
 * most MAX_SIDE: a larger image is drawn scaled down, so the picture costs at most a few
 * MAX_SIDE^2 buffers whatever the input size (an 8192 x 8192 input would otherwise need
 * three full-size copies and a canvas over the image_max_pixels limit). */
#define MIN_SIDE 640
#define MAX_SIDE 2048

/* The composite: the image (scaled to MIN_SIDE..MAX_SIDE) with the mask blended in, the
 * boxes and their tags, a corner panel (top classes, timing) and a legend strip below, drawn
 * straight into the output canvas. */
static int composite(const mo_image *src, const mo_pipeline *p, const mo_pipeline_result *r,
                     const mo_palette *pal, float min_score, int max_boxes, double overlap,
                     int top, mo_image *out)
{
    const int longer = src->w > src->h ? src->w : src->h;
    const double f = longer < MIN_SIDE ? (double)MIN_SIDE / longer
                     : longer > MAX_SIDE ? (double)MAX_SIDE / longer : 1.0;
    const int W = f != 1 ? (int)(src->w * f + 0.5) > 0 ? (int)(src->w * f + 0.5) : 1 : src->w;
    const int H = f != 1 ? (int)(src->h * f + 0.5) > 0 ? (int)(src->h * f + 0.5) : 1 : src->h;
    const double fx = (double)W / src->w, fy = (double)H / src->h;
    int order[256], n = 0;
    double share[256];
    if (r->has_labels)
        n = seg_classes(r->labels, (size_t)src->w * src->h, order, share);
    /* the canvas: the picture (its first H rows, a W x H image of its own), then the legend */
    mo_image probe = {.w = W, .h = H};
    const int scale = mo_draw_text_scale(&probe);
    const int strip = legend(&probe, 0, 0, p, order, share, n, pal, scale);
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
    if (r->has_labels) {
        mo_labelmap m = {.data = r->labels, .w = W, .h = H}; /* same size: used in place */
        if (f != 1 || r->label_stride != W) {
            if ((rc = mo_labelmap_alloc(&m, W, H))) {
                mo_image_free(out);
                return rc;
            }
            for (int y = 0; y < H; y++) { /* nearest label of the original pixel */
                const uint8_t *row = r->labels + (ptrdiff_t)((long long)y * src->h / H) *
                                                     r->label_stride;
                for (int x = 0; x < W; x++)
                    m.data[(size_t)y * W + x] = row[(long long)x * src->w / W];
            }
        }
        mo_draw_labels(&img, &m, pal, 0.45f, 0);
        if (m.data != r->labels)
            mo_labelmap_free(&m);
    }
    /* boxes: lowest score first so the best end on top, then their tags */
    const mo_det *det = mo_pipeline_det(p);
    const int side = W < H ? W : H;
    const int thick = side < 125 ? 1 : (side + 125) / 250;
    /* One box per object in the picture: a candidate overlapping a better one of any class
     * by IoU > overlap is not drawn (the detections are per-class NMS, as torchvision's,
     * so one object can carry a box per class it resembles). */
    enum { MAX_DRAWN = 300 };
    float bx[MAX_DRAWN * 4], sc[MAX_DRAWN];
    int keep[MAX_DRAWN], nb = 0, nc = 0;
    while (nc < r->num_detections && nc < MAX_DRAWN && r->detections[nc].score >= min_score) {
        const mo_detection *d = &r->detections[nc];
        bx[4 * nc] = d->x1, bx[4 * nc + 1] = d->y1, bx[4 * nc + 2] = d->x2, bx[4 * nc + 3] = d->y2;
        sc[nc] = d->score;
        nc++;
    }
    /* IoU never exceeds 1, so overlap >= 1 keeps every box */
    if ((rc = mo_nms(bx, sc, NULL, nc, overlap, max_boxes, keep, &nb))) {
        mo_image_free(out);
        return rc;
    }
    nb = nb < max_boxes ? nb : max_boxes;
    for (int i = nb - 1; i >= 0; i--) {
        const mo_detection *d = &r->detections[keep[i]];
        const mo_rgb c = mo_draw_class_color(d->label);
        const int x0 = (int)(d->x1 * fx + 0.5), y0 = (int)(d->y1 * fy + 0.5);
        const int x1 = (int)(d->x2 * fx + 0.5), y1 = (int)(d->y2 * fy + 0.5);
        mo_draw_rect(&img, x0 - 1, y0 - 1, x1 + 1, y1 + 1, 1, (mo_rgb){20, 20, 20});
        mo_draw_rect(&img, x0, y0, x1, y1, thick, c);
    }
    /* the corner panel: top classes, then the timing */
    char lines[MO_PIPELINE_MAX_TOPK + 1][96];
    int nl = 0;
    const mo_cls *cls = mo_pipeline_cls(p);
    for (int i = 0; i < r->num_top && i < top; i++) {
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
        fit_text(text, sizeof(text), mo_det_class_name(det, d->label), d->score, scale, W);
        int x = (int)(d->x1 * fx + 0.5), y = (int)(d->y1 * fy + 0.5);
        const int top_of_tag = y - tag_h >= 0 ? y - tag_h : y;
        if (x < panel_w && top_of_tag < panel_h) {
            if (panel_w < (int)(d->x2 * fx + 0.5) - tag_h)
                x = panel_w;
            else
                y = panel_h + tag_h;
        }
        mo_draw_tag(&img, x, y, text, scale, mo_draw_class_color(d->label));
    }
    mo_draw_fill_rect(&img, 0, 0, panel_w, panel_h, (mo_rgb){16, 16, 16}, 0.9f);
    for (int i = 0; i < nl; i++)
        mo_draw_text(&img, pad, pad + i * lh, lines[i], scale,
                     i == nl - 1 ? (mo_rgb){170, 170, 170}
                                 : i == 0 ? (mo_rgb){255, 230, 90} : (mo_rgb){240, 240, 240});
    /* the legend strip below the picture */
    mo_draw_fill_rect(out, 0, H, W, H + strip, (mo_rgb){24, 24, 24}, 1.0f);
    legend(out, H, 1, p, order, share, n, pal, scale);
    return MO_OK;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *out = ".", *heads[3];
    int nh = 0, first = 0, max_boxes = 10, top = 3, separate = 0;
    double min_score = 0.3, overlap = 0.5;
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
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mo-demo: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else {
            if (!first)
                first = i;
        }
    }
    if (!model || !first) {
        usage(stderr);
        return 2;
    }
    mo_pipeline_settings set;
    mo_pipeline_default_settings(&set);
    set.share_backbone = !separate;
    set.top_k = top > 0 ? top : 1;
    mo_pipeline *p = NULL;
    mo_pipeline_session *s = NULL;
    int r = mo_pipeline_open(&p, model, heads, nh, &set);
    if (!r)
        r = mo_pipeline_session_open(&s, p);
    if (r) {
        fprintf(stderr, "mo-demo: %s (%s)\n", mo_strerror(r), mo_last_error());
        mo_pipeline_close(&p);
        return 2;
    }
    mkdir(out, 0777);
    mo_palette pal;
    mo_palette_voc(&pal);
    int failed = 0;
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
            r = composite(&img, p, &res, &pal, (float)min_score, max_boxes, overlap, top,
                          &pic);
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
