/* clip_tool: test clips for mo-demo --video without the ffmpeg program.
 *
 *   clip_tool write OUT W H FPS_NUM FPS_DEN RAW [--pix-fmt F] [--codec C] [--audio]
 *     encodes the I420 frames of RAW (W x H luma, then U and V of (W+1)/2 x (H+1)/2,
 *     frame after frame; an empty RAW gives a file with no frame) at FPS, frame k at
 *     pts k / FPS; --pix-fmt converts them first (swscale, e.g. yuv444p); --codec
 *     (default ffv1, lossless); --audio adds a silent mono PCM track.
 *   clip_tool probe FILE [RAW_OUT]
 *     prints one JSON object: the streams (type, codec, size, pixel format, frame rate,
 *     time base) and the decoded video frames' timestamps in seconds; RAW_OUT receives
 *     the decoded frames as I420.
 * Exit status 0, 1 on any failure (with a message). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

static int die(const char *what, int e)
{
    char b[AV_ERROR_MAX_STRING_SIZE] = "";
    if (e < 0)
        av_make_error_string(b, sizeof(b), e);
    fprintf(stderr, "clip_tool: %s %s\n", what, b);
    return 1;
}

static int drain(AVCodecContext *c, AVFormatContext *fc, AVStream *st, AVPacket *pkt)
{
    int r;
    while ((r = avcodec_receive_packet(c, pkt)) >= 0) {
        av_packet_rescale_ts(pkt, c->time_base, st->time_base);
        pkt->stream_index = st->index;
        if ((r = av_interleaved_write_frame(fc, pkt)) < 0)
            return r;
    }
    return r == AVERROR(EAGAIN) || r == AVERROR_EOF ? 0 : r;
}

static int write_clip(int argc, char **argv)
{
    if (argc < 8)
        return die("usage: write OUT W H FPS_NUM FPS_DEN RAW [--pix-fmt F] [--codec C] [--audio]", 0);
    const char *out = argv[2], *raw = argv[7], *codec = "ffv1";
    const int w = atoi(argv[3]), h = atoi(argv[4]);
    const AVRational fps = {atoi(argv[5]), atoi(argv[6])};
    enum AVPixelFormat pix = AV_PIX_FMT_YUV420P;
    int audio = 0;
    for (int i = 8; i < argc; i++) {
        if (!strcmp(argv[i], "--pix-fmt") && i + 1 < argc)
            pix = av_get_pix_fmt(argv[++i]);
        else if (!strcmp(argv[i], "--codec") && i + 1 < argc)
            codec = argv[++i];
        else if (!strcmp(argv[i], "--audio"))
            audio = 1;
        else
            return die("unknown option", 0);
    }
    if (w < 1 || h < 1 || fps.num < 1 || fps.den < 1 || pix == AV_PIX_FMT_NONE)
        return die("bad size, rate or pixel format", 0);
    FILE *in = fopen(raw, "rb");
    if (!in)
        return die("cannot read RAW", 0);
    AVFormatContext *fc = NULL;
    int r = avformat_alloc_output_context2(&fc, NULL, NULL, out);
    if (r < 0)
        return die("container", r);
    const AVCodec *vc = avcodec_find_encoder_by_name(codec);
    if (!vc)
        return die("no encoder", 0);
    AVCodecContext *ve = avcodec_alloc_context3(vc);
    ve->width = w;
    ve->height = h;
    ve->pix_fmt = pix;
    ve->time_base = av_inv_q(fps);
    ve->framerate = fps;
    if (fc->oformat->flags & AVFMT_GLOBALHEADER)
        ve->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opt = NULL;
    if (vc->id == AV_CODEC_ID_FFV1) /* FFV1 version 3: slice CRCs, so damage is detected */
        av_dict_set(&opt, "level", "3", 0), av_dict_set(&opt, "slicecrc", "1", 0);
    r = avcodec_open2(ve, vc, &opt);
    av_dict_free(&opt);
    if (r < 0)
        return die("open video encoder", r);
    AVStream *vs = avformat_new_stream(fc, NULL);
    avcodec_parameters_from_context(vs->codecpar, ve);
    vs->time_base = ve->time_base;
    vs->avg_frame_rate = fps;
    AVCodecContext *ae = NULL;
    AVStream *as = NULL;
    if (audio) {
        const AVCodec *acodec = avcodec_find_encoder(AV_CODEC_ID_PCM_S16LE);
        ae = avcodec_alloc_context3(acodec);
        ae->sample_rate = 8000;
        ae->sample_fmt = AV_SAMPLE_FMT_S16;
        av_channel_layout_default(&ae->ch_layout, 1);
        ae->time_base = (AVRational){1, 8000};
        if ((r = avcodec_open2(ae, acodec, NULL)) < 0)
            return die("open audio encoder", r);
        as = avformat_new_stream(fc, NULL);
        avcodec_parameters_from_context(as->codecpar, ae);
        as->time_base = ae->time_base;
    }
    if ((r = avio_open(&fc->pb, out, AVIO_FLAG_WRITE)) < 0)
        return die("create output", r);
    if ((r = avformat_write_header(fc, NULL)) < 0)
        return die("write header", r);
    const int cw = (w + 1) / 2, ch = (h + 1) / 2;
    const size_t fsize = (size_t)w * h + 2 * (size_t)cw * ch;
    uint8_t *buf = malloc(fsize);
    AVFrame *f = av_frame_alloc(), *af = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    f->format = pix;
    f->width = w;
    f->height = h;
    av_frame_get_buffer(f, 0);
    struct SwsContext *sws = NULL;
    if (pix != AV_PIX_FMT_YUV420P)
        sws = sws_getContext(w, h, AV_PIX_FMT_YUV420P, w, h, pix, SWS_BILINEAR, NULL, NULL, NULL);
    const int spf = 8000 * fps.den / fps.num; /* audio samples per video frame */
    int64_t k = 0;
    while (fread(buf, 1, fsize, in) == fsize) {
        const uint8_t *src[3] = {buf, buf + (size_t)w * h, buf + (size_t)w * h + (size_t)cw * ch};
        const int ls[3] = {w, cw, cw};
        av_frame_make_writable(f);
        if (sws) {
            sws_scale(sws, src, ls, 0, h, f->data, f->linesize);
        } else {
            for (int y = 0; y < h; y++)
                memcpy(f->data[0] + (size_t)y * f->linesize[0], src[0] + (size_t)y * w, (size_t)w);
            for (int p = 1; p < 3; p++)
                for (int y = 0; y < ch; y++)
                    memcpy(f->data[p] + (size_t)y * f->linesize[p], src[p] + (size_t)y * cw,
                           (size_t)cw);
        }
        f->pts = k;
        if ((r = avcodec_send_frame(ve, f)) < 0 || (r = drain(ve, fc, vs, pkt)) < 0)
            return die("encode video", r);
        if (ae) {
            av_frame_unref(af);
            af->format = AV_SAMPLE_FMT_S16;
            af->nb_samples = spf;
            af->sample_rate = 8000;
            av_channel_layout_default(&af->ch_layout, 1);
            av_frame_get_buffer(af, 0);
            memset(af->data[0], 0, (size_t)spf * 2);
            af->pts = k * spf;
            if ((r = avcodec_send_frame(ae, af)) < 0 || (r = drain(ae, fc, as, pkt)) < 0)
                return die("encode audio", r);
        }
        k++;
    }
    if ((r = avcodec_send_frame(ve, NULL)) < 0 || (r = drain(ve, fc, vs, pkt)) < 0)
        return die("flush video", r);
    if (ae && ((r = avcodec_send_frame(ae, NULL)) < 0 || (r = drain(ae, fc, as, pkt)) < 0))
        return die("flush audio", r);
    if ((r = av_write_trailer(fc)) < 0)
        return die("trailer", r);
    avio_closep(&fc->pb);
    fclose(in);
    free(buf);
    sws_freeContext(sws);
    av_frame_free(&f);
    av_frame_free(&af);
    av_packet_free(&pkt);
    avcodec_free_context(&ve);
    avcodec_free_context(&ae);
    avformat_free_context(fc);
    printf("%lld frames\n", (long long)k);
    return 0;
}

static int probe(int argc, char **argv)
{
    if (argc < 3)
        return die("usage: probe FILE [RAW_OUT]", 0);
    AVFormatContext *fc = NULL;
    int r = avformat_open_input(&fc, argv[2], NULL, NULL);
    if (r < 0 || (r = avformat_find_stream_info(fc, NULL)) < 0)
        return die("open", r);
    const AVCodec *dc = NULL;
    const int vi = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, &dc, 0);
    if (vi < 0)
        return die("no video stream", vi);
    printf("{\"streams\": [");
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        const AVCodecParameters *cp = st->codecpar;
        printf("%s{\"type\": \"%s\", \"codec\": \"%s\"", i ? ", " : "",
               av_get_media_type_string(cp->codec_type), avcodec_get_name(cp->codec_id));
        if (cp->codec_type == AVMEDIA_TYPE_VIDEO) {
            const char *pf = av_get_pix_fmt_name(cp->format);
            printf(", \"width\": %d, \"height\": %d, \"pix_fmt\": \"%s\", \"fps\": [%d, %d]",
                   cp->width, cp->height, pf ? pf : "none", st->avg_frame_rate.num,
                   st->avg_frame_rate.den);
        }
        printf(", \"time_base\": [%d, %d]}", st->time_base.num, st->time_base.den);
    }
    printf("], \"times\": [");
    AVCodecContext *dec = avcodec_alloc_context3(dc);
    avcodec_parameters_to_context(dec, fc->streams[vi]->codecpar);
    dec->pkt_timebase = fc->streams[vi]->time_base;
    if ((r = avcodec_open2(dec, dc, NULL)) < 0)
        return die("open decoder", r);
    FILE *raw = argc > 3 ? fopen(argv[3], "wb") : NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc(), *c = av_frame_alloc();
    struct SwsContext *sws = NULL;
    const AVRational tb = fc->streams[vi]->time_base;
    int n = 0, eof = 0;
    while (!eof) {
        r = av_read_frame(fc, pkt);
        if (r < 0) {
            eof = 1;
            avcodec_send_packet(dec, NULL);
        } else if (pkt->stream_index != vi) {
            av_packet_unref(pkt);
            continue;
        } else {
            avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
        }
        while (avcodec_receive_frame(dec, f) >= 0) {
            printf("%s%.6f", n++ ? ", " : "", (double)f->best_effort_timestamp * av_q2d(tb));
            if (!raw)
                continue;
            if (!c->data[0]) {
                c->format = AV_PIX_FMT_YUV420P;
                c->width = f->width;
                c->height = f->height;
                av_frame_get_buffer(c, 0);
            }
            sws = sws_getCachedContext(sws, f->width, f->height, f->format, f->width, f->height,
                                       AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
            sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, c->data,
                      c->linesize);
            for (int p = 0; p < 3; p++) {
                const int pw = p ? (f->width + 1) / 2 : f->width, ph = p ? (f->height + 1) / 2 : f->height;
                for (int y = 0; y < ph; y++)
                    fwrite(c->data[p] + (size_t)y * c->linesize[p], 1, (size_t)pw, raw);
            }
        }
    }
    printf("]}\n");
    if (raw)
        fclose(raw);
    sws_freeContext(sws);
    av_frame_free(&f);
    av_frame_free(&c);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fc);
    return 0;
}

int main(int argc, char **argv)
{
    av_log_set_level(AV_LOG_ERROR);
    if (argc > 1 && !strcmp(argv[1], "write"))
        return write_clip(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "probe"))
        return probe(argc, argv);
    return die("usage: clip_tool write|probe ...", 0);
}
