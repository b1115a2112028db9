/*
 * JPEG decoding through libjpeg-turbo, configured as Pillow configures it, so that the
 * pixels equal `Image.open(p).convert("RGB")` bit for bit (Debian's Pillow links the
 * same libjpeg-turbo).
 *
 * Why not stb_image: measured against Pillow 9.4 on ../shared/data/imagenet-samples
 * (200 JPEGs) stb_image 2.27 differs on 2.2% of the samples, by up to 3 levels
 * (0.46% by more than 1); on imagenet-val1300, 4.7% differ, up to 3 levels. No image
 * was identical. stb has its own IDCT, chroma upsampling and YCbCr constants; those
 * differences then propagate through resizing. libjpeg-turbo with the default islow
 * IDCT and fancy upsampling gives 0 difference on all 1500 images.
 *
 * Pillow's choices reproduced here:
 * - 1 component: decoded as grayscale, replicated to R = G = B (convert("RGB") of "L").
 * - 3 components: out_color_space JCS_RGB, libjpeg guesses the source colour space from
 *   the JFIF/Adobe markers (Pillow does not override it).
 * - 4 components: decoded as CMYK with Adobe inversion ("CMYK;I"), then Pillow's
 *   cmyk2rgb: R = 255 - K' - (C' * (255 - K') / 255 rounded), see cmyk_to_rgb().
 * - warnings (extraneous bytes, bad Huffman code in data) are ignored, as in Pillow,
 *   except premature end of data, which Pillow reports as a truncated file.
 * libjpeg's default error handler calls exit(); ours longjmp()s back and the call
 * returns MO_EFORMAT (MO_ENOMEM for libjpeg's out-of-memory errors).
 *
 * Decode time grows with the number of scans (a progressive file may repeat its scans
 * without end, each one a pass over the whole coefficient buffer): a progress monitor,
 * called by libjpeg for every row of blocks it reads, stops at more than
 * mo_limits.jpeg_max_scans scans (what djpeg -maxscans does) with MO_EUNSUPPORTED.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "mo_internal/errors.h"
#include "io_internal.h"
#include "mo/limits.h"

typedef struct jerr_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int truncated;
    int too_many_scans; /* the progress monitor stopped the decoder */
} jerr_mgr;

static void on_error_exit(j_common_ptr cinfo)
{
    jerr_mgr *e = (jerr_mgr *)cinfo->err;
    longjmp(e->jb, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level)
{
    jerr_mgr *e = (jerr_mgr *)cinfo->err;
    if (level < 0) { /* warning */
        if (e->pub.msg_code == JWRN_JPEG_EOF)
            e->truncated = 1;
        e->pub.num_warnings++;
    }
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print from a library */
}

/* Pillow's MULDIV255: a * b / 255, rounded (exact for 0..255 operands). */
static inline int muldiv255(int a, int b)
{
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* Pillow decodes CMYK JPEGs with rawmode "CMYK;I" (Adobe stores inverted values), so
 * C = 255 - c_raw etc., then convert("RGB") applies cmyk2rgb:
 * nk = 255 - K = k_raw; R = clip(nk - C * nk / 255). */
static void cmyk_to_rgb(uint8_t *dst, const uint8_t *src, int w)
{
    for (int x = 0; x < w; x++) {
        int nk = src[3];
        for (int c = 0; c < 3; c++) {
            int v = nk - muldiv255(255 - src[c], nk);
            dst[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        src += 4;
        dst += 3;
    }
}

/* Scan counting; `pub` first so libjpeg's pointer converts back to this struct. */
typedef struct scan_monitor {
    struct jpeg_progress_mgr pub;
    int max_scans;
} scan_monitor;

static void on_progress(j_common_ptr cinfo)
{
    const scan_monitor *m = (const scan_monitor *)cinfo->progress;
    if (cinfo->is_decompressor &&
        ((j_decompress_ptr)cinfo)->input_scan_number > m->max_scans) {
        jerr_mgr *e = (jerr_mgr *)cinfo->err;
        e->too_many_scans = 1;
        longjmp(e->jb, 1); /* through the error path: the job is cleaned up as for errors */
    }
}

/* State touched after setjmp() lives here (not in locals) so longjmp() cannot lose it. */
typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    jerr_mgr jerr;
    scan_monitor progress;
    uint8_t *pixels;
    uint8_t *row;
    int created;
} jpeg_job;

static int decode(jpeg_job *job, const mo_io_src *src, mo_image *out)
{
    struct jpeg_decompress_struct *ci = &job->cinfo;
    char msg[JMSG_LENGTH_MAX];

    ci->err = jpeg_std_error(&job->jerr.pub);
    job->jerr.pub.error_exit = on_error_exit;
    job->jerr.pub.emit_message = on_emit_message;
    job->jerr.pub.output_message = on_output_message;

    mo_limits lim;
    mo_limits_get(&lim);
    job->progress.pub.progress_monitor = on_progress;
    job->progress.max_scans = lim.jpeg_max_scans;

    if (setjmp(job->jerr.jb)) {
        if (job->jerr.too_many_scans)
            return mo_fail(MO_EUNSUPPORTED,
                           "%s: JPEG with more than %d scans is over the limit (jpeg_max_scans "
                           "%d)", src->name, job->progress.max_scans, job->progress.max_scans);
        int code = job->jerr.pub.msg_code;
        job->jerr.pub.format_message((j_common_ptr)ci, msg);
        if (code == JERR_OUT_OF_MEMORY)
            return mo_fail(MO_ENOMEM, "%s: out of memory in JPEG decoder (%s)", src->name,
                           msg);
        return mo_fail(MO_EFORMAT, "%s: %s JPEG (%s)", src->name,
                       job->jerr.truncated ? "truncated" : "corrupt", msg);
    }

    jpeg_create_decompress(ci);
    job->created = 1;
    ci->progress = &job->progress.pub;
    /* libjpeg-turbo's jpeg_mem_src takes an unsigned long size. */
    if (src->size > (size_t)(unsigned long)-1)
        return mo_fail(MO_EUNSUPPORTED, "%s: file too large", src->name);
    jpeg_mem_src(ci, src->data, (unsigned long)src->size);
    jpeg_read_header(ci, TRUE);
    if (job->jerr.truncated)
        return mo_fail(MO_EFORMAT, "%s: truncated JPEG header", src->name);

    int err = mo_io_check_size(src->name, ci->image_width, ci->image_height);
    if (err)
        return err;

    int cmyk = 0, gray = 0;
    switch (ci->num_components) {
    case 1:
        ci->out_color_space = JCS_GRAYSCALE;
        gray = 1;
        break;
    case 4:
        ci->out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        ci->out_color_space = JCS_RGB;
        break;
    }
    ci->dct_method = JDCT_ISLOW;
    ci->do_fancy_upsampling = TRUE;
    ci->do_block_smoothing = TRUE; /* libjpeg default (progressive files), kept by Pillow */

    jpeg_start_decompress(ci);
    const int w = (int)ci->output_width, h = (int)ci->output_height;
    if (w != (int)ci->image_width || h != (int)ci->image_height ||
        ci->output_components != (gray ? 1 : cmyk ? 4 : 3))
        return mo_fail(MO_EFORMAT, "%s: unexpected JPEG output layout", src->name);

    size_t stride = (size_t)w * 3;
    job->pixels = malloc(stride * (size_t)h);
    if (!job->pixels)
        return mo_fail(MO_ENOMEM, "%s: out of memory for %dx%d image", src->name, w, h);
    if (gray || cmyk) {
        job->row = malloc((size_t)w * (size_t)ci->output_components);
        if (!job->row)
            return mo_fail(MO_ENOMEM, "%s: out of memory", src->name);
    }

    while (ci->output_scanline < ci->output_height) {
        int y = (int)ci->output_scanline;
        uint8_t *dst = job->pixels + stride * (size_t)y;
        JSAMPROW rows[1] = { (gray || cmyk) ? job->row : dst };
        if (jpeg_read_scanlines(ci, rows, 1) != 1)
            return mo_fail(MO_EFORMAT, "%s: JPEG decoder stalled", src->name);
        if (gray) {
            for (int x = 0; x < w; x++)
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = job->row[x];
        } else if (cmyk) {
            cmyk_to_rgb(dst, job->row, w);
        }
    }
    if (job->jerr.truncated)
        return mo_fail(MO_EFORMAT, "%s: truncated JPEG data", src->name);
    /* Finishing reads up to EOI; trailing junk or a missing EOI is only a warning. */
    jpeg_finish_decompress(ci);

    out->data = job->pixels;
    out->w = w;
    out->h = h;
    job->pixels = NULL;
    return MO_OK;
}

int mo_io_decode_jpeg(const mo_io_src *src, mo_image *out)
{
    jpeg_job *job = calloc(1, sizeof(*job));
    if (!job)
        return mo_fail(MO_ENOMEM, "%s: out of memory", src->name);
    int err = decode(job, src, out);
    if (job->created)
        jpeg_destroy_decompress(&job->cinfo);
    free(job->pixels);
    free(job->row);
    free(job);
    return err;
}

/*
 * JPEG encoding, also through libjpeg-turbo (baseline, 4:2:0, islow DCT, optimized
 * Huffman tables). stb_image_write's JPEG writer was the first choice but it
 * left-shifts negative ints (undefined behaviour that UBSan stops on), and libjpeg is
 * linked anyway.
 */
typedef struct jpeg_enc_job {
    struct jpeg_compress_struct cinfo;
    jerr_mgr jerr;
    int created;
} jpeg_enc_job;

static int encode(jpeg_enc_job *job, const mo_image *img, FILE *f, int quality)
{
    struct jpeg_compress_struct *ci = &job->cinfo;
    ci->err = jpeg_std_error(&job->jerr.pub);
    job->jerr.pub.error_exit = on_error_exit;
    job->jerr.pub.emit_message = on_emit_message;
    job->jerr.pub.output_message = on_output_message;
    if (setjmp(job->jerr.jb))
        return job->jerr.pub.msg_code == JERR_OUT_OF_MEMORY ? MO_ENOMEM : MO_EIO;

    jpeg_create_compress(ci);
    job->created = 1;
    jpeg_stdio_dest(ci, f);
    ci->image_width = (JDIMENSION)img->w;
    ci->image_height = (JDIMENSION)img->h;
    ci->input_components = 3;
    ci->in_color_space = JCS_RGB;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, quality, TRUE);
    ci->optimize_coding = TRUE;
    jpeg_start_compress(ci, TRUE);
    const size_t stride = (size_t)img->w * 3;
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW row[1] = { img->data + stride * ci->next_scanline };
        jpeg_write_scanlines(ci, row, 1);
    }
    jpeg_finish_compress(ci);
    return MO_OK;
}

int mo_io_write_jpeg(const mo_image *img, void *file, int quality)
{
    jpeg_enc_job *job = calloc(1, sizeof(*job));
    if (!job)
        return MO_ENOMEM;
    int err = encode(job, img, file, quality);
    if (job->created)
        jpeg_destroy_compress(&job->cinfo);
    free(job);
    return err;
}
