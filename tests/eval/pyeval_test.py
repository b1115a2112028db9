#!/usr/bin/env python3
"""The mo_eval Python package (python/mo_eval) against the C tool and pycocotools.

  --mode tool         on the fixtures of make_coco_fixtures.py (coco-mini val2017): the
                      12 stats equal `mo-eval coco --json` bit for bit, for every input
                      form (paths, dicts, lists of dicts, N x 7 arrays, objects with
                      .dataset); summarize() prints mo-eval's 12 lines; per-category AP of
                      eval['precision'] = the tool's (|d| <= 1e-12); params.imgIds equals
                      a ground truth cut to those images (arrays bit-identical).
  then, when pycocotools is there:
                      stats, eval['precision'], eval['recall'], eval['scores'] equal
                      pycocotools' (bit for bit) on every fixture, and with params subsets
                      (imgIds, catIds with an unknown id, iouThrs, recThrs, areaRng,
                      maxDets). pycocotools is found by import or in $PYCOCOTOOLS_DIR (the
                      folder holding pycocotools/, see tools/coco_reference.py); when it
                      is not, that part is skipped with a message (the rest still runs).
  --mode errors       bad input raises a Python exception carrying libmo_eval's message
                      (each case in its own interpreter: a crash fails the test);
                      unsupported params raise NotImplementedError.
Exit 77 (skip) with a reason when numpy, the shared data or pycocotools is absent.
The package is found through PYTHONPATH and libmo_eval through MO_EVAL_LIB (meson sets both).
"""
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
GT_REL = "coco-mini/annotations/instances_val2017.json"
FIXTURES = ["random", "perturbed", "duplicates", "crowd", "ties", "categories", "many",
            "sizes", "perfect"]


def quiet(f, *args):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        r = f(*args)
    return r, out.getvalue()


def run_mo(mo_eval, gt, dt, setup=None):
    E = mo_eval.COCOeval(gt, dt, "bbox")
    if setup:
        setup(E.params)
    _, text = quiet(lambda: (E.evaluate(), E.accumulate(), E.summarize()))
    return E, text


def fixtures(a):
    gt = os.path.join(a.shared, "data", GT_REL)
    if not os.path.exists(gt):
        print("SKIP: %s is absent (shared data, see README)" % gt)
        sys.exit(77)
    fx = os.path.join(a.work, "fixtures")
    subprocess.run([sys.executable, os.path.join(HERE, "make_coco_fixtures.py"), "--gt", gt,
                    "--out", fx], check=True)
    return gt, fx


def cut_to_images(gt_dict, dets, ids):
    ids = set(ids)
    g = dict(gt_dict)
    g["images"] = [im for im in gt_dict["images"] if im["id"] in ids]
    g["annotations"] = [an for an in gt_dict["annotations"] if an["image_id"] in ids]
    return g, [d for d in dets if d["image_id"] in ids]


# ---------------------------------------------------------------------------- tool

def mode_tool(a, np, mo_eval):
    gt, fx = fixtures(a)
    with open(gt) as f:
        gt_dict = json.load(f)
    failed, worst_cat = [], 0.0
    ds = types.SimpleNamespace(dataset=gt_dict)  # what pycocotools' COCO offers
    for name in FIXTURES:
        res = os.path.join(fx, name + ".json")
        out = os.path.join(a.work, name + ".tool.json")
        p = subprocess.run([a.mo_eval, "coco", "--gt", gt, "--results", res, "--json", out,
                            "--no-progress"], capture_output=True, text=True)
        if p.returncode:
            failed.append("%s: mo-eval failed: %s" % (name, p.stderr.strip()))
            continue
        with open(out) as f:
            tool = json.load(f)
        tool_lines = [l for l in p.stdout.splitlines() if l.startswith(" Average")]
        with open(res) as f:
            dets = json.load(f)
        arr = np.array([[d["image_id"], *d["bbox"], d["score"], d["category_id"]]
                        for d in dets], dtype=np.float64).reshape(-1, 7)
        forms = [("paths", gt, res), ("dict+list", gt_dict, dets), (".dataset+array", ds, arr),
                 ("COCO+loadRes", mo_eval.COCO(gt), mo_eval.COCO(gt).loadRes(dets))]
        for form, g, d in forms:
            E, text = run_mo(mo_eval, g, d)
            lines = [l for l in text.splitlines() if l.startswith(" Average")]
            if list(map(float, E.stats)) != tool["stats"]:
                failed.append("%s (%s): stats %s != mo-eval %s" % (name, form, list(E.stats),
                                                                  tool["stats"]))
            if lines != tool_lines:
                failed.append("%s (%s): summary lines differ from mo-eval's" % (name, form))
        # Per-category AP from the precision array = the tool's (C mo_coco_eval_category_ap).
        prec = E.eval["precision"]
        if prec.shape != (10, 101, len(tool["categories"]), 4, 3):
            failed.append("%s: precision shape %s" % (name, prec.shape))
            continue
        for k, c in enumerate(tool["categories"]):
            for key, s in (("AP", prec[:, :, k, 0, 2]), ("AP50", prec[0, :, k, 0, 2]),
                           ("AP75", prec[5, :, k, 0, 2])):
                v = s[s > -1]
                ap = float(np.mean(v)) if v.size else -1.0
                worst_cat = max(worst_cat, abs(ap - c[key]))
        print("%-11s stats = mo-eval's (4 input forms), summary text equal" % name)
    if worst_cat > 1e-12:
        failed.append("per-category AP differs from mo-eval's by %.3g" % worst_cat)
    print("max |per-category AP(eval['precision']) - mo-eval| = %.3g" % worst_cat)

    # params.imgIds: the same as a ground truth holding only those images.
    res = os.path.join(fx, "perturbed.json")
    with open(res) as f:
        dets = json.load(f)
    ids = sorted(im["id"] for im in gt_dict["images"])
    pick = ids[::3] + [987654321]  # an id the ground truth lacks selects nothing
    E, _ = run_mo(mo_eval, gt, res, lambda p: setattr(p, "imgIds", pick))
    W, _ = run_mo(mo_eval, *cut_to_images(gt_dict, dets, pick))
    F, _ = run_mo(mo_eval, gt, res)
    same = all(np.array_equal(E.eval[k], W.eval[k]) for k in ("precision", "recall", "scores"))
    if not same or not np.array_equal(E.stats, W.stats):
        failed.append("params.imgIds differs from a ground truth cut to those images")
    elif np.array_equal(E.stats, F.stats):
        failed.append("params.imgIds is ignored (same stats as every image)")
    else:
        print("params.imgIds (every third image): arrays = ground truth cut to them")
    # A new cocoDt starts over (torchvision sets it per batch), the ground truth is kept.
    E = mo_eval.COCOeval(gt, dets[:10], "bbox")
    E.cocoDt = res
    quiet(lambda: (E.evaluate(), E.accumulate(), E.summarize()))
    if not np.array_equal(E.stats, F.stats):
        failed.append("assigning cocoDt does not replace the detections")
    return failed


# --------------------------------------------------------------------- pycocotools

def load_pycocotools(np):
    d = os.environ.get("PYCOCOTOOLS_DIR")
    if d:
        sys.path.insert(0, d)
    if not hasattr(np, "float"):  # pycocotools' accumulate() uses np.float (numpy < 1.24)
        np.float = float
    try:
        import matplotlib  # noqa: F401 (pycocotools.coco imports it for showAnns only)
    except ImportError:
        for n in ("matplotlib", "matplotlib.pyplot", "matplotlib.collections",
                  "matplotlib.patches"):
            m = types.ModuleType(n)
            m.PatchCollection = m.Polygon = None
            sys.modules[n] = m
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:
        print("SKIPPED the comparison with pycocotools: not found (%s); build it outside "
              "the repository (see tools/coco_reference.py) and set PYCOCOTOOLS_DIR to the "
              "folder holding pycocotools/" % e)
        return None, None
    return COCO, COCOeval


def mode_pycocotools(a, np, mo_eval):
    PCOCO, PCOCOeval = load_pycocotools(np)
    if PCOCO is None:
        return []
    gt, fx = fixtures(a)
    cg, _ = quiet(PCOCO, gt)
    failed = []

    def compare(label, res, setup=None, summarize=True):
        cd, _ = quiet(cg.loadRes, res)
        P = PCOCOeval(cg, cd, "bbox")
        if setup:
            setup(P.params)
        quiet(lambda: (P.evaluate(), P.accumulate(), summarize and P.summarize()))
        E = mo_eval.COCOeval(cg, cd, "bbox")  # pycocotools' own COCO objects
        if setup:
            setup(E.params)
        quiet(lambda: (E.evaluate(), E.accumulate(), summarize and E.summarize()))
        bad = [k for k in ("precision", "recall", "scores")
               if P.eval[k].shape != E.eval[k].shape or not np.array_equal(P.eval[k], E.eval[k])]
        if summarize and not np.array_equal(np.asarray(P.stats), E.stats):
            bad.append("stats (max |d| %.3g)" % np.max(np.abs(np.asarray(P.stats) - E.stats)))
        if P.eval["counts"] != E.eval["counts"]:
            bad.append("counts %s != %s" % (E.eval["counts"], P.eval["counts"]))
        if bad:
            failed.append("%s: %s differ from pycocotools" % (label, ", ".join(bad)))
        else:
            print("%-34s = pycocotools (%sprecision, recall, scores %s)" %
                  (label, "stats, " if summarize else "", "x".join(map(str, E.eval["counts"]))))

    for name in FIXTURES:
        compare(name, os.path.join(fx, name + ".json"))
    ids = sorted(cg.getImgIds())
    cats = sorted(cg.getCatIds())
    res = os.path.join(fx, "categories.json")  # has detections of unknown ids 1000..1004
    compare("imgIds subset (+ unknown id)", res,
            lambda p: setattr(p, "imgIds", ids[1::2] + [123456789]))
    compare("catIds subset (+ unknown 1000)", res,
            lambda p: setattr(p, "catIds", cats[::4] + [1000]))
    compare("iouThrs .5 .75, recThrs subset", os.path.join(fx, "perturbed.json"),
            lambda p: (setattr(p, "iouThrs", np.array([0.5, 0.75])),
                       setattr(p, "recThrs", np.linspace(0, 1, 101)[::10])))

    def areas(p):
        p.areaRng = [p.areaRng[3], p.areaRng[0]]
        p.areaRngLbl = ["large", "all"]
    compare("areaRng large, all", os.path.join(fx, "sizes.json"), areas)
    compare("maxDets [10, 1]", os.path.join(fx, "many.json"),
            lambda p: setattr(p, "maxDets", [10, 1]), summarize=False)
    compare("maxDets [100, 1, 10]", os.path.join(fx, "many.json"),
            lambda p: setattr(p, "maxDets", [100, 1, 10]))
    return failed


# -------------------------------------------------------------------------- errors

GT = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10],
                       "area": 100, "iscrowd": 0}]}

# (name, code run with E = mo_eval, gt = a valid ground truth path, d = GT, and the
# files below; expected exception class name, words its message must hold)
CASES = [
    ("gt: malformed JSON", "E.COCOeval(bad_gt_json, [], 'bbox')", "MoEvalInputError",
     ["bad_gt.json:2:", "invalid JSON"]),
    ("gt: missing annotations", "E.COCOeval({'images': [], 'categories': []}, [], 'bbox')",
     "MoEvalInputError", ['missing array "annotations"']),
    ("gt: no such file", "E.COCOeval('/nonexistent/gt.json', [], 'bbox')", "MoEvalIOError",
     ["/nonexistent/gt.json"]),
    ("gt: NaN box", "d['annotations'][0]['bbox'][0] = float('nan'); E.COCOeval(d, [], 'bbox')",
     "MoEvalInputError", ["annotations[0]"]),
    ("gt: wrong type", "E.COCOeval(42, [], 'bbox')", "TypeError", ["cocoGt"]),
    ("results: malformed JSON", "E.COCOeval(gt, bad_json, 'bbox')", "MoEvalInputError",
     ["bad.json:2:"]),
    ("results: an object", "E.COCOeval(gt, obj_json, 'bbox')", "MoEvalInputError",
     ["a results file is a JSON array"]),
    ("results: unknown image id", "E.COCOeval(gt, unknown_json, 'bbox')", "MoEvalInputError",
     ["results[1]", "image_id 7 is not in the ground truth"]),
    ("list: unknown image id",
     "E.COCOeval(gt, [{'image_id': 7, 'category_id': 1, 'bbox': [0, 0, 1, 1], 'score': .5}],"
     " 'bbox')", "MoEvalInputError", ["detection 0: image id 7 is not in"]),
    ("list: NaN box",
     "E.COCOeval(gt, [{'image_id': 1, 'category_id': 1, 'bbox': [0, 0, 1, 1], 'score': .5},"
     " {'image_id': 1, 'category_id': 1, 'bbox': [0, float('nan'), 1, 1], 'score': .5}],"
     " 'bbox')", "MoEvalInputError", ["detection 1: box or score not finite"]),
    ("list: missing score",
     "E.COCOeval(gt, [{'image_id': 1, 'category_id': 1, 'bbox': [0, 0, 1, 1]}], 'bbox')",
     "ValueError", ['detections[0]: missing key "score"']),
    ("list: bbox of 3", "E.COCOeval(gt, [{'image_id': 1, 'category_id': 1, 'bbox': [0, 0, 1],"
     " 'score': 1}], 'bbox')", "ValueError", ["detections[0]", "bbox must be 4 numbers"]),
    ("array: N x 6", "E.COCOeval(gt, np.zeros((3, 6)), 'bbox')", "ValueError",
     ["N x 7", "(3, 6)"]),
    ("array: NaN score", "a = np.array([[1, 0, 0, 5, 5, .9, 1], [2, 0, 0, 5, 5, np.nan, 1]]);"
     " E.COCOeval(gt, a, 'bbox')", "MoEvalInputError", ["detection 1: box or score not finite"]),
    ("array: NaN image id", "E.COCOeval(gt, np.array([[np.nan, 0, 0, 5, 5, .9, 1]]), 'bbox')",
     "ValueError", ["row 0: image_id or category_id is not finite"]),
    ("iouType segm", "E.COCOeval(gt, [])", "NotImplementedError", ["iouType='bbox'"]),
    ("useCats 0", "c = E.COCOeval(gt, [], 'bbox'); c.params.useCats = 0; c.evaluate()",
     "NotImplementedError", ["useCats=0"]),
    ("iouThrs off the grid",
     "c = E.COCOeval(gt, [], 'bbox'); c.params.iouThrs = np.array([.5, .55555]); c.evaluate()",
     "NotImplementedError", ["iouThrs", "0.55555"]),
    ("maxDets 300", "c = E.COCOeval(gt, [], 'bbox'); c.params.maxDets = [1, 10, 300];"
     " c.evaluate()", "NotImplementedError", ["maxDets", "300"]),
    ("areaRng custom", "c = E.COCOeval(gt, [], 'bbox'); c.params.areaRng = [[0, 50]];"
     " c.evaluate()", "NotImplementedError", ["areaRng"]),
    ("recThrs custom", "c = E.COCOeval(gt, [], 'bbox'); c.params.recThrs = [.333];"
     " c.evaluate()", "NotImplementedError", ["recThrs"]),
    ("accumulate() before evaluate()", "E.COCOeval(gt, [], 'bbox').accumulate()",
     "RuntimeError", ["evaluate() first"]),
    ("summarize() before accumulate()", "E.COCOeval(gt, [], 'bbox').summarize()",
     "Exception", ["accumulate() first"]),
    ("usable after an error", "try:\n    E.COCOeval(gt, bad_json, 'bbox')\n"
     "except E.MoEvalError:\n    pass\nc = E.COCOeval(gt, [], 'bbox'); c.evaluate();"
     " c.accumulate(); c.summarize(); raise KeyError('after: AP %r' % c.stats[0])",
     "KeyError", ["after: AP 0.0"]),
    ("params changed after evaluate()", "c = E.COCOeval(gt, [], 'bbox'); c.evaluate();"
     " c.params.maxDets = [1, 10]; c.accumulate()", "NotImplementedError", ["evaluate()"]),
]

CHILD = r"""
import json, sys, numpy as np
import mo_eval as E
sys.stdout = open('/dev/null', 'w')
w = sys.argv[1]
gt, bad_gt_json, bad_json, obj_json, unknown_json = [w + '/' + n for n in
    ('gt.json', 'bad_gt.json', 'bad.json', 'obj.json', 'unknown.json')]
d = json.load(open(gt))
try:
    exec(sys.argv[2])
except Exception as e:
    sys.stderr.write('RAISED %s: %s\n' % (type(e).__name__, e))
    sys.stderr.write('MRO %s\n' % ' '.join(c.__name__ for c in type(e).__mro__))
    sys.exit(0)
sys.stderr.write('NO EXCEPTION\n')
"""


def mode_errors(a, np, mo_eval):
    os.makedirs(a.work, exist_ok=True)
    files = {"gt.json": json.dumps(GT), "bad_gt.json": '{"images": [{"id": 1}],\n "x": ]}',
             "bad.json": '[\n {"image_id": 1,, }\n]',
             "obj.json": '{"image_id": 1}',
             "unknown.json": json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                                          "score": .5},
                                         {"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1],
                                          "score": .5}], indent=1)}
    for n, text in files.items():
        with open(os.path.join(a.work, n), "w") as f:
            f.write(text)
    failed = []
    for name, code, cls, words in CASES:
        p = subprocess.run([sys.executable, "-c", CHILD, a.work, code], capture_output=True,
                           text=True, timeout=60)
        err = p.stderr.strip()
        raised = [l for l in err.splitlines() if l.startswith("RAISED ")]
        mro = [l for l in err.splitlines() if l.startswith("MRO ")]
        if p.returncode != 0:
            failed.append("%s: the interpreter died (exit %d): %s" % (name, p.returncode, err))
        elif not raised or cls not in mro[0].split()[1:]:
            failed.append("%s: expected %s, got %s" % (name, cls, err))
        elif not all(w in raised[0] for w in words):
            failed.append("%s: message lacks %s: %s" % (name, words, raised[0]))
        else:
            print("%-32s %s" % (name, raised[0][7:]))
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["tool", "pycocotools", "errors"], required=True,
                    help="tool also runs the pycocotools comparison")
    ap.add_argument("--mo-eval", help="the mo-eval executable (mode tool)")
    ap.add_argument("--shared", help="the shared data folder")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    try:
        import numpy as np
    except ImportError:
        print("SKIP: numpy is not installed for %s (Debian: python3-numpy)" % sys.executable)
        return 77
    import mo_eval
    print("mo_eval from %s, libmo_eval %s" % (os.path.dirname(mo_eval.__file__),
                                              mo_eval.library_path()))
    os.makedirs(a.work, exist_ok=True)
    failed = {"tool": mode_tool, "pycocotools": mode_pycocotools,
              "errors": mode_errors}[a.mode](a, np, mo_eval)
    if a.mode == "tool":
        failed += mode_pycocotools(a, np, mo_eval)
    if failed:
        print("FAILED:\n  " + "\n  ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
