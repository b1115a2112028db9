/* mo-eval: COCO and Pascal VOC detection AP, segmentation mIoU, classification top-k,
 * and merging of sharded evaluation states. See usage(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo/eval.h"
#include "progress.h"
#include "subcommands.h"

static void usage(FILE *to)
{
    fprintf(to,
        "usage: mo-eval COMMAND [options]\n"
        "\n"
        "  mo-eval coco --gt instances.json --results results.json [...]\n"
        "  mo-eval coco --gt instances.json --model BACKBONE --head DET --images DIR [...]\n"
        "      COCO box AP exactly as pycocotools COCOeval (bbox): the 12 summary lines,\n"
        "      of a results file, or of a detection model run on DIR/<file_name> of every\n"
        "      ground-truth image (class k = the head's det.category_ids[k-1], else id k),\n"
        "      --per-category   a per-category AP / AP50 / AP75 table\n"
        "      --json FILE      write stats and per-category numbers as JSON\n"
        "      --plot FILE.png  precision-recall curves at IoU .50 (overall, or --plot-category\n"
        "                       ID[,ID...] or 'all' for one curve per category)\n"
        "\n"
        "  mo-eval voc --devkit VOC2007 --set test --det 'dir/comp4_det_test_{}.txt'\n"
        "      Pascal VOC AP (classic voc_eval, IoU > .5): per class and mean, VOC2007\n"
        "      11-point and VOC2010+ all-point. '{}' in --det is replaced by each class name\n"
        "      (a class whose file is absent has no detections). --json FILE, --plot FILE.png\n"
        "      (per class), --iou T (default 0.5).\n"
        "\n"
        "  mo-eval seg --gt DIR --pred DIR [--list ids.txt] [--classes 21] [--ignore 255]\n"
        "      mIoU, per-class IoU, pixel and mean class accuracy over one confusion matrix\n"
        "      of label PNGs DIR/<id>.png (palette or grayscale; ids from --list, or every\n"
        "      .png of the --gt folder). --json FILE\n"
        "\n"
        "  mo-eval top1 --list labels.txt [--root DIR] (--model FILE | --pred FILE)\n"
        "      top-1 / top-5 accuracy. labels.txt: 'file class' per line (tab or space).\n"
        "      --model runs the classification model on each image; --pred reads\n"
        "      mo-classify --json output, each list entry matched by its path relative to\n"
        "      --root (the prediction's path with --root taken off; two predictions for\n"
        "      one image are refused). --json FILE\n"
        "\n"
        "  mo-eval merge STATE... [--json FILE] [--per-category] [--plot FILE.png]\n"
        "      merge the states of shards and report as a single run would; states of\n"
        "      another ground truth or list, overlapping shards and missing ones are refused\n"
        "\n"
        "  coco, voc, seg: --shard I/N --state FILE evaluates the images i with i %% N == I\n"
        "  (in id / set order) and writes the state for 'mo-eval merge' instead of the report\n"
        "  (seg: --state with the whole list as given). --progress / --no-progress force the\n"
        "  progress bar (default: on when stderr is a terminal).\n"
        "exit status: 0 success, 1 evaluation error (bad input file, ...), 2 usage error\n");
}

int cli_error(const char *what, int err)
{
    fprintf(stderr, "mo-eval: %s: %s (%s)\n", what, mo_strerror(err), mo_last_error());
    return 1;
}

int cli_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "mo-eval: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(mo-eval --help for usage)\n");
    return 2;
}

int cli_parse_shard(const char *s, int *shard, int *n)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '/')
        return -1;
    const char *t = end + 1;
    long b = strtol(t, &end, 10);
    if (end == t || *end || errno || b < 1 || b > 1000000 || a < 0 || a >= b)
        return -1;
    *shard = (int)a;
    *n = (int)b;
    return 0;
}

int cli_progress_flag(const char *arg, int *flag)
{
    if (!strcmp(arg, "--progress")) {
        *flag = 1;
        return 1;
    }
    if (!strcmp(arg, "--no-progress")) {
        *flag = 0;
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    if (!strcmp(cmd, "coco"))
        return cmd_coco(argc - 2, argv + 2);
    if (!strcmp(cmd, "voc"))
        return cmd_voc(argc - 2, argv + 2);
    if (!strcmp(cmd, "seg"))
        return cmd_seg(argc - 2, argv + 2);
    if (!strcmp(cmd, "top1"))
        return cmd_top1(argc - 2, argv + 2);
    if (!strcmp(cmd, "merge"))
        return cmd_merge(argc - 2, argv + 2);
    return cli_usage("unknown command '%s'", cmd);
}
