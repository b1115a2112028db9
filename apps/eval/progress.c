#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(progress *p, const char *label, int enabled)
{
    p->label = label;
    p->enabled = enabled < 0 ? isatty(2) : enabled;
    p->start = p->last = now();
    p->shown = 0;
}

static void draw(progress *p, size_t done, size_t total, double t)
{
    const int width = 30;
    double el = t - p->start, rate = el > 0 ? (double)done / el : 0;
    int fill = total ? (int)((double)width * (double)done / (double)total) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    double eta = rate > 0 && total >= done ? (double)(total - done) / rate : 0;
    int es = (int)(eta + 0.5);
    fprintf(stderr, "\r%s [%s] %zu/%zu  %.1f img/s  ETA %d:%02d:%02d ", p->label, bar, done,
            total, rate, es / 3600, es / 60 % 60, es % 60);
    fflush(stderr);
    p->shown = 1;
}

void progress_update(void *pv, size_t done, size_t total)
{
    progress *p = pv;
    if (!p->enabled)
        return;
    double t = now();
    if (t - p->last < 0.1 && done < total)
        return;
    p->last = t;
    draw(p, done, total, t);
}

void progress_end(progress *p, size_t done, size_t total)
{
    if (!p->enabled)
        return;
    draw(p, done, total, now());
    fputc('\n', stderr);
}
