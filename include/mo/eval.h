/**
 * @file eval.h
 * @brief Evaluation: COCO box AP (pycocotools `COCOeval`, iouType bbox), Pascal VOC
 *        detection AP (classic `voc_eval`, VOC2007 11-point and VOC2010+ all-point),
 *        semantic segmentation (dataset-wide confusion matrix: mIoU, pixel and class
 *        accuracy) and classification top-k accuracy.
 *
 * Every evaluator has the same life cycle:
 * 1. open it on the ground truth (`mo_coco_eval_open()`, `mo_voc_eval_open()`,
 *    `mo_seg_eval_open()`);
 * 2. feed it predictions, from files written by anything (`*_load_*`) or straight from
 *    a model's outputs (`*_add_*`), in any order;
 * 3. `*_evaluate()` matches predictions to the ground truth image by image (all images,
 *    or one shard of them);
 * 4. `*_accumulate()` turns the per-image matches into the metrics.
 *
 * The per-image state of step 3 can be saved (`*_save_state()`) and merged in another
 * process (`*_open_state()`, `*_load_state()`), so a large set can be split across
 * processes or machines (`shard`, `num_shards` of `*_evaluate()`): the merged metrics
 * are bit-identical to those of a single run.
 *
 * Failing calls return a negative `MO_E*` code and record a message naming the file and
 * the position (line and column, JSON path, XML line, pixel) for mo_last_error().
 * An evaluator is not thread-safe; distinct evaluators are independent.
 */
#ifndef MO_EVAL_H
#define MO_EVAL_H

#include <stdio.h>

#include "mo/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Progress callback of long calls: @p done of @p total items (images) are
 *        finished. Called from the calling thread; may be NULL where accepted.
 */
typedef void (*mo_eval_progress_fn)(void *user, size_t done, size_t total);

/* ------------------------------------------------------------------------------ COCO */

/** Number of summary numbers of COCO box evaluation (pycocotools `stats`). */
#define MO_COCO_NUM_STATS 12
/** IoU thresholds .50:.05:.95. */
#define MO_COCO_NUM_IOU 10
/** Recall thresholds 0:.01:1. */
#define MO_COCO_NUM_RECALL 101
/** Area ranges all, small, medium, large. */
#define MO_COCO_NUM_AREAS 4
/** maxDets 1, 10, 100. */
#define MO_COCO_NUM_MAXDETS 3

/** COCO box evaluator: ground truth, detections and per-image matches. Opaque. */
typedef struct mo_coco_eval mo_coco_eval;

/** One detection in COCO results form. */
typedef struct mo_coco_det {
    int64_t image_id;    /**< COCO image id */
    int64_t category_id; /**< COCO category id */
    double bbox[4];      /**< x, y, width, height in pixels */
    double score;        /**< confidence */
} mo_coco_det;

/**
 * @brief Open an evaluator on a COCO `instances_*.json` ground truth file.
 *
 * Reads `images` (`id`, and `file_name`, `width`, `height` when present), `categories`
 * (`id`, `name`) and `annotations` (`id`, `image_id`, `category_id`, `bbox`, `area`,
 * `iscrowd` (0 when absent)). Annotations of unknown images or categories are ignored,
 * as pycocotools does.
 * @param[out] out receives the evaluator; close it with mo_coco_eval_close()
 * @param path ground truth JSON file
 * @return MO_OK; MO_EINVAL (NULL); MO_EIO (cannot read, not a regular file); MO_EFORMAT
 *         (invalid JSON: line and column; missing or mistyped key: JSON path);
 *         MO_EUNSUPPORTED (over a limit of mo/limits.h: json_file_bytes, max_images,
 *         max_categories, max_detections; the message names it); MO_ENOMEM
 */
MO_API int mo_coco_eval_open(mo_coco_eval **out, const char *path);

/**
 * @brief As mo_coco_eval_open() from @p size bytes of JSON.
 * @param[out] out receives the evaluator; close it with mo_coco_eval_close()
 * @param json the ground truth text (need not be NUL-terminated)
 * @param size its length in bytes
 * @param name used in messages
 * @return as mo_coco_eval_open() (no MO_EIO)
 */
MO_API int mo_coco_eval_open_memory(mo_coco_eval **out, const char *json, size_t size,
                                    const char *name);

/** @brief Free the evaluator and set `*ev` to NULL. Accepts NULL. @param ev the evaluator */
MO_API void mo_coco_eval_close(mo_coco_eval **ev);

/** @brief Number of images of the ground truth (sorted by id).
 *  @param ev the evaluator @return the count */
MO_API int mo_coco_eval_num_images(const mo_coco_eval *ev);
/** @brief Id of image @p i. @param ev the evaluator
 *  @param i 0 <= i < mo_coco_eval_num_images() @return the id, or -1 */
MO_API int64_t mo_coco_eval_image_id(const mo_coco_eval *ev, int i);
/** @brief `file_name` of image @p i. @param ev the evaluator @param i image index
 *  @return the name, owned by @p ev; NULL (absent, out of range, or opened from a state) */
MO_API const char *mo_coco_eval_image_file(const mo_coco_eval *ev, int i);
/** @brief Number of categories (sorted by id). @param ev the evaluator @return the count */
MO_API int mo_coco_eval_num_categories(const mo_coco_eval *ev);
/** @brief Id of category @p k. @param ev the evaluator @param k category index
 *  @return the id, or -1 */
MO_API int64_t mo_coco_eval_category_id(const mo_coco_eval *ev, int k);
/** @brief Name of category @p k. @param ev the evaluator @param k category index
 *  @return the name, owned by @p ev, or NULL */
MO_API const char *mo_coco_eval_category_name(const mo_coco_eval *ev, int k);

/**
 * @brief Add detections (e.g. a detector's output for one image).
 *
 * Detections of categories the ground truth lacks are counted and ignored (pycocotools
 * loads and never evaluates them). Order matters only among equal scores of one image
 * and category (a stable sort, as pycocotools).
 * @param ev the evaluator
 * @param dets the detections
 * @param n their number
 * @return MO_OK; MO_EINVAL (NULL, an image id the ground truth lacks, a non-finite box
 *         or score: the message names the index); MO_EUNSUPPORTED (more detections in
 *         all than mo_limits.max_detections); MO_ENOMEM
 */
MO_API int mo_coco_eval_add_detections(mo_coco_eval *ev, const mo_coco_det *dets, size_t n);

/**
 * @brief Add the detections of a COCO results file: a JSON array of objects with
 *        `image_id`, `category_id`, `bbox` [x, y, w, h] and `score` (other keys ignored).
 * @param ev the evaluator
 * @param path the results file
 * @return MO_OK; MO_EIO; MO_EFORMAT (invalid JSON with line and column, not an array,
 *         a missing or mistyped key, an image id the ground truth lacks: with the
 *         entry's index and line); MO_EUNSUPPORTED (a limit); MO_ENOMEM
 */
MO_API int mo_coco_eval_load_results(mo_coco_eval *ev, const char *path);

/**
 * @brief As mo_coco_eval_load_results() from @p size bytes of JSON.
 * @param ev the evaluator
 * @param json the results text (need not be NUL-terminated)
 * @param size its length in bytes
 * @param name used in messages (NULL: "<memory>")
 * @return as mo_coco_eval_load_results() (no MO_EIO)
 */
MO_API int mo_coco_eval_load_results_memory(mo_coco_eval *ev, const char *json, size_t size,
                                            const char *name);

/** @brief Detections added so far whose category is unknown (ignored).
 *  @param ev the evaluator @return their number */
MO_API size_t mo_coco_eval_num_ignored(const mo_coco_eval *ev);

/**
 * @brief Match detections to the ground truth (pycocotools `evaluate()`), for the
 *        images of one shard: image i (in id order) belongs to shard `i % num_shards`.
 * @param ev the evaluator
 * @param shard 0 <= shard < num_shards; (0, 1) evaluates every image
 * @param num_shards number of shards (>= 1)
 * @param progress called after each image, or NULL
 * @param user passed to @p progress
 * @return MO_OK, MO_EINVAL, MO_ENOMEM
 */
MO_API int mo_coco_eval_evaluate(mo_coco_eval *ev, int shard, int num_shards,
                                 mo_eval_progress_fn progress, void *user);

/**
 * @brief Compute precision and recall from the per-image matches (pycocotools
 *        `accumulate()`) and the 12 summary numbers (`summarize()`).
 * @param ev the evaluator, after mo_coco_eval_evaluate() of every image
 * @return MO_OK; MO_EINVAL (NULL, or some image has not been evaluated: the message
 *         names it, e.g. a missing shard); MO_ENOMEM
 */
MO_API int mo_coco_eval_accumulate(mo_coco_eval *ev);

/**
 * @brief The 12 numbers of pycocotools' `stats` after mo_coco_eval_accumulate():
 *        AP, AP50, AP75, AP small/medium/large, AR1, AR10, AR100, AR small/medium/large
 *        (-1 where no category has ground truth).
 * @param ev the evaluator, accumulated
 * @param [out] stats receives the 12 numbers
 * @return MO_OK, MO_EINVAL (NULL or not accumulated)
 */
MO_API int mo_coco_eval_stats(const mo_coco_eval *ev, double stats[MO_COCO_NUM_STATS]);

/**
 * @brief AP of category @p k (area all, maxDets 100) over IoU .50:.95 (@p iou < 0), or
 *        at one IoU threshold index @p iou (0 = .50, 5 = .75).
 * @param ev the evaluator, accumulated
 * @param k category index
 * @param iou index of the IoU threshold (0: .50, 5: .75), or < 0 for the mean
 * @return the AP, or -1 (no ground truth of that category, not accumulated, bad index)
 */
MO_API double mo_coco_eval_category_ap(const mo_coco_eval *ev, int k, int iou);

/**
 * @brief Interpolated precision at the 101 recall thresholds (area all, maxDets 100) at
 *        IoU threshold index @p iou, for category @p k, or averaged over the categories
 *        with ground truth (@p k = -1).
 * @param[out] precision 101 values, -1 where undefined
 * @param ev the evaluator, accumulated
 * @param k category index, or -1 for the mean over categories
 * @param iou index of the IoU threshold (0: .50)
 * @return MO_OK, MO_EINVAL
 */
MO_API int mo_coco_eval_pr_curve(const mo_coco_eval *ev, int k, int iou,
                                 double precision[MO_COCO_NUM_RECALL]);

/**
 * @brief The whole result grid of mo_coco_eval_accumulate(), as pycocotools'
 *        `eval['precision']`, `eval['recall']` and `eval['scores']`.
 *
 * Row-major arrays of doubles with K = mo_coco_eval_num_categories() (categories in id
 * order), T = ::MO_COCO_NUM_IOU, R = ::MO_COCO_NUM_RECALL, A = ::MO_COCO_NUM_AREAS (all,
 * small, medium, large) and M = ::MO_COCO_NUM_MAXDETS (1, 10, 100):
 * precision and scores `[T][R][K][A][M]`, recall `[T][K][A][M]`. -1 where a category
 * has no ground truth in an area range (or no image has it). `scores` holds the score of
 * the detection at which each precision value is read (0 past the last detection).
 * The evaluator keeps values only for the categories in use (so that a ground truth
 * declaring many unused categories costs no memory); this call spreads them over every
 * category into the caller's arrays.
 * @param ev the evaluator, accumulated
 * @param[out] precision T * R * K * A * M doubles filled with the precision array, or NULL
 * @param[out] recall T * K * A * M doubles filled with the recall array, or NULL
 * @param[out] scores T * R * K * A * M doubles filled with the scores array, or NULL
 * @return MO_OK, MO_EINVAL (NULL @p ev, not accumulated)
 */
MO_API int mo_coco_eval_arrays(const mo_coco_eval *ev, double *precision, double *recall,
                               double *scores);

/**
 * @brief Evaluate and accumulate only the images of @p ids (pycocotools'
 *        `params.imgIds`): the others, their ground truth and their detections take no
 *        part; ids the ground truth lacks select nothing.
 *
 * Applies to later mo_coco_eval_evaluate() and mo_coco_eval_accumulate() calls (images
 * left out need not be evaluated). The selection is not part of state files: select the
 * same images in the evaluator that merges them.
 * @param ev the evaluator
 * @param ids image ids (any order, repeats allowed), or NULL for every image (the default)
 * @param n number of @p ids (ignored when @p ids is NULL); 0 selects no image
 * @return MO_OK; MO_EINVAL (NULL @p ev); MO_ENOMEM
 */
MO_API int mo_coco_eval_select_images(mo_coco_eval *ev, const int64_t *ids, size_t n);

/**
 * @brief Print the 12 summary lines in pycocotools' `summarize()` layout to @p f, then,
 *        when @p per_category, a table of per-category AP, AP50 and AP75.
 * @param ev the evaluator, accumulated
 * @param f the stream
 * @param per_category nonzero: also one line per category
 * @return MO_OK, MO_EINVAL (not accumulated), MO_EIO
 */
MO_API int mo_coco_eval_print(const mo_coco_eval *ev, FILE *f, int per_category);

/**
 * @brief Write the summary and per-category numbers as JSON:
 *        `{"stats": [12 numbers], "names": [...], "categories": [{"id", "name", "AP",
 *        "AP50", "AP75"}]}`.
 * @param ev the evaluator, accumulated
 * @param path file to write
 * @return MO_OK, MO_EINVAL, MO_EIO, MO_ENOMEM
 */
MO_API int mo_coco_eval_write_json(const mo_coco_eval *ev, const char *path);

/**
 * @brief Save the per-image matches of the evaluated images (and the category and
 *        image lists) to a state file that mo_coco_eval_open_state() and
 *        mo_coco_eval_load_state() read.
 * @param ev the evaluator
 * @param path file to write
 * @return MO_OK, MO_EINVAL, MO_EIO, MO_ENOMEM
 */
MO_API int mo_coco_eval_save_state(const mo_coco_eval *ev, const char *path);

/**
 * @brief Open an evaluator from a state file alone (no ground truth file needed):
 *        it can merge further states and accumulate.
 * @param [out] out receives the evaluator; close it with mo_coco_eval_close()
 * @param path a state file of mo_coco_eval_save_state()
 * @return MO_OK; MO_EIO; MO_EFORMAT (not a COCO state, truncated, corrupt: with the byte
 *         offset; an older state format version); MO_EUNSUPPORTED (a limit); MO_ENOMEM
 */
MO_API int mo_coco_eval_open_state(mo_coco_eval **out, const char *path);

/**
 * @brief Merge a state file into @p ev: its images get the saved matches.
 * @param ev the evaluator
 * @param path a state file of mo_coco_eval_save_state()
 * @return MO_OK; MO_EIO; MO_EFORMAT; MO_EMISMATCH (another ground truth: different
 *         images or categories; or an image evaluated twice); MO_ENOMEM
 */
MO_API int mo_coco_eval_load_state(mo_coco_eval *ev, const char *path);

/* ------------------------------------------------------------------------------- VOC */

/** Pascal VOC detection evaluator (classic `voc_eval`). Opaque. */
typedef struct mo_voc_eval mo_voc_eval;

/** One detection in VOC form (pixel coordinates, inclusive corners). */
typedef struct mo_voc_det {
    int image;      /**< image index (order of the image set file) */
    int cls;        /**< class index */
    double score;   /**< confidence */
    double box[4];  /**< xmin, ymin, xmax, ymax */
} mo_voc_det;

/**
 * @brief Open an evaluator on a VOCdevkit year folder: reads `ImageSets/Main/<set>.txt`
 *        and `Annotations/<image>.xml` for each image (objects `name`, `difficult` (0
 *        when absent), `bndbox`).
 * @param dir the year folder (e.g. `VOCdevkit/VOC2007`)
 * @param image_set name of the set (e.g. "test", "val")
 * @param classes class names, or NULL for the 20 Pascal VOC classes
 * @param num_classes number of @p classes (ignored when NULL)
 * @param [out] out receives the evaluator; close it with mo_voc_eval_close()
 * @return MO_OK; MO_EINVAL; MO_EIO (missing file, not a regular file); MO_EFORMAT (bad
 *         XML or set file, missing element, object without a box: file and line);
 *         MO_EUNSUPPORTED (over a limit: text_file_bytes, max_categories, max_images,
 *         max_detections); MO_ENOMEM
 */
MO_API int mo_voc_eval_open(mo_voc_eval **out, const char *dir, const char *image_set,
                            const char *const *classes, int num_classes);

/** @brief Free the evaluator and set `*ev` to NULL. Accepts NULL. @param ev the evaluator */
MO_API void mo_voc_eval_close(mo_voc_eval **ev);

/** @brief Number of images of the set. @param ev the evaluator @return the count */
MO_API int mo_voc_eval_num_images(const mo_voc_eval *ev);
/** @brief Name (id) of image @p i. @param ev the evaluator @param i image index
 *  @return the name, owned by @p ev, or NULL */
MO_API const char *mo_voc_eval_image_name(const mo_voc_eval *ev, int i);
/** @brief Index of the image named @p name. @param ev the evaluator @param name image id
 *  @return the index, or -1 */
MO_API int mo_voc_eval_image_index(const mo_voc_eval *ev, const char *name);
/** @brief Number of classes. @param ev the evaluator @return the count */
MO_API int mo_voc_eval_num_classes(const mo_voc_eval *ev);
/** @brief Name of class @p c. @param ev the evaluator @param c class index
 *  @return the name, owned by @p ev, or NULL */
MO_API const char *mo_voc_eval_class_name(const mo_voc_eval *ev, int c);

/**
 * @brief Add detections (e.g. a detector's output for one image).
 * @param ev the evaluator
 * @param dets the detections
 * @param n their number
 * @return MO_OK, MO_EINVAL (bad image or class index, non-finite values),
 *         MO_EUNSUPPORTED (over mo_limits.max_detections), MO_ENOMEM
 */
MO_API int mo_voc_eval_add_detections(mo_voc_eval *ev, const mo_voc_det *dets, size_t n);

/**
 * @brief Add the detections of class @p cls from a classic results file: one line
 *        `image_id score xmin ymin xmax ymax` per detection.
 * @param ev the evaluator
 * @param cls class index
 * @param path the results file
 * @return MO_OK; MO_EIO; MO_EFORMAT (bad line, unknown image: file and line);
 *         MO_EUNSUPPORTED (a limit); MO_ENOMEM
 */
MO_API int mo_voc_eval_load_detections(mo_voc_eval *ev, int cls, const char *path);

/**
 * @brief Match detections to the ground truth for the images of one shard (image i
 *        belongs to shard `i % num_shards`). Per class, detections are taken in
 *        decreasing score; equal scores in image order, then in the order added.
 * @param iou_threshold overlap needed (classic: 0.5, strictly greater)
 * @param ev the evaluator
 * @param shard 0 <= shard < num_shards
 * @param num_shards number of shards (>= 1)
 * @param progress called after each image, or NULL
 * @param user passed to @p progress
 * @return MO_OK, MO_EINVAL, MO_ENOMEM
 */
MO_API int mo_voc_eval_evaluate(mo_voc_eval *ev, double iou_threshold, int shard,
                                int num_shards, mo_eval_progress_fn progress, void *user);

/**
 * @brief Precision/recall per class from the matches.
 * @param ev the evaluator, after mo_voc_eval_evaluate() of every image
 * @return MO_OK; MO_EINVAL (NULL or an image not evaluated: named); MO_ENOMEM
 */
MO_API int mo_voc_eval_accumulate(mo_voc_eval *ev);

/**
 * @brief AP of class @p cls after mo_voc_eval_accumulate().
 * @param use_07 1: VOC2007 11-point AP; 0: VOC2010+ all-point (area under the
 *        monotone precision envelope)
 * @param ev the evaluator, accumulated
 * @param cls class index
 * @return the AP in [0, 1], or -1 when the class has no non-difficult ground truth
 */
MO_API double mo_voc_eval_ap(const mo_voc_eval *ev, int cls, int use_07);

/** @brief Mean of the APs that are not -1. @param ev the evaluator, accumulated
 *  @param use_07 as in mo_voc_eval_ap() @return the mean, or -1 when none */
MO_API double mo_voc_eval_map(const mo_voc_eval *ev, int use_07);

/**
 * @brief The raw precision/recall curve of class @p cls (one point per detection in
 *        score order; pointers valid until the next accumulate or close).
 * @param ev the evaluator, accumulated
 * @param cls class index
 * @param [out] recall receives the recall values, owned by @p ev
 * @param [out] precision receives the precision values, owned by @p ev
 * @param [out] n receives the number of points
 * @return MO_OK, MO_EINVAL
 */
MO_API int mo_voc_eval_pr_curve(const mo_voc_eval *ev, int cls, const double **recall,
                                const double **precision, size_t *n);

/** @brief Save the per-image matches of the evaluated images.
 *  @param ev the evaluator @param path file to write
 *  @return MO_OK, MO_EINVAL, MO_EIO, MO_ENOMEM */
MO_API int mo_voc_eval_save_state(const mo_voc_eval *ev, const char *path);
/** @brief Open an evaluator from a state file alone.
 *  @param[out] out receives the evaluator; close it with mo_voc_eval_close()
 *  @param path a state file of mo_voc_eval_save_state()
 *  @return MO_OK, MO_EINVAL, MO_EIO, MO_EFORMAT (also an older state format version),
 *          MO_EUNSUPPORTED (a limit), MO_ENOMEM */
MO_API int mo_voc_eval_open_state(mo_voc_eval **out, const char *path);
/** @brief Merge a state file into @p ev. @param ev the evaluator
 *  @param path a state file of mo_voc_eval_save_state()
 *  @return MO_OK, MO_EINVAL, MO_EIO, MO_EFORMAT, MO_EMISMATCH (another image set or
 *          classes, or overlapping images), MO_ENOMEM */
MO_API int mo_voc_eval_load_state(mo_voc_eval *ev, const char *path);

/* ---------------------------------------------------------------------- segmentation */

/** Segmentation evaluator: a num_classes x num_classes confusion matrix. Opaque. */
typedef struct mo_seg_eval mo_seg_eval;

/** Dataset-wide segmentation metrics. */
typedef struct mo_seg_metrics {
    double miou;           /**< mean IoU over classes with row + col > 0 */
    double pixel_acc;      /**< correct / counted pixels */
    double mean_class_acc; /**< mean over classes with ground truth of diag / row */
    uint64_t pixels;       /**< counted pixels (ground truth not ignored) */
    int num_present;       /**< classes in the mIoU mean */
} mo_seg_metrics;

/**
 * @brief Open a segmentation evaluator.
 * @param num_classes 1..255 (21 for Pascal VOC)
 * @param ignore_index ground truth value that is not counted (255 for VOC), or -1
 * @param [out] out receives the evaluator; close it with mo_seg_eval_close()
 * @return MO_OK, MO_EINVAL, MO_ENOMEM, MO_EUNSUPPORTED (num_classes over
 *         mo_limits.max_categories)
 */
MO_API int mo_seg_eval_open(mo_seg_eval **out, int num_classes, int ignore_index);

/** @brief Free and set `*ev` to NULL. Accepts NULL. @param ev the evaluator */
MO_API void mo_seg_eval_close(mo_seg_eval **ev);

/**
 * @brief Count @p n pixels of ground truth @p gt against prediction @p pred.
 * @param name used in messages (may be NULL)
 * @param width row length, only used to give the pixel position (x, y) in messages
 * @param ev the evaluator
 * @param gt ground truth labels
 * @param pred predicted labels
 * @param n number of pixels
 * @return MO_OK; MO_EFORMAT (a ground truth value that is not a class nor the ignore
 *         index, or a predicted value that is not a class: with name and pixel);
 *         MO_EINVAL. Nothing is counted when a value is refused.
 */
MO_API int mo_seg_eval_add(mo_seg_eval *ev, const uint8_t *gt, const uint8_t *pred, size_t n,
                           int width, const char *name);

/**
 * @brief Count one pair of label PNGs (8-bit palette or grayscale, values are labels).
 * @param ev the evaluator
 * @param gt_png ground truth label PNG
 * @param pred_png predicted label PNG
 * @return MO_OK; MO_EIO; MO_EFORMAT (not a label PNG, sizes differ: both file names and
 *         sizes; bad values); MO_EUNSUPPORTED; MO_ENOMEM
 */
MO_API int mo_seg_eval_add_files(mo_seg_eval *ev, const char *gt_png, const char *pred_png);

/**
 * @brief Declare the image list of a (sharded) evaluation and which of its images this
 *        evaluator counts: those with index i % num_shards == shard.
 *
 * The state file then carries a digest of the list and the images counted, so that
 * mo_seg_eval_load_state() refuses a state of another list or one that counts an image
 * again (the same shard twice), and mo_seg_eval_metrics() refuses a merge where an image of
 * the list is in no state (a missing shard). Without it nothing of the kind is checked.
 * @param ev the evaluator
 * @param ids the image ids in list order (each not NULL)
 * @param n number of ids (1 .. mo_limits.max_images)
 * @param shard this evaluator's shard, 0 .. num_shards - 1
 * @param num_shards number of shards (1: every image)
 * @return MO_OK; MO_EINVAL; MO_EUNSUPPORTED (n over max_images); MO_ENOMEM
 */
MO_API int mo_seg_eval_set_images(mo_seg_eval *ev, const char *const *ids, int n, int shard,
                                  int num_shards);

/** @brief Number of classes. @param ev the evaluator @return the count */
MO_API int mo_seg_eval_num_classes(const mo_seg_eval *ev);
/** @brief The confusion matrix. @param ev the evaluator
 *  @return num_classes^2 counts, row = ground truth, column = prediction; owned by @p ev */
MO_API const uint64_t *mo_seg_eval_confusion(const mo_seg_eval *ev);

/**
 * @brief Metrics of the matrix.
 * @param[out] out metrics
 * @param[out] iou per-class IoU (num_classes values, NaN where row + col == 0), or NULL
 * @param[out] acc per-class accuracy (NaN where the row is empty), or NULL
 * @param ev the evaluator
 * @return MO_OK, MO_EINVAL (also when an image declared with mo_seg_eval_set_images() is
 *         counted by none of the merged states: a missing shard)
 */
MO_API int mo_seg_eval_metrics(const mo_seg_eval *ev, mo_seg_metrics *out, double *iou,
                               double *acc);

/** @brief Save the confusion matrix (and the image list's digest and the images counted,
 *  see mo_seg_eval_set_images()). @param ev the evaluator @param path file to write
 *  @return MO_OK, MO_EINVAL, MO_EIO */
MO_API int mo_seg_eval_save_state(const mo_seg_eval *ev, const char *path);
/** @brief Open an evaluator from a state file.
 *  @param[out] out receives the evaluator; close it with mo_seg_eval_close()
 *  @param path a state file of mo_seg_eval_save_state()
 *  @return MO_OK, MO_EINVAL, MO_EIO, MO_EFORMAT, MO_ENOMEM */
MO_API int mo_seg_eval_open_state(mo_seg_eval **out, const char *path);
/** @brief Add a state file's matrix. @param ev the evaluator
 *  @param path a state file of mo_seg_eval_save_state()
 *  @return MO_OK, MO_EINVAL, MO_EIO, MO_EFORMAT (also a state of an older format
 *          version), MO_EMISMATCH (other classes or ignore index, another image list, or an
 *          image already counted: overlapping shards) */
MO_API int mo_seg_eval_load_state(mo_seg_eval *ev, const char *path);

/* -------------------------------------------------------------------- classification */

/** Largest k counted by ::mo_topk_eval. */
#define MO_TOPK_MAX 10

/** Top-k accuracy counters: `correct[k-1]` = samples whose label is in the top k. */
typedef struct mo_topk_eval {
    uint64_t total;                 /**< samples counted */
    uint64_t correct[MO_TOPK_MAX];  /**< hits within the first k, k = 1..MO_TOPK_MAX */
} mo_topk_eval;

/**
 * @brief Count one sample.
 * @param ranked class indices, best first (@p n of them; only the first MO_TOPK_MAX
 *        are looked at)
 * @param ev the counters
 * @param label the true class
 * @param n number of @p ranked entries (>= 1)
 * @return MO_OK, MO_EINVAL (NULL, n < 1)
 */
MO_API int mo_topk_eval_add(mo_topk_eval *ev, int label, const int *ranked, int n);

/** @brief Accuracy within the top @p k. @param ev the counters @param k 1..MO_TOPK_MAX
 *  @return the fraction, or -1 (no samples, bad k) */
MO_API double mo_topk_eval_accuracy(const mo_topk_eval *ev, int k);

/** @brief Add the counters of @p other into @p ev (shards).
 *  @param ev the counters to add to @param other counters of another shard */
MO_API void mo_topk_eval_merge(mo_topk_eval *ev, const mo_topk_eval *other);

/* ----------------------------------------------------------------------------- plots */

/**
 * @brief Draw precision-recall curves to a PNG (white background, axes, grid, one
 *        coloured polyline per curve, a legend of up to 20 names).
 * @param num_curves curves (>= 1)
 * @param recall `recall[c]` has `n[c]` values (x)
 * @param precision `precision[c]` has `n[c]` values (y); points with y < 0 are skipped
 * @param names `names[c]` legend entries, or NULL
 * @param title title line, or NULL
 * @param path PNG file to write
 * @param n `n[c]` points in curve c
 * @return MO_OK, MO_EINVAL, MO_EIO, MO_ENOMEM
 */
MO_API int mo_eval_plot_pr(const char *path, int num_curves, const double *const *recall,
                           const double *const *precision, const size_t *n,
                           const char *const *names, const char *title);

#ifdef __cplusplus
}
#endif
#endif
