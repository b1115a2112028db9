/* FFmpeg glue of mo-demo --video (video.h). Decoded frames reach the pipeline without
 * a copy when they are yuv420p (I420) or nv12 in limited range; anything else (yuvj420p,
 * 4:2:2, 4:4:4, RGB, 10-bit ...) is converted once to limited-range I420 by swscale into
 * a frame allocated at open. The writer converts the RGB composite to the encoder's
 * pixel format (yuv420p when it takes it) with swscale, BT.601 limited range, as the
 * pipeline reads YUV. */
#include "video.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

static char last_error[1024];

static int fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return err;
}

static const char *averr(int e)
{
    static char b[AV_ERROR_MAX_STRING_SIZE];
    return av_make_error_string(b, sizeof(b), e);
}

const char *video_last_error(void) { return last_error; }

/* Decoders conceal much damage (FFV1's slice CRC mismatch, H.264's missing slices) and
 * say so only in their log: FFmpeg's log goes here, silent, and the errors of decoder
 * contexts are counted (the app decodes one stream at a time), with the last message. */
static long decoder_errors;
static char decoder_msg[160];

static void log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_ERROR || !avcl)
        return;
    const AVClass *c = *(const AVClass **)avcl;
    if (!c || (c->get_category ? c->get_category(avcl) : c->category) !=
                  AV_CLASS_CATEGORY_DECODER)
        return;
    char line[160];
    int prefix = 0;
    av_log_format_line2(NULL, level, fmt, vl, line, sizeof(line), &prefix);
    line[strcspn(line, "\n")] = 0;
    if (line[0] && strncmp(line, "at ", 3)) { /* FFV1 logs the time as a line of its own */
        decoder_errors++;
        snprintf(decoder_msg, sizeof(decoder_msg), "%s", line);
    }
}

const char *video_strerror(int err)
{
    switch (err) {
    case VIDEO_OK: return "ok";
    case VIDEO_EOPEN: return "cannot open video";
    case VIDEO_ENOSTREAM: return "no video stream";
    case VIDEO_ECODEC: return "unknown codec";
    case VIDEO_ECORRUPT: return "corrupt video";
    case VIDEO_ETRUNCATED: return "truncated video";
    case VIDEO_EEMPTY: return "video without frames";
    case VIDEO_EWRITE: return "cannot write output";
    case VIDEO_ENOMEM: return "out of memory";
    case VIDEO_EINVAL: return "invalid argument";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------------ reader */

struct video_in {
    const char *path;
    AVFormatContext *fc;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame, *conv; /* decoded; converted to I420 (allocated once) */
    struct SwsContext *sws;
    int stream, eof, draining;
    int64_t frames, skipped; /* frames given, packets that did not decode */
    int64_t last_pts, last_dur;
    int read_error;          /* the demuxer stopped on an error, not at the end */
    AVRational tb;
    double duration, start;  /* of the video stream, seconds (0: unknown) */
    double stated_end;       /* end of the file its container states (0: unknown) */
    double read_end;         /* latest packet end read, any stream */
    double period;           /* frame period, seconds (0: unknown) */
    int64_t damaged;         /* frames the decoder flags or logs as damaged (concealed) */
    long errors_seen;        /* decoder_errors at the last frame */
    int w, h;
};

int video_in_open(video_in **out, const char *path, int threads, video_info *info)
{
    if (!out || !path || !info)
        return fail(VIDEO_EINVAL, "video_in_open: NULL argument");
    *out = NULL;
    memset(info, 0, sizeof(*info));
    av_log_set_callback(log_cb); /* our messages name the problem; FFmpeg's are noise */
    video_in *v = calloc(1, sizeof(*v));
    if (!v)
        return fail(VIDEO_ENOMEM, "%s: out of memory", path);
    v->path = path;
    int r = avformat_open_input(&v->fc, path, NULL, NULL);
    if (r < 0) {
        free(v);
        if (r == AVERROR_EOF) /* a header and nothing after it */
            return fail(VIDEO_EEMPTY, "%s: the file ends before any frame", path);
        return fail(VIDEO_EOPEN, "%s: %s", path,
                    r == AVERROR_INVALIDDATA ? "not a video file FFmpeg reads (corrupt or "
                                               "unknown container)" : averr(r));
    }
    int err = VIDEO_OK;
    if ((r = avformat_find_stream_info(v->fc, NULL)) < 0)
        err = fail(VIDEO_ECORRUPT, "%s: cannot read the stream parameters: %s", path, averr(r));
    const AVCodec *codec = NULL;
    if (!err) {
        r = av_find_best_stream(v->fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
        if (r == AVERROR_DECODER_NOT_FOUND) {
            /* report the first video stream's codec */
            const char *name = "none";
            for (unsigned i = 0; i < v->fc->nb_streams; i++)
                if (v->fc->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
                    const AVCodecParameters *cp = v->fc->streams[i]->codecpar;
                    name = cp->codec_id != AV_CODEC_ID_NONE ? avcodec_get_name(cp->codec_id)
                                                            : "unidentified";
                    break;
                }
            err = fail(VIDEO_ECODEC, "%s: no decoder for its video stream (codec %s)", path,
                       name);
        } else if (r < 0) {
            err = fail(VIDEO_ENOSTREAM, "%s: %u stream(s), none of them video", path,
                       v->fc->nb_streams);
        } else {
            v->stream = r;
        }
    }
    AVStream *st = err ? NULL : v->fc->streams[v->stream];
    if (!err && (st->codecpar->width < 1 || st->codecpar->height < 1))
        err = fail(VIDEO_ECORRUPT, "%s: video stream without a frame size", path);
    if (!err && (st->codecpar->width > MO_MAX_INPUT_SIDE ||
                 st->codecpar->height > MO_MAX_INPUT_SIDE))
        err = fail(VIDEO_EINVAL, "%s: frames of %dx%d, over %d a side", path,
                   st->codecpar->width, st->codecpar->height, MO_MAX_INPUT_SIDE);
    if (!err && (!(v->dec = avcodec_alloc_context3(codec)) || !(v->pkt = av_packet_alloc()) ||
                 !(v->frame = av_frame_alloc()) || !(v->conv = av_frame_alloc())))
        err = fail(VIDEO_ENOMEM, "%s: out of memory", path);
    if (!err && (r = avcodec_parameters_to_context(v->dec, st->codecpar)) < 0)
        err = fail(VIDEO_ECODEC, "%s: codec %s: %s", path, codec->name, averr(r));
    if (!err) {
        v->dec->thread_count = threads;
        /* check the CRCs a stream carries (FFV1 slices ...); damage the decoder conceals
         * is counted through its log (log_cb) */
        v->dec->err_recognition |= AV_EF_CRCCHECK;
        v->dec->pkt_timebase = st->time_base;
        if ((r = avcodec_open2(v->dec, codec, NULL)) < 0)
            err = fail(VIDEO_ECODEC, "%s: cannot open decoder %s: %s", path, codec->name,
                       averr(r));
    }
    if (err) {
        video_in_close(&v);
        return err;
    }
    v->tb = st->time_base;
    v->w = st->codecpar->width;
    v->h = st->codecpar->height;
    v->last_pts = AV_NOPTS_VALUE;
    info->width = v->w;
    info->height = v->h;
    AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate
                                               : av_guess_frame_rate(v->fc, st, NULL);
    info->fps_num = fr.num > 0 && fr.den > 0 ? fr.num : 0;
    info->fps_den = fr.num > 0 && fr.den > 0 ? fr.den : 1;
    info->tb_num = st->time_base.num;
    info->tb_den = st->time_base.den;
    if (st->duration > 0 && st->duration != AV_NOPTS_VALUE)
        v->duration = (double)st->duration * av_q2d(st->time_base);
    else if (v->fc->duration > 0)
        v->duration = (double)v->fc->duration / AV_TIME_BASE;
    v->start = st->start_time != AV_NOPTS_VALUE ? (double)st->start_time * av_q2d(st->time_base)
                                                : 0;
    /* the end the container states, when it is not a guess from the bit rate */
    if (v->fc->duration > 0 && v->fc->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE)
        v->stated_end = (double)v->fc->duration / AV_TIME_BASE +
                        (v->fc->start_time != AV_NOPTS_VALUE
                             ? (double)v->fc->start_time / AV_TIME_BASE : 0);
    info->duration = v->duration;
    v->period = info->fps_num ? (double)info->fps_den / info->fps_num : 0;
    info->frames = st->nb_frames > 0 ? st->nb_frames
                   : v->duration > 0 && info->fps_num
                       ? (int64_t)(v->duration * info->fps_num / info->fps_den + 0.5)
                       : 0;
    snprintf(info->codec, sizeof(info->codec), "%s", codec->name);
    *out = v;
    return VIDEO_OK;
}

/* The decoded frame as an ::mo_frame: a view when the pipeline reads its layout. */
static int frame_view(video_in *v, AVFrame *f, mo_frame *out)
{
    const int limited = f->color_range != AVCOL_RANGE_JPEG;
    if ((f->format == AV_PIX_FMT_YUV420P || f->format == AV_PIX_FMT_NV12) && limited &&
        f->width == v->w && f->height == v->h) {
        *out = (mo_frame){.format = f->format == AV_PIX_FMT_NV12 ? MO_FRAME_NV12 : MO_FRAME_I420,
                          .width = f->width, .height = f->height,
                          .data = {f->data[0], f->data[1], f->data[2]},
                          .stride = {f->linesize[0], f->linesize[1], f->linesize[2]}};
        return VIDEO_OK;
    }
    /* other formats (and a size change mid-stream) to limited-range I420 at the stream
     * size; the context is rebuilt only when the source changes */
    v->sws = sws_getCachedContext(v->sws, f->width, f->height, f->format, v->w, v->h,
                                  AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
    if (!v->sws)
        return fail(VIDEO_ECODEC, "%s: cannot convert pixel format %s", v->path,
                    av_get_pix_fmt_name(f->format));
    const int *coef = sws_getCoefficients(SWS_CS_ITU601);
    sws_setColorspaceDetails(v->sws, coef, !limited || f->format == AV_PIX_FMT_YUVJ420P ||
                                           f->format == AV_PIX_FMT_YUVJ422P ||
                                           f->format == AV_PIX_FMT_YUVJ444P,
                             coef, 0, 0, 1 << 16, 1 << 16);
    if (!v->conv->data[0]) {
        v->conv->format = AV_PIX_FMT_YUV420P;
        v->conv->width = v->w;
        v->conv->height = v->h;
        if (av_frame_get_buffer(v->conv, 0) < 0)
            return fail(VIDEO_ENOMEM, "%s: out of memory", v->path);
    }
    sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
              v->conv->data, v->conv->linesize);
    *out = (mo_frame){.format = MO_FRAME_I420, .width = v->w, .height = v->h,
                      .data = {v->conv->data[0], v->conv->data[1], v->conv->data[2]},
                      .stride = {v->conv->linesize[0], v->conv->linesize[1],
                                 v->conv->linesize[2]}};
    return VIDEO_OK;
}

int video_in_read(video_in *v, mo_frame *frame, int64_t *pts, double *seconds)
{
    if (!v || !frame || !pts || !seconds)
        return fail(VIDEO_EINVAL, "video_in_read: NULL argument");
    for (;;) {
        int r = avcodec_receive_frame(v->dec, v->frame);
        if (r == 0) {
            int64_t t = v->frame->best_effort_timestamp;
            /* timestamps must increase for the encoder: invent one after the last when the
             * stream has none or repeats one */
            if (t == AV_NOPTS_VALUE || (v->last_pts != AV_NOPTS_VALUE && t <= v->last_pts))
                t = v->last_pts == AV_NOPTS_VALUE ? 0 : v->last_pts + (v->last_dur > 0 ? v->last_dur : 1);
            v->last_dur = v->frame->pkt_duration;
            v->last_pts = t;
            /* concealed errors: the frame is still given, the damage reported at the end */
            if ((v->frame->flags & AV_FRAME_FLAG_CORRUPT) || v->frame->decode_error_flags ||
                decoder_errors != v->errors_seen)
                v->damaged++;
            v->errors_seen = decoder_errors;
            if ((r = frame_view(v, v->frame, frame)))
                return r;
            *pts = t;
            *seconds = (double)t * av_q2d(v->tb);
            v->frames++;
            return 1;
        }
        if (r == AVERROR_EOF)
            return 0;
        if (r != AVERROR(EAGAIN)) {
            /* a frame that does not decode: skipped, counted */
            v->skipped++;
            if (r == AVERROR(ENOMEM))
                return fail(VIDEO_ENOMEM, "%s: out of memory", v->path);
            continue;
        }
        if (v->draining)
            return 0;
        /* the decoder wants input */
        for (;;) {
            r = av_read_frame(v->fc, v->pkt);
            if (r < 0) {
                if (r != AVERROR_EOF)
                    v->read_error = 1;
                v->draining = 1;
                avcodec_send_packet(v->dec, NULL);
                break;
            }
            /* how far the file goes, over every stream (audio may outlast the video) */
            const int64_t pt = v->pkt->pts != AV_NOPTS_VALUE ? v->pkt->pts : v->pkt->dts;
            if (pt != AV_NOPTS_VALUE) {
                double e = (double)(pt + v->pkt->duration) *
                           av_q2d(v->fc->streams[v->pkt->stream_index]->time_base);
                if (!v->pkt->duration && v->pkt->stream_index == v->stream)
                    e += v->period;
                v->read_end = e > v->read_end ? e : v->read_end;
            }
            if (v->pkt->stream_index != v->stream) {
                av_packet_unref(v->pkt); /* audio and other streams are dropped */
                continue;
            }
            r = avcodec_send_packet(v->dec, v->pkt);
            av_packet_unref(v->pkt);
            if (r < 0 && r != AVERROR(EAGAIN))
                v->skipped++;
            break;
        }
    }
}

int video_in_close(video_in **pv)
{
    if (!pv || !*pv)
        return VIDEO_OK;
    video_in *v = *pv;
    int err = VIDEO_OK;
    if (v->dec && avcodec_is_open(v->dec)) {
        /* truncated: the demuxer failed, or the packets (of all streams) stop before the
         * end the container states by more than half a frame (or 20 ms) */
        const double slack = v->period > 0 ? 0.5 * v->period : 0.02;
        if (v->frames == 0)
            err = fail(VIDEO_EEMPTY, "%s: %s", v->path,
                       v->skipped ? "no frame decodes (corrupt data)" : "no video frame");
        else if (v->read_error)
            err = fail(VIDEO_ETRUNCATED, "%s: the data stops at %.3f s (read error)", v->path,
                       v->read_end);
        else if (v->stated_end > 0 && v->read_end + slack < v->stated_end)
            err = fail(VIDEO_ETRUNCATED, "%s: the data stops at %.3f s, the file states %.3f s",
                       v->path, v->read_end, v->stated_end);
        else if (v->skipped || v->damaged)
            err = fail(VIDEO_ECORRUPT, "%s: %lld packet(s) did not decode, %lld frame(s) "
                       "decoded with damage (decoder: %s)", v->path, (long long)v->skipped,
                       (long long)v->damaged, decoder_msg[0] ? decoder_msg : "-");
    }
    sws_freeContext(v->sws);
    av_frame_free(&v->frame);
    av_frame_free(&v->conv);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fc);
    free(v);
    *pv = NULL;
    return err;
}

/* ------------------------------------------------------------------ writer */

struct video_out {
    const char *path;
    AVFormatContext *fc;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    AVRational in_tb;
    int header, w, h;
    int64_t last_pts;
};

/* yuv420p when the encoder takes it (what players expect), else its best match for RGB */
static enum AVPixelFormat pick_pix_fmt(const AVCodec *c)
{
    if (!c->pix_fmts)
        return AV_PIX_FMT_YUV420P;
    for (const enum AVPixelFormat *p = c->pix_fmts; *p != AV_PIX_FMT_NONE; p++)
        if (*p == AV_PIX_FMT_YUV420P)
            return *p;
    return avcodec_find_best_pix_fmt_of_list(c->pix_fmts, AV_PIX_FMT_RGB24, 0, NULL);
}

/* Open encoder @c for the stream; 0 or an AVERROR. */
static int try_encoder(video_out *v, const AVCodec *c, const video_info *in, int threads)
{
    if (avformat_query_codec(v->fc->oformat, c->id, FF_COMPLIANCE_NORMAL) == 0)
        return AVERROR(EINVAL); /* the container cannot hold it */
    AVCodecContext *e = avcodec_alloc_context3(c);
    if (!e)
        return AVERROR(ENOMEM);
    e->width = v->w;
    e->height = v->h;
    e->pix_fmt = pick_pix_fmt(c);
    e->color_range = AVCOL_RANGE_MPEG;
    e->colorspace = AVCOL_SPC_SMPTE170M; /* BT.601, what the RGB -> YUV conversion uses */
    e->thread_count = threads;
    AVRational fr = {in->fps_num, in->fps_den};
    if (fr.num > 0)
        e->framerate = fr;
    /* The input time base keeps every timestamp, in containers that store them per
     * frame (variable frame rate: Matroska, WebM, MPEG-TS ...; and MP4/MOV, which do
     * without that flag). Others (AVI) count frames: there the frame period, else a
     * 1000 fps time base reads as 1000 fps. MPEG-4 part 2 allows 16-bit ones only. */
    const char *fmt = v->fc->oformat->name;
    const int exact = (v->fc->oformat->flags & AVFMT_VARIABLE_FPS) || strstr(fmt, "mp4") ||
                      strstr(fmt, "mov") || strstr(fmt, "3gp");
    e->time_base = v->in_tb;
    if (fr.num > 0 && (!exact || (c->id == AV_CODEC_ID_MPEG4 && e->time_base.den > 65535)))
        e->time_base = av_inv_q(fr);
    else if (c->id == AV_CODEC_ID_MPEG4 && e->time_base.den > 65535)
        e->time_base = (AVRational){1, 1000};
    if (v->fc->oformat->flags & AVFMT_GLOBALHEADER)
        e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(e, c, NULL);
    if (r < 0) {
        avcodec_free_context(&e);
        return r;
    }
    v->enc = e;
    return 0;
}

int video_out_open(video_out **out, const char *path, const char *codec, const video_info *in,
                   int threads)
{
    if (!out || !path || !in || in->width < 1 || in->height < 1 || in->tb_num < 1 ||
        in->tb_den < 1)
        return fail(VIDEO_EINVAL, "video_out_open: bad argument");
    *out = NULL;
    video_out *v = calloc(1, sizeof(*v));
    if (!v)
        return fail(VIDEO_ENOMEM, "%s: out of memory", path);
    v->path = path;
    v->w = in->width;
    v->h = in->height;
    v->in_tb = (AVRational){in->tb_num, in->tb_den};
    v->last_pts = AV_NOPTS_VALUE;
    int err = VIDEO_OK, r = avformat_alloc_output_context2(&v->fc, NULL, NULL, path);
    if (r < 0 || !v->fc) {
        free(v);
        return fail(VIDEO_EWRITE, "%s: no container format for this file name (use .mp4, "
                                  ".mkv, .avi ...)", path);
    }
    if (codec) {
        const AVCodec *c = avcodec_find_encoder_by_name(codec);
        if (!c || c->type != AVMEDIA_TYPE_VIDEO)
            err = fail(VIDEO_ECODEC, "no video encoder named '%s'", codec);
        else if ((r = try_encoder(v, c, in, threads)) < 0)
            err = fail(VIDEO_ECODEC, "%s: encoder %s cannot encode this stream in this "
                       "container: %s", path, codec, averr(r));
    } else {
        /* H.264 (libx264 first), then MPEG-4 part 2, then the container's default */
        const AVCodec *cands[4] = {avcodec_find_encoder_by_name("libx264"),
                                   avcodec_find_encoder(AV_CODEC_ID_H264),
                                   avcodec_find_encoder(AV_CODEC_ID_MPEG4),
                                   avcodec_find_encoder(v->fc->oformat->video_codec)};
        for (int i = 0; i < 4 && !v->enc; i++)
            if (cands[i])
                try_encoder(v, cands[i], in, threads);
        if (!v->enc)
            err = fail(VIDEO_ECODEC, "%s: no video encoder works for this container", path);
    }
    if (!err && (!(v->st = avformat_new_stream(v->fc, NULL)) || !(v->frame = av_frame_alloc()) ||
                 !(v->pkt = av_packet_alloc())))
        err = fail(VIDEO_ENOMEM, "%s: out of memory", path);
    if (!err) {
        avcodec_parameters_from_context(v->st->codecpar, v->enc);
        v->st->time_base = v->enc->time_base;
        if (in->fps_num > 0)
            v->st->avg_frame_rate = v->st->r_frame_rate = (AVRational){in->fps_num, in->fps_den};
        v->frame->format = v->enc->pix_fmt;
        v->frame->width = v->w;
        v->frame->height = v->h;
        if (av_frame_get_buffer(v->frame, 0) < 0)
            err = fail(VIDEO_ENOMEM, "%s: out of memory", path);
    }
    if (!err && !(v->sws = sws_getContext(v->w, v->h, AV_PIX_FMT_RGB24, v->w, v->h,
                                          v->enc->pix_fmt, SWS_BILINEAR, NULL, NULL, NULL)))
        err = fail(VIDEO_ECODEC, "%s: no conversion from RGB to %s", path,
                   av_get_pix_fmt_name(v->enc->pix_fmt));
    if (!err) {
        const int *coef = sws_getCoefficients(SWS_CS_ITU601);
        sws_setColorspaceDetails(v->sws, coef, 1, coef, 0, 0, 1 << 16, 1 << 16);
    }
    if (!err && !(v->fc->oformat->flags & AVFMT_NOFILE) &&
        (r = avio_open(&v->fc->pb, path, AVIO_FLAG_WRITE)) < 0)
        err = fail(VIDEO_EWRITE, "%s: cannot create the file: %s", path, averr(r));
    if (!err) {
        if ((r = avformat_write_header(v->fc, NULL)) < 0)
            err = fail(VIDEO_EWRITE, "%s: cannot write the header: %s", path, averr(r));
        else
            v->header = 1;
    }
    if (err) {
        video_out_close(&v, 0);
        return err;
    }
    *out = v;
    return VIDEO_OK;
}

const char *video_out_codec(const video_out *v)
{
    return v && v->enc ? v->enc->codec->name : "";
}

/* Send a frame (NULL: flush) and write every packet the encoder gives back. */
static int encode(video_out *v, AVFrame *f)
{
    int r = avcodec_send_frame(v->enc, f);
    if (r < 0)
        return fail(VIDEO_EWRITE, "%s: encoder %s: %s", v->path, v->enc->codec->name, averr(r));
    for (;;) {
        r = avcodec_receive_packet(v->enc, v->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return VIDEO_OK;
        if (r < 0)
            return fail(VIDEO_EWRITE, "%s: encoder %s: %s", v->path, v->enc->codec->name,
                        averr(r));
        if (v->pkt->duration <= 0 && v->enc->framerate.num > 0)
            v->pkt->duration = av_rescale_q(1, av_inv_q(v->enc->framerate), v->enc->time_base);
        av_packet_rescale_ts(v->pkt, v->enc->time_base, v->st->time_base);
        v->pkt->stream_index = v->st->index;
        r = av_interleaved_write_frame(v->fc, v->pkt);
        if (r < 0)
            return fail(VIDEO_EWRITE, "%s: %s", v->path, averr(r));
    }
}

int video_out_write(video_out *v, const uint8_t *rgb, ptrdiff_t stride, int64_t pts)
{
    if (!v || !rgb || stride < 3 * (ptrdiff_t)v->w)
        return fail(VIDEO_EINVAL, "video_out_write: bad argument");
    int64_t t = av_rescale_q(pts, v->in_tb, v->enc->time_base);
    if (v->last_pts != AV_NOPTS_VALUE && t <= v->last_pts)
        t = v->last_pts + 1; /* a coarser output time base merged two timestamps */
    v->last_pts = t;
    if (av_frame_make_writable(v->frame) < 0)
        return fail(VIDEO_ENOMEM, "%s: out of memory", v->path);
    const int ls = (int)stride;
    sws_scale(v->sws, &rgb, &ls, 0, v->h, v->frame->data, v->frame->linesize);
    v->frame->pts = t;
    return encode(v, v->frame);
}

int video_out_close(video_out **pv, int finish)
{
    if (!pv || !*pv)
        return VIDEO_OK;
    video_out *v = *pv;
    int err = VIDEO_OK;
    if (finish && v->header) {
        err = encode(v, NULL);
        int r = av_write_trailer(v->fc);
        if (!err && r < 0)
            err = fail(VIDEO_EWRITE, "%s: cannot finish the file: %s", v->path, averr(r));
    }
    if (v->fc && !(v->fc->oformat->flags & AVFMT_NOFILE) && v->fc->pb) {
        if (avio_closep(&v->fc->pb) < 0 && !err && finish)
            err = fail(VIDEO_EWRITE, "%s: cannot close the file", v->path);
        if (!finish || err)
            unlink(v->path);
    }
    sws_freeContext(v->sws);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->enc);
    avformat_free_context(v->fc);
    free(v);
    *pv = NULL;
    return err;
}
