/**
 * @file mo.h
 * @brief Umbrella header of the MobileOne vision SDK: includes every public header.
 */
#ifndef MO_MO_H
#define MO_MO_H

#include "mo/common.h"
#include "mo/cpu.h"
#include "mo/limits.h"
#include "mo/tensor.h"
#include "mo/file.h"
#include "mo/backbone.h"
#include "mo/classify.h"
#include "mo/segment.h"
#include "mo/detect.h"
#include "mo/image.h"
#include "mo/labels.h"
#include "mo/draw.h"
#include "mo/eval.h"
#include "mo/pipeline.h"

#endif
