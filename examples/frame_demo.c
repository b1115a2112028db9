/*
 * frame_demo: the SDK on a camera-style frame in memory. Copy this file, then
 *
 *   cc -std=c11 frame_demo.c $(pkg-config --cflags --libs mo_pipeline) -o frame_demo
 *   ./frame_demo mobileone_s0.mo.safetensors [det_head.mo.safetensors] [seg_head.mo.safetensors]
 *
 * It fills a 640x480 NV12 frame (as a camera or video decoder hands it over: a Y plane,
 * then interleaved U,V at half resolution, rows padded to 704 bytes), runs every head on
 * it with one backbone pass and prints the results. Without arguments it only converts
 * the frame to RGB.
 */
#include <mo/pipeline.h>
#include <stdio.h>
#include <stdlib.h>

#define W 640
#define H 480
#define STRIDE 704 /* padded rows, as many camera buffers have */

int main(int argc, char **argv)
{
    /* 1. the frame: a smooth colour gradient, in caller memory */
    uint8_t *y = malloc((size_t)STRIDE * H), *uv = malloc((size_t)STRIDE * (H / 2));
    uint8_t *rgb = malloc((size_t)W * H * 3);
    if (!y || !uv || !rgb)
        return 1;
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++)
            y[r * STRIDE + c] = (uint8_t)(40 + 160 * c / W);
    for (int r = 0; r < H / 2; r++)
        for (int c = 0; c < W / 2; c++) {
            uv[r * STRIDE + 2 * c] = (uint8_t)(90 + 80 * r / (H / 2));     /* U */
            uv[r * STRIDE + 2 * c + 1] = (uint8_t)(170 - 80 * c / (W / 2)); /* V */
        }
    const mo_frame frame = {.format = MO_FRAME_NV12, .width = W, .height = H,
                            .data = {y, uv}, .stride = {STRIDE, STRIDE}};

    /* 2. conversion alone (BT.601 limited range, as OpenCV) */
    int err = mo_frame_to_rgb(&frame, rgb, W * 3);
    if (err) {
        fprintf(stderr, "mo_frame_to_rgb: %s (%s)\n", mo_strerror(err), mo_last_error());
        return 1;
    }
    printf("SDK %s: frame %dx%d NV12, RGB of pixel (0,0) = %d %d %d\n", mo_version(), W, H,
           rgb[0], rgb[1], rgb[2]);
    int status = 0;
    if (argc > 1) {
        /* 3. one pipeline (shared by threads), one session per thread, one call per frame */
        mo_pipeline *p = NULL;
        mo_pipeline_session *s = NULL;
        err = mo_pipeline_open(&p, argv[1], (const char *const *)argv + 2, argc - 2, NULL);
        if (!err)
            err = mo_pipeline_session_open(&s, p, NULL);
        mo_detection dets[100];
        uint8_t *labels = malloc((size_t)W * H);
        mo_pipeline_result res = {.size = sizeof(res), .detections = dets, .det_capacity = 100,
                                  .labels = labels, .label_stride = W};
        if (!err && !labels)
            err = MO_ENOMEM;
        if (!err)
            err = mo_pipeline_run(s, &frame, &res);
        if (err) {
            fprintf(stderr, "frame_demo: %s (%s)\n", mo_strerror(err), mo_last_error());
            status = 1;
        } else {
            for (int i = 0; i < res.num_top; i++)
                printf("class %d. %-30s %.4f\n", i + 1,
                       mo_cls_class_name(mo_pipeline_cls(p), res.top[i].index),
                       res.top[i].prob);
            for (int i = 0; i < res.num_detections && i < 3; i++)
                printf("box %s %.2f at %.0f,%.0f-%.0f,%.0f\n",
                       mo_det_class_name(mo_pipeline_det(p), dets[i].label), dets[i].score,
                       dets[i].x1, dets[i].y1, dets[i].x2, dets[i].y2);
            if (res.has_labels)
                printf("label at the centre: %s\n",
                       mo_pipeline_seg_class_name(p, labels[(H / 2) * W + W / 2]));
            printf("%.1f ms (backbone %.1f ms)\n", res.ms_total, res.ms_backbone);
        }
        free(labels);
        mo_pipeline_session_close(&s);
        mo_pipeline_close(&p);
    }
    free(y);
    free(uv);
    free(rgb);
    return status;
}
