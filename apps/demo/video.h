/* Video in and out for mo-demo through FFmpeg (libavformat, libavcodec, libswscale):
 * decoded frames as ::mo_frame views (I420 or NV12, other pixel formats converted to
 * I420 by swscale), RGB pictures encoded with their input timestamps. Built only with
 * the meson feature `video`. Every call returns VIDEO_OK or a negative VIDEO_E* code and
 * leaves a message naming the file and the problem in video_last_error(). */
#ifndef MO_DEMO_VIDEO_H
#define MO_DEMO_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "mo/pipeline.h"

enum {
    VIDEO_OK = 0,
    VIDEO_EOPEN = -1,      /* input missing, unreadable or not a container FFmpeg knows */
    VIDEO_ENOSTREAM = -2,  /* no video stream */
    VIDEO_ECODEC = -3,     /* unknown codec: no decoder for the input, or no such encoder */
    VIDEO_ECORRUPT = -4,   /* data that does not decode */
    VIDEO_ETRUNCATED = -5, /* the file ends before the end its container states */
    VIDEO_EEMPTY = -6,     /* a video stream without a single frame */
    VIDEO_EWRITE = -7,     /* output cannot be created or written (or no container fits) */
    VIDEO_ENOMEM = -8,
    VIDEO_EINVAL = -9      /* bad argument, or frame size the SDK does not accept */
};

/* Short name of a VIDEO_E* code ("corrupt video", ...). */
const char *video_strerror(int err);
/* Detail of the last failure (file, stream, FFmpeg's message). */
const char *video_last_error(void);

typedef struct video_info {
    int width, height;    /* of the video stream */
    int fps_num, fps_den; /* frame rate (average, else FFmpeg's guess); 0/1 when unknown */
    int tb_num, tb_den;   /* time base of the stream's timestamps */
    int64_t frames;       /* frame count the container states, else estimated; 0: unknown */
    double duration;      /* seconds the container states; 0: unknown */
    char codec[32];       /* decoder name */
} video_info;

typedef struct video_in video_in;

/* Open @path and its best video stream; decoder with @threads threads (0: FFmpeg's
 * choice). */
int video_in_open(video_in **out, const char *path, int threads, video_info *info);
/* Next frame in display order: 1 and *frame (valid until the next call), its timestamp
 * in the stream time base and in seconds; 0 at the end; < 0 on an error that stops the
 * stream. Undecodable packets are skipped and counted (video_in_close() reports them). */
int video_in_read(video_in *v, mo_frame *frame, int64_t *pts, double *seconds);
/* Free the reader and set *v = NULL. Returns VIDEO_OK, or VIDEO_ECORRUPT when packets
 * were skipped, VIDEO_ETRUNCATED when the last frame ends before the stated duration,
 * VIDEO_EEMPTY when no frame came out. */
int video_in_close(video_in **v);

typedef struct video_out video_out;

/* Create @path (container from its extension) for frames of @in's size, frame rate and
 * time base. @codec NULL: H.264 when an encoder exists, else MPEG-4 part 2, else the
 * container's default (the first that opens); else that encoder by name. */
int video_out_open(video_out **out, const char *path, const char *codec, const video_info *in,
                   int threads);
/* Encoder name, for messages. */
const char *video_out_codec(const video_out *v);
/* Encode one packed RGB8 picture of the stream's size with timestamp @pts (input time
 * base); timestamps must increase. */
int video_out_write(video_out *v, const uint8_t *rgb, ptrdiff_t stride, int64_t pts);
/* Flush the encoder and finish the file (@finish = 1) or drop it (0: closed and
 * removed); free and set *v = NULL. */
int video_out_close(video_out **v, int finish);

#endif
