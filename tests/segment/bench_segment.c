/*
 * Timing of the DeepLabV3 head (torchvision's sizes: 256 ASPP channels, rates 12/24/36,
 * 21 classes) on MobileOne-S0 features, single thread, random weights built in memory:
 * per output stride, the backbone, the head as it runs (padded taps of the dilated convs
 * skipped) and the head computing every tap over zero padding, with the multiply-adds of
 * both. The two heads give bit-identical logits (checked here too).
 *
 * Usage: bench_segment [--size HxW] [--runs N]     (default 512x512, 3 runs; min time)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seg_internal.h"
#include "seggen.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Multiply-adds of the head on an h x w map (mode: enum seg_tap_mode). */
static double head_gmac(const mo_seg_info *in, int h, int w, int mode)
{
    const double px = (double)h * w, a = in->aspp_channels, c = in->in_channels;
    double m = px * c * a                                   /* 1x1 branch */
               + c * a + a * a                              /* pooling branch, once */
               + px * (in->num_rates + 1) * a * a           /* projection */
               + px * in->head_channels * in->num_classes;  /* classifier */
    for (int i = 0; i < in->num_rates; i++)
        m += (double)seg_conv3x3_macs(h, w, in->in_channels, in->aspp_channels, in->rates[i],
                                      mode);
    m += (double)seg_conv3x3_macs(h, w, in->aspp_channels, in->head_channels, 1, mode);
    return m / 1e9;
}

int main(int argc, char **argv)
{
    int h = 512, w = 512, runs = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc && sscanf(argv[i + 1], "%dx%d", &h, &w) == 2)
            i++;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_segment [--size HxW] [--runs N]\n");
            return 2;
        }
    }
    if (h < 32 || w < 32 || h > 4096 || w > 4096 || runs < 1)
        return 2;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    uint8_t *buf;
    size_t n = mg_serialize(&m, &buf);
    mg_free(&m);
    mo_file *bf = NULL, *hf = NULL;
    mo_backbone *bb = NULL;
    mo_seg *seg = NULL;
    if (mo_file_open_memory(&bf, buf, n) || mo_backbone_open(&bb, bf, NULL))
        return 1;
    free(buf);
    const head_spec hs = {1024, 256, 256, 21, 3, {12, 24, 36}};
    memset(&m, 0, sizeof(m));
    add_head(&m, &hs);
    char *classes = class_list(hs.k), *rates = rate_list(&hs);
    const char *kv[] = {"mo.variant", "s0", "mo.backbone_digest", mo_backbone_digest(bb),
                        "seg.classes", classes, "seg.rates", rates, NULL};
    n = serialize_with_meta(&m, "[\"seg\"]", kv, &buf);
    mg_free(&m);
    int r = mo_file_open_memory(&hf, buf, n);
    if (!r)
        r = mo_seg_open(&seg, hf, bb, NULL);
    if (r) {
        fprintf(stderr, "head: %s (%s)\n", mo_strerror(r), mo_last_error());
        return 1;
    }
    free(buf);
    free(classes);
    free(rates);
    mo_seg_info info;
    mo_seg_get_info(seg, &info);

    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = h;
    ss.max_width = w;
    ss.min_output_stride = 8;
    mo_session *s = NULL;
    if (mo_seg_workspace_size(seg, h, w, 8, &ss.workspace_bytes) ||
        mo_session_open(&s, bb, &ss))
        return 1;
    float *x = malloc(sizeof(float) * (size_t)h * w * 3);
    uint8_t *labels = malloc((size_t)h * w);
    if (!x || !labels)
        return 1;
    for (size_t i = 0; i < (size_t)h * w * 3; i++)
        x[i] = frand() * 2.0f;
    mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    printf("DeepLabV3 head on MobileOne-S0, %dx%d input, 1 thread, min of %d runs\n", h, w, runs);
    printf("  OS  features  backbone ms  head ms (GMAC)   all taps ms (GMAC)   upsample+argmax ms\n");
    for (int os = 32; os >= 8; os /= 2) {
        double tb = 1e30, th = 1e30, ta = 1e30, tu = 1e30;
        mo_features f;
        mo_tensor lg;
        float *keep = NULL;
        for (int k = 0; k < runs; k++) {
            double t0 = now_ms();
            mo_backbone_run(s, &in, os, &f);
            double t1 = now_ms();
            mo_seg_logits(seg, s, &f, &lg);
            double t2 = now_ms();
            mo_seg_upsample_argmax(&lg, h, w, labels, w, NULL);
            double t3 = now_ms();
            if (!keep) {
                keep = malloc(sizeof(float) * (size_t)lg.h * lg.w * lg.c);
                if (!keep)
                    return 1;
                memcpy(keep, lg.data, sizeof(float) * (size_t)lg.h * lg.w * lg.c);
            }
            const float *all = seg_forward(seg, NULL, &f.level[3], mo_session_workspace(s, NULL), 0);
            double t4 = now_ms();
            for (size_t i = 0; i < (size_t)lg.h * lg.w * lg.c; i++)
                if (keep[i] != all[i]) {
                    fprintf(stderr, "OS %d: skipping taps changed logit %zu\n", os, i);
                    return 1;
                }
            tb = t1 - t0 < tb ? t1 - t0 : tb;
            th = t2 - t1 < th ? t2 - t1 : th;
            tu = t3 - t2 < tu ? t3 - t2 : tu;
            ta = t4 - t3 < ta ? t4 - t3 : ta;
        }
        const mo_tensor *t = &f.level[3];
        printf("  %2d  %3dx%-3d   %8.1f   %8.1f (%5.2f)   %8.1f (%5.2f)     %8.1f\n", os, t->h, t->w,
               tb, th, head_gmac(&info, t->h, t->w, SEG_TAPS_CLIP), ta,
               head_gmac(&info, t->h, t->w, SEG_TAPS_ALL), tu);
        free(keep);
    }
    free(x);
    free(labels);
    mo_session_close(&s);
    mo_seg_close(&seg);
    mo_backbone_close(&bb);
    mo_file_close(&hf);
    mo_file_close(&bf);
    return 0;
}
