/* Built outside the tree against an installed SDK, with pkg-config alone. */
#include <mo/mo.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    printf("MobileOne SDK %s\n", mo_version());
    mo_seg_close(NULL); /* links libmo_segment */
    /* libmo_detect links too: NMS of two overlapping boxes keeps one */
    const float boxes[8] = { 0, 0, 10, 10, 1, 1, 10, 10 }, scores[2] = { 0.9f, 0.8f };
    int keep[2], nk = 0;
    if (mo_nms(boxes, scores, NULL, 2, 0.5, 0, keep, &nk) || nk != 1)
        return 1;
    if (argc < 2)
        return 0;
    /* With a model file: load it and classify a flat grey image. */
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    mo_cls *cls = NULL;
    mo_session *s = NULL;
    int r = mo_file_open(&f, argv[1]);
    if (!r)
        r = mo_backbone_open(&bb, f, NULL);
    if (!r)
        r = mo_cls_open(&cls, f, bb, NULL);
    if (!r)
        r = mo_session_open(&s, bb, NULL);
    if (!r) {
        static float input[224 * 224 * 3], logits[1000];
        mo_tensor t = { input, 224, 224, 3, 224 * 3 };
        mo_features feats;
        r = mo_backbone_run(s, &t, 32, &feats);
        if (!r && mo_cls_num_classes(cls) <= 1000)
            r = mo_cls_logits(cls, &feats, logits);
    }
    if (r)
        fprintf(stderr, "error: %s (%s)\n", mo_strerror(r), mo_last_error());
    else
        printf("ran %s with %d classes\n", mo_backbone_variant(bb), mo_cls_num_classes(cls));
    mo_session_close(&s);
    mo_cls_close(&cls);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    return r ? 1 : 0;
}
