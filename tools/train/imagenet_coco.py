"""ImageNet-1k classes that are COCO animal classes, to veto the detection teacher.

Why this exists: YOLOX-Nano's pseudo-labels on ImageNet images confuse animals (a dog
boxed as "bear" or "cow", foxes and wolves as "bear", lizards as "bird"), and the student
learns those confusions. 1500 of the training images are ImageNet images whose true class
is known, so an animal box of the teacher can be checked against it:
  - the image's class is a COCO animal X (e.g. any of the 118 dog breeds -> dog): a teacher
    box of another COCO animal class is relabelled X;
  - the image's class is an animal COCO does not have (fox, wolf, lizard, fish, ...): the
    teacher's animal boxes become ignore regions (neither object nor background);
  - otherwise (objects, or an animal box that agrees) the box stays as it is.
Indices are ImageNet-1k's (torchvision order); COCO ids are category ids.
"""
import os

COCO_ANIMALS = set(range(16, 26))  # bird cat dog horse sheep cow elephant bear zebra giraffe
LAST_ANIMAL = 397  # ImageNet-1k classes 0..397 are animals, 398.. objects and scenes


def coco_animal(k):
    """COCO category id of ImageNet class k when it is a COCO animal, else None."""
    if 7 <= k <= 24 or 80 <= k <= 100 or 127 <= k <= 146:
        return 16  # birds
    if 151 <= k <= 268:
        return 18  # domestic dog breeds
    if 281 <= k <= 285:
        return 17  # domestic cats
    if 294 <= k <= 297:
        return 23  # bears
    if k == 339:
        return 19  # sorrel (horse)
    if k == 340:
        return 24  # zebra
    if k in (345, 346):
        return 21  # ox, water buffalo (COCO's cow)
    if k in (348, 349):
        return 20  # ram, bighorn (sheep)
    if k in (101, 385, 386):
        return 22  # tusker, Indian / African elephant
    return None


def read_labels(shared):
    """{image file name: ImageNet class} of imagenet-val1300 and imagenet-samples."""
    out = {}
    for d in ("imagenet-val1300", "imagenet-samples"):
        with open(os.path.join(shared, "data", d, "labels.txt")) as f:
            for line in f:
                if line.strip():
                    name, k = line.split()
                    out[name] = int(k)
    return out


def veto(boxes, labels, origins, imagenet_class):
    """(keep mask, new labels, ignore mask) for one record's boxes (see the module comment)."""
    x = coco_animal(imagenet_class)
    keep, new, ignore = [], [], []
    for lab, o in zip(labels, origins):
        teacher_animal = o == "teacher" and lab in COCO_ANIMALS
        if teacher_animal and x is None and imagenet_class <= LAST_ANIMAL:
            keep.append(False), new.append(lab), ignore.append(True)
        else:
            keep.append(True), ignore.append(False)
            new.append(x if teacher_animal and x is not None else lab)
    return keep, new, ignore
