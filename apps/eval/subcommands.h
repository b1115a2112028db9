/* The subcommands of mo-eval and their shared helpers (mo-eval.c). */
#ifndef MO_EVAL_SUBCOMMANDS_H
#define MO_EVAL_SUBCOMMANDS_H

int cmd_coco(int argc, char **argv);
int cmd_voc(int argc, char **argv);
int cmd_seg(int argc, char **argv);
int cmd_top1(int argc, char **argv);
int cmd_merge(int argc, char **argv);

/* Print "mo-eval: what: error (detail)" and return 1. */
int cli_error(const char *what, int err);
/* Print a usage error and return 2. */
int cli_usage(const char *fmt, const char *arg);
/* "I/N" -> shard, count; -1 when malformed. */
int cli_parse_shard(const char *s, int *shard, int *n);
/* --progress / --no-progress: sets *flag and returns 1; otherwise 0. */
int cli_progress_flag(const char *arg, int *flag);

/* COCO report shared by coco and merge. */
struct mo_coco_eval;
int coco_report(struct mo_coco_eval *ev, const char *json, int per_category, const char *plot,
                const char *plot_cats);

/* VOC report shared by voc and merge. */
struct mo_voc_eval;
int voc_report(struct mo_voc_eval *ev, const char *json, const char *plot);
/* Segmentation report shared by seg and merge. */
struct mo_seg_eval;
int seg_report(struct mo_seg_eval *ev, const char *json);

#endif
