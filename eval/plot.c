/* Precision-recall plots as PNG: axes, grid, tick labels, one polyline per curve and a
 * legend, drawn into an RGB buffer with a built-in 5x7 font (upper case, digits and some
 * punctuation; lower case is drawn as upper case). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "mo/image.h"

enum { W = 900, H = 640, LEFT = 70, RIGHT = 250, TOP = 50, BOTTOM = 60 };

/* Rows top to bottom, 5 columns each ('#' = ink). */
static const struct glyph {
    char c;
    const char *rows[7];
} font[] = {
    { '0', { " ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### " } },
    { '1', { "  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### " } },
    { '2', { " ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####" } },
    { '3', { "#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### " } },
    { '4', { "   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # " } },
    { '5', { "#####", "#    ", "#### ", "    #", "    #", "#   #", " ### " } },
    { '6', { "  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### " } },
    { '7', { "#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   " } },
    { '8', { " ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### " } },
    { '9', { " ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  " } },
    { 'A', { " ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #" } },
    { 'B', { "#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### " } },
    { 'C', { " ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### " } },
    { 'D', { "#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### " } },
    { 'E', { "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####" } },
    { 'F', { "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    " } },
    { 'G', { " ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####" } },
    { 'H', { "#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #" } },
    { 'I', { " ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### " } },
    { 'J', { "  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  " } },
    { 'K', { "#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #" } },
    { 'L', { "#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####" } },
    { 'M', { "#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #" } },
    { 'N', { "#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #" } },
    { 'O', { " ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### " } },
    { 'P', { "#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    " } },
    { 'Q', { " ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #" } },
    { 'R', { "#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #" } },
    { 'S', { " ####", "#    ", "#    ", " ### ", "    #", "    #", "#### " } },
    { 'T', { "#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  " } },
    { 'U', { "#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### " } },
    { 'V', { "#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  " } },
    { 'W', { "#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # " } },
    { 'X', { "#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #" } },
    { 'Y', { "#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  " } },
    { 'Z', { "#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####" } },
    { '.', { "     ", "     ", "     ", "     ", "     ", " ##  ", " ##  " } },
    { ',', { "     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   " } },
    { ':', { "     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     " } },
    { '-', { "     ", "     ", "     ", "#####", "     ", "     ", "     " } },
    { '_', { "     ", "     ", "     ", "     ", "     ", "     ", "#####" } },
    { '=', { "     ", "     ", "#####", "     ", "#####", "     ", "     " } },
    { '(', { "   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # " } },
    { ')', { " #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   " } },
    { '/', { "     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     " } },
    { '%', { "##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##" } },
    { '+', { "     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     " } },
    { '\'', { "  #  ", "  #  ", " #   ", "     ", "     ", "     ", "     " } },
};

typedef struct canvas {
    uint8_t *px;
} canvas;

static void put(canvas *c, int x, int y, const uint8_t rgb[3])
{
    if (x < 0 || y < 0 || x >= W || y >= H)
        return;
    memcpy(c->px + ((size_t)y * W + (size_t)x) * 3, rgb, 3);
}

static void text(canvas *c, int x, int y, const char *s, const uint8_t rgb[3])
{
    for (; *s; s++, x += 6) {
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        for (size_t g = 0; g < sizeof(font) / sizeof(font[0]); g++) {
            if (font[g].c != ch)
                continue;
            for (int r = 0; r < 7; r++)
                for (int k = 0; k < 5; k++)
                    if (font[g].rows[r][k] == '#')
                        put(c, x + k, y + r, rgb);
            break;
        }
    }
}

static void line(canvas *c, double x0, double y0, double x1, double y1, const uint8_t rgb[3],
                 int thick)
{
    double dx = x1 - x0, dy = y1 - y0;
    int steps = (int)(fmax(fabs(dx), fabs(dy)) * 2) + 1;
    for (int i = 0; i <= steps; i++) {
        double x = x0 + dx * i / steps, y = y0 + dy * i / steps;
        for (int a = 0; a < thick; a++)
            for (int b = 0; b < thick; b++)
                put(c, (int)lround(x) + a - thick / 2, (int)lround(y) + b - thick / 2, rgb);
    }
}

static void color(int i, uint8_t rgb[3])
{
    static const uint8_t pal[10][3] = { { 31, 119, 180 }, { 255, 127, 14 }, { 44, 160, 44 },
                                        { 214, 39, 40 },  { 148, 103, 189 }, { 140, 86, 75 },
                                        { 227, 119, 194 }, { 127, 127, 127 }, { 188, 189, 34 },
                                        { 23, 190, 207 } };
    memcpy(rgb, pal[i % 10], 3);
    if (i >= 10) { /* darker on the second round */
        for (int k = 0; k < 3; k++)
            rgb[k] = (uint8_t)(rgb[k] * 2 / 3);
    }
}

int mo_eval_plot_pr(const char *path, int num_curves, const double *const *recall,
                    const double *const *precision, const size_t *n, const char *const *names,
                    const char *title)
{
    validate_input_or_ret(path != NULL && num_curves >= 1 && recall != NULL &&
                              precision != NULL && n != NULL,
                          MO_EINVAL);
    for (int i = 0; i < num_curves; i++)
        validate_input_or_ret(n[i] == 0 || (recall[i] != NULL && precision[i] != NULL),
                              MO_EINVAL);
    mo_image img;
    int ret = mo_image_alloc(&img, W, H);
    if (ret)
        return ret;
    canvas c = { img.data };
    memset(img.data, 255, (size_t)W * H * 3);
    const uint8_t black[3] = { 0, 0, 0 }, grid[3] = { 225, 225, 225 };
    const int pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
#define PX(v) (LEFT + (v) * pw)
#define PY(v) (TOP + (1 - (v)) * ph)
    for (int i = 0; i <= 10; i++) {
        double v = i / 10.0;
        line(&c, PX(v), PY(0), PX(v), PY(1), grid, 1);
        line(&c, PX(0), PY(v), PX(1), PY(v), grid, 1);
        char lab[8];
        snprintf(lab, sizeof(lab), "%.1f", v);
        text(&c, (int)PX(v) - 9, (int)PY(0) + 8, lab, black);
        text(&c, LEFT - 26, (int)PY(v) - 3, lab, black);
    }
    line(&c, PX(0), PY(0), PX(1), PY(0), black, 1);
    line(&c, PX(0), PY(0), PX(0), PY(1), black, 1);
    line(&c, PX(1), PY(0), PX(1), PY(1), black, 1);
    line(&c, PX(0), PY(1), PX(1), PY(1), black, 1);
    text(&c, LEFT + pw / 2 - 18, H - BOTTOM + 28, "RECALL", black);
    text(&c, LEFT - 26, TOP - 14, "PRECISION", black);
    if (title)
        text(&c, LEFT, TOP - 32, title, black);
    for (int i = 0; i < num_curves; i++) {
        uint8_t rgb[3];
        color(i, rgb);
        int have = 0;
        double px = 0, py = 0;
        for (size_t j = 0; j < n[i]; j++) {
            double x = recall[i][j], y = precision[i][j];
            if (!(y >= 0) || !(x >= 0)) {
                have = 0;
                continue;
            }
            x = fmin(x, 1);
            y = fmin(y, 1);
            if (have)
                line(&c, PX(px), PY(py), PX(x), PY(y), rgb, 2);
            else
                line(&c, PX(x), PY(y), PX(x), PY(y), rgb, 2);
            px = x;
            py = y;
            have = 1;
        }
        if (names && names[i] && i < 40) {
            int ly = TOP + 4 + i * 14;
            line(&c, W - RIGHT + 16, ly + 3, W - RIGHT + 36, ly + 3, rgb, 3);
            char nm[32];
            snprintf(nm, sizeof(nm), "%s", names[i]);
            text(&c, W - RIGHT + 42, ly, nm, black);
        }
    }
    ret = mo_image_save_png(&img, path);
    mo_image_free(&img);
    return ret;
}
