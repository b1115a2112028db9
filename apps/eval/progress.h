/* Terminal progress bar for mo-eval: images/s and ETA, redrawn at most 10 times a second,
 * on stderr only when it is a terminal. */
#ifndef MO_EVAL_PROGRESS_H
#define MO_EVAL_PROGRESS_H

#include <stddef.h>

typedef struct progress {
    const char *label;
    int enabled;
    double start, last;
    size_t shown;
} progress;

/* enabled: -1 = when stderr is a terminal, 0 = never, 1 = always */
void progress_init(progress *p, const char *label, int enabled);
/* mo_eval_progress_fn-compatible */
void progress_update(void *p, size_t done, size_t total);
/* Draw the final state and end the line. */
void progress_end(progress *p, size_t done, size_t total);

#endif
