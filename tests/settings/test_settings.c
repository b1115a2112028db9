/* Versioned structs (include/mo/common.h, "Settings structs"): a program built against
 * older headers passes a smaller size. The library must write only the bytes that size
 * covers (defaults, current limits, head info) and read only the fields it covers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mo/backbone.h"
#include "mo/classify.h"
#include "mo/detect.h"
#include "mo/limits.h"
#include "mo/pipeline.h"
#include "mo/segment.h"

#define CANARY 0xA5
enum { ROOM = 512 };

/* Call fill(buf, size) on a canary-filled buffer: nothing past size may change, and the
 * struct's leading size_t must read back as size. */
#define CHECK_FILL(fn, type, size)                                                       \
    do {                                                                                 \
        unsigned char buf[ROOM];                                                         \
        memset(buf, CANARY, sizeof(buf));                                                \
        fn((type *)(void *)buf, (size));                                                 \
        size_t got;                                                                      \
        memcpy(&got, buf, sizeof(got));                                                  \
        assert_int_equal(got, (size));                                                   \
        for (size_t i = (size); i < sizeof(buf); i++)                                    \
            assert_int_equal(buf[i], CANARY);                                            \
    } while (0)

/* An "older" struct: the size field and the first field after it. */
#define OLD_SIZE(type, first) (offsetof(type, first) + sizeof(((type *)0)->first))

static void test_defaults_not_overrun(void **state)
{
    (void)state;
    CHECK_FILL(mo_backbone_default_settings_sized, mo_backbone_settings,
               OLD_SIZE(mo_backbone_settings, prefix));
    CHECK_FILL(mo_session_default_settings_sized, mo_session_settings,
               OLD_SIZE(mo_session_settings, max_height));
    CHECK_FILL(mo_cls_default_settings_sized, mo_cls_settings, OLD_SIZE(mo_cls_settings, resize));
    CHECK_FILL(mo_det_default_settings_sized, mo_det_settings,
               OLD_SIZE(mo_det_settings, score_thresh));
    CHECK_FILL(mo_anchor_config_default_sized, mo_anchor_config,
               OLD_SIZE(mo_anchor_config, num_levels));
    CHECK_FILL(mo_seg_default_settings_sized, mo_seg_settings,
               OLD_SIZE(mo_seg_settings, output_stride));
    CHECK_FILL(mo_pipeline_default_settings_sized, mo_pipeline_settings,
               OLD_SIZE(mo_pipeline_settings, share_backbone));
    CHECK_FILL(mo_pipeline_session_default_settings_sized, mo_pipeline_session_settings,
               OLD_SIZE(mo_pipeline_session_settings, threads));
    CHECK_FILL(mo_limits_default_sized, mo_limits, OLD_SIZE(mo_limits, image_max_side));
    /* the full size through the macros: the struct's sizeof */
    mo_det_settings d;
    memset(&d, 0, sizeof(d));
    mo_det_default_settings(&d);
    assert_int_equal(d.size, sizeof(d));
    assert_int_equal(d.topk_candidates, 300);
    /* NULL and a size that cannot hold `size`: nothing written, no crash */
    mo_cls_default_settings_sized(NULL, sizeof(mo_cls_settings));
    unsigned char tiny[sizeof(size_t)];
    memset(tiny, CANARY, sizeof(tiny));
    mo_cls_default_settings_sized((mo_cls_settings *)(void *)tiny, sizeof(size_t) - 1);
    for (size_t i = 0; i < sizeof(tiny); i++)
        assert_int_equal(tiny[i], CANARY);
}

/* A caller built against newer headers (a larger struct): the library's defaults, then
 * zeros, and the open that reads it refuses the size it does not know. */
static void test_newer_caller(void **state)
{
    (void)state;
    unsigned char buf[sizeof(mo_session_settings) + 16];
    memset(buf, CANARY, sizeof(buf));
    mo_session_default_settings_sized((mo_session_settings *)(void *)buf, sizeof(buf));
    for (size_t i = sizeof(mo_session_settings); i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    mo_limits l;
    mo_limits_default(&l);
    l.size = sizeof(l) + 8;
    assert_int_equal(mo_limits_set(&l), MO_EINVAL);
}

static void test_limits(void **state)
{
    (void)state;
    mo_limits l;
    assert_int_equal(mo_limits_get(&l), MO_OK);
    assert_int_equal(l.size, sizeof(l));
    assert_int_equal(l.image_max_side, 32768);
    /* an older caller: only image_max_side; the rest keep their defaults */
    unsigned char old[ROOM];
    memset(old, CANARY, sizeof(old));
    const size_t osz = OLD_SIZE(mo_limits, image_max_side);
    assert_int_equal(mo_limits_get_sized((mo_limits *)(void *)old, osz), MO_OK);
    for (size_t i = osz; i < sizeof(old); i++)
        assert_int_equal(old[i], CANARY);
    int side = 4096;
    memcpy(old + offsetof(mo_limits, image_max_side), &side, sizeof(side));
    assert_int_equal(mo_limits_set((const mo_limits *)(const void *)old), MO_OK);
    mo_limits now;
    mo_limits_get(&now);
    assert_int_equal(now.image_max_side, 4096);
    assert_int_equal(now.jpeg_max_scans, 100); /* the default, not the canary bytes */
    /* an uninitialised struct (size 0) is refused, the limits unchanged */
    mo_limits zero = {0};
    zero.image_max_side = 7;
    assert_int_equal(mo_limits_set(&zero), MO_EINVAL);
    mo_limits_get(&now);
    assert_int_equal(now.image_max_side, 4096);
    assert_int_equal(mo_limits_set(NULL), MO_OK);
    mo_limits_get(&now);
    assert_int_equal(now.image_max_side, 32768);
    assert_int_equal(mo_limits_get_sized(NULL, sizeof(mo_limits)), MO_EINVAL);
    assert_int_equal(mo_limits_get_sized(&now, sizeof(size_t)), MO_EINVAL);
}

static void test_anchor_config(void **state)
{
    (void)state;
    mo_anchor_config c;
    mo_anchor_config_default(&c);
    assert_int_equal(mo_anchors_per_location(&c, 0), 6);
    /* an older caller that has only num_levels: the default ratios for the rest */
    unsigned char old[ROOM];
    memset(old, CANARY, sizeof(old));
    mo_anchor_config_default_sized((mo_anchor_config *)(void *)old,
                                   OLD_SIZE(mo_anchor_config, num_levels));
    int levels = 3;
    memcpy(old + offsetof(mo_anchor_config, num_levels), &levels, sizeof(levels));
    const mo_anchor_config *oc = (const mo_anchor_config *)(const void *)old;
    assert_int_equal(mo_anchors_per_location(oc, 2), 6);
    assert_int_equal(mo_anchors_per_location(oc, 3), MO_EINVAL); /* 3 levels: 0..2 */
    const int g[3] = {2, 1, 1};
    int n = 0;
    assert_int_equal(mo_anchors_generate(oc, g, g, 64, 64, NULL, 0, &n), MO_EINVAL);
    assert_int_equal(n, 6 * (4 + 1 + 1)); /* counted before the room is checked */
    mo_anchor_config zero = {0};
    assert_int_equal(mo_anchors_per_location(&zero, 0), MO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_not_overrun),
        cmocka_unit_test(test_newer_caller),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_anchor_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
