"""COCO box AP from Python with the MobileOne SDK's libmo_eval: a drop-in for
pycocotools' ``COCOeval`` (iouType ``'bbox'``).

    from mo_eval import COCOeval          # was: from pycocotools.cocoeval import COCOeval
    E = COCOeval(coco_gt, coco_dt, 'bbox')
    E.evaluate(); E.accumulate(); E.summarize()
    E.stats, E.eval['precision'], E.eval['recall'], E.eval['scores']

Ground truth: a path to an ``instances_*.json``, its dict, or any object with a
``.dataset`` dict (pycocotools' ``COCO``, or :class:`COCO` below). Detections: a results
file path, a list of result dicts, an N x 7 array ``[image_id, x, y, w, h, score,
category_id]`` (as pycocotools' ``loadRes``), or an object with a ``.dataset`` dict.

Matching and accumulation run in C over the default grid (IoU .50:.05:.95, 101 recall
thresholds, the 4 COCO area ranges, maxDets 1, 10, 100). ``params`` may pick any subset
of those values (and any ``imgIds`` / ``catIds``): the arrays are sliced to them, which is
what pycocotools computes for them. Values outside the grid, ``useCats = 0`` and iouType
other than ``'bbox'`` raise NotImplementedError.

The shared library is looked up in this order: ``MO_EVAL_LIB`` (the file, or its
folder), next to this package, the libdir recorded by ``meson install``, then the
dynamic linker's search path (``LD_LIBRARY_PATH``, ld.so.cache).
"""
import copy
import ctypes
import ctypes.util
import datetime
import glob
import json
import operator
import os
import time

import numpy as np

__all__ = ["COCO", "COCOeval", "Params", "MoEvalError", "MoEvalInputError", "MoEvalIOError",
           "library_path"]

# The grid libmo_eval computes (include/mo/eval.h): T x R x K x A x M.
_IOU = np.linspace(0.5, 0.95, 10)
_REC = np.linspace(0.0, 1.0, 101)
_AREA = [(0.0, 1e10), (0.0, 32.0 ** 2), (32.0 ** 2, 96.0 ** 2), (96.0 ** 2, 1e10)]
_AREA_LABELS = ["all", "small", "medium", "large"]
_MAXDETS = [1, 10, 100]
_T, _R, _A, _M = len(_IOU), len(_REC), len(_AREA), len(_MAXDETS)

# mo_coco_det: int64 image_id, int64 category_id, double bbox[4], double score.
_DET = np.dtype([("image_id", "<i8"), ("category_id", "<i8"), ("bbox", "<f8", (4,)),
                 ("score", "<f8")])

_MO_EINVAL, _MO_EIO, _MO_EFORMAT = -1, -3, -4


class MoEvalError(RuntimeError):
    """A libmo_eval call failed: ``code`` is its MO_E* code, the message its
    mo_last_error()."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class MoEvalInputError(MoEvalError, ValueError):
    """Invalid input (MO_EINVAL, MO_EFORMAT): malformed JSON, unknown image ids, NaN."""


class MoEvalIOError(MoEvalError, OSError):
    """A file could not be read (MO_EIO)."""


# ------------------------------------------------------------------------- library

_lib = None
_lib_path = None


def _candidates():
    env = os.environ.get("MO_EVAL_LIB")
    if env:  # explicit: nothing else is tried
        if os.path.isdir(env):
            return sorted(glob.glob(os.path.join(env, "libmo_eval.so*")) +
                          glob.glob(os.path.join(env, "libmo_eval*.dylib")))[:1] or [env]
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "libmo_eval.so*")))
    try:
        from . import _paths  # written by meson install
        found += sorted(glob.glob(os.path.join(_paths.LIBDIR, "libmo_eval.so*")))
    except ImportError:
        pass
    found += [n for n in (ctypes.util.find_library("mo_eval"),) if n]
    return found + ["libmo_eval.so.0", "libmo_eval.so"]


def _bind(lib):
    c_p, c_i, c_sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    pp, dbl = ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_double)
    sig = {
        "mo_last_error": (ctypes.c_char_p, []),
        "mo_strerror": (ctypes.c_char_p, [c_i]),
        "mo_version": (ctypes.c_char_p, []),
        "mo_coco_eval_open": (c_i, [pp, ctypes.c_char_p]),
        "mo_coco_eval_open_memory": (c_i, [pp, ctypes.c_char_p, c_sz, ctypes.c_char_p]),
        "mo_coco_eval_close": (None, [pp]),
        "mo_coco_eval_num_images": (c_i, [c_p]),
        "mo_coco_eval_image_id": (ctypes.c_int64, [c_p, c_i]),
        "mo_coco_eval_num_categories": (c_i, [c_p]),
        "mo_coco_eval_category_id": (ctypes.c_int64, [c_p, c_i]),
        "mo_coco_eval_add_detections": (c_i, [c_p, c_p, c_sz]),
        "mo_coco_eval_load_results": (c_i, [c_p, ctypes.c_char_p]),
        "mo_coco_eval_load_results_memory": (c_i, [c_p, ctypes.c_char_p, c_sz,
                                                   ctypes.c_char_p]),
        "mo_coco_eval_num_ignored": (c_sz, [c_p]),
        "mo_coco_eval_select_images": (c_i, [c_p, c_p, c_sz]),
        "mo_coco_eval_evaluate": (c_i, [c_p, c_i, c_i, c_p, c_p]),
        "mo_coco_eval_accumulate": (c_i, [c_p]),
        "mo_coco_eval_stats": (c_i, [c_p, ctypes.POINTER(ctypes.c_double)]),
        "mo_coco_eval_arrays": (c_i, [c_p, dbl, dbl, dbl]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def _load():
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    errors = []
    for cand in _candidates():
        try:
            # An installed library has no RUNPATH: its SDK dependencies are loaded from
            # its own folder first (a prefix the dynamic linker does not search).
            folder = os.path.dirname(cand)
            for dep in ("libmo_core.so.0", "libmo_io.so.0"):
                if folder and os.path.exists(os.path.join(folder, dep)):
                    ctypes.CDLL(os.path.join(folder, dep), mode=ctypes.RTLD_GLOBAL)
            lib = ctypes.CDLL(cand)
            _bind(lib)
        except (OSError, AttributeError) as e:
            errors.append("%s: %s" % (cand, e))
            continue
        _lib, _lib_path = lib, cand
        return lib
    raise ImportError("mo_eval: libmo_eval not found or too old (set MO_EVAL_LIB to the "
                      "library or its folder); tried:\n  " + "\n  ".join(errors))


def library_path():
    """The libmo_eval that was loaded (loading it if needed)."""
    _load()
    return _lib_path


def _check(ret):
    if ret < 0:
        msg = _lib.mo_last_error()
        msg = msg.decode("utf-8", "replace") if msg else _lib.mo_strerror(ret).decode()
        cls = (MoEvalIOError if ret == _MO_EIO else
               MoEvalInputError if ret in (_MO_EINVAL, _MO_EFORMAT) else MoEvalError)
        raise cls(ret, msg)
    return ret


# --------------------------------------------------------------------------- inputs

def _numpy_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError("%s is not JSON serializable" % type(o).__name__)


_GT_KEYS = {"images": ("id", "file_name"), "categories": ("id", "name"),
            "annotations": ("id", "image_id", "category_id", "bbox", "area", "iscrowd")}


def _gt_json(d):
    """Ground truth dict -> JSON bytes with only what box AP reads (no polygons)."""
    if not isinstance(d, dict):
        raise TypeError("ground truth: expected a dict, got %s" % type(d).__name__)
    slim = {}
    for sec, keys in _GT_KEYS.items():
        if sec not in d:
            continue  # libmo_eval names what is missing
        v = d[sec]
        slim[sec] = ([{k: e[k] for k in keys if k in e} if isinstance(e, dict) else e
                      for e in v] if isinstance(v, (list, tuple)) else v)
    return json.dumps(slim, default=_numpy_default).encode()


def _gt_source(cocoGt):
    """('path', str) or ('json', bytes)."""
    if isinstance(cocoGt, (str, os.PathLike)):
        return "path", os.fsdecode(cocoGt)
    path = getattr(cocoGt, "_mo_path", None)
    if path is not None:
        return "path", path
    if isinstance(cocoGt, dict):
        return "json", _gt_json(cocoGt)
    ds = getattr(cocoGt, "dataset", None)
    if isinstance(ds, dict):
        return "json", _gt_json(ds)
    raise TypeError("cocoGt: expected a path, a dict or an object with a .dataset dict "
                    "(pycocotools COCO), got %s" % type(cocoGt).__name__)


def _dets_from_array(a):
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != 7:
        raise ValueError("detections: an array must be N x 7 [image_id, x, y, w, h, score, "
                         "category_id], got shape %s" % (a.shape,))
    try:
        a = a.astype(np.float64, copy=False)
    except (TypeError, ValueError) as e:
        raise ValueError("detections: the array is not numeric (%s)" % e) from None
    bad = ~np.isfinite(a[:, 0]) | ~np.isfinite(a[:, 6])
    if bad.any():
        raise ValueError("detections: row %d: image_id or category_id is not finite" %
                         int(np.argmax(bad)))
    out = np.empty(len(a), _DET)
    out["image_id"] = a[:, 0].astype(np.int64)  # int(), as pycocotools' loadRes
    out["category_id"] = a[:, 6].astype(np.int64)
    out["bbox"] = a[:, 1:5]
    out["score"] = a[:, 5]
    return out


def _dets_from_list(dets):
    n = len(dets)
    try:  # fast path: the iteration stays in C (itemgetter, fromiter)
        out = np.empty(n, _DET)
        for key, typ in (("image_id", np.int64), ("category_id", np.int64),
                         ("score", np.float64)):
            out[key] = np.fromiter(map(operator.itemgetter(key), dets), typ, n)
        bbox = np.array(list(map(operator.itemgetter("bbox"), dets)), dtype=np.float64)
        if bbox.shape == (n, 4):
            out["bbox"] = bbox
            return out
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        pass
    try:  # any mix of types numpy converts
        return np.array([(d["image_id"], d["category_id"], d["bbox"], d["score"])
                         for d in dets], dtype=_DET)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        pass
    # Say which entry is wrong.
    for i, d in enumerate(dets):
        if not isinstance(d, dict):
            raise ValueError("detections[%d]: not a dict (%s)" % (i, type(d).__name__))
        for k in ("image_id", "category_id", "bbox", "score"):
            if k not in d:
                raise ValueError("detections[%d]: missing key \"%s\"" % (i, k))
        try:
            np.array([(d["image_id"], d["category_id"], d["bbox"], d["score"])], dtype=_DET)
        except (TypeError, ValueError) as e:
            raise ValueError("detections[%d]: %s: bbox must be 4 numbers, ids integers and "
                             "score a number" % (i, e)) from None
    raise ValueError("detections: cannot convert the list")


def _add_detections(ev, cocoDt):
    """Feed cocoDt into the C evaluator; returns nothing, raises on bad input."""
    lib = _lib
    if isinstance(cocoDt, (str, os.PathLike)):
        _check(lib.mo_coco_eval_load_results(ev, os.fsencode(cocoDt)))
        return
    path = getattr(cocoDt, "_mo_path", None)
    if path is not None:
        _check(lib.mo_coco_eval_load_results(ev, os.fsencode(path)))
        return
    if isinstance(cocoDt, np.ndarray):
        arr = _dets_from_array(cocoDt)
    elif isinstance(cocoDt, (list, tuple)):
        arr = _dets_from_list(cocoDt)
    elif isinstance(getattr(cocoDt, "dataset", None), dict):
        anns = cocoDt.dataset.get("annotations")
        if not isinstance(anns, (list, tuple)):
            raise ValueError("cocoDt.dataset has no \"annotations\" list")
        arr = _dets_from_list(anns)
    else:
        raise TypeError("cocoDt: expected a results file path, a list of dicts, an N x 7 "
                        "array or an object with a .dataset dict, got %s" %
                        type(cocoDt).__name__)
    arr = np.ascontiguousarray(arr)
    _check(lib.mo_coco_eval_add_detections(ev, arr.ctypes.data_as(ctypes.c_void_p),
                                           len(arr)))


class COCO:
    """A minimal stand-in for pycocotools' ``COCO`` (only what COCOeval needs):
    ``COCO(path)``, ``.dataset``, ``getImgIds()``, ``getCatIds()``, ``loadRes(res)``.
    pycocotools' own COCO objects are accepted as well."""

    def __init__(self, annotation_file=None):
        self.dataset = {}
        self._mo_path = None
        if annotation_file is not None:
            with open(annotation_file) as f:
                self.dataset = json.load(f)
            self._mo_path = os.fsdecode(annotation_file)

    def getImgIds(self):
        return [im["id"] for im in self.dataset.get("images", [])]

    def getCatIds(self):
        return [c["id"] for c in self.dataset.get("categories", [])]

    def loadRes(self, resFile):
        """Results (a file path, a list of dicts or an N x 7 array) over these images."""
        res = COCO()
        res.dataset = {k: self.dataset[k] for k in ("images", "categories")
                       if k in self.dataset}
        if isinstance(resFile, (str, os.PathLike)):
            with open(resFile) as f:
                res.dataset["annotations"] = json.load(f)
            res._mo_path = os.fsdecode(resFile)
        elif isinstance(resFile, np.ndarray):
            a = _dets_from_array(resFile)
            res.dataset["annotations"] = [
                {"image_id": int(d["image_id"]), "category_id": int(d["category_id"]),
                 "bbox": d["bbox"].tolist(), "score": float(d["score"])} for d in a]
        else:
            res.dataset["annotations"] = list(resFile)
        return res


# --------------------------------------------------------------------------- params

class Params:
    """pycocotools' evaluation parameters (bbox): imgIds, catIds, iouThrs, recThrs,
    maxDets, areaRng, areaRngLbl, useCats."""

    def __init__(self, iouType="bbox"):
        self.imgIds = []
        self.catIds = []
        self.iouThrs = _IOU.copy()
        self.recThrs = _REC.copy()
        self.maxDets = list(_MAXDETS)
        self.areaRng = [[lo, hi] for lo, hi in _AREA]
        self.areaRngLbl = list(_AREA_LABELS)
        self.useCats = 1
        self.iouType = iouType
        self.useSegm = None


def _grid_index(name, values, grid, what):
    """Index of each value in grid (exact float equality), or NotImplementedError."""
    idx = []
    for v in values:
        hit = [i for i, g in enumerate(grid) if g == v]
        if not hit:
            near = [g for g in grid if np.allclose(g, v, rtol=0, atol=1e-9)]
            hint = ("; the grid value is %r (an IoU or recall equal to one of them would "
                    "count differently): take the values from the default params" % (near[0],)
                    if near else "; use pycocotools for it")
            raise NotImplementedError(
                "mo_eval: params.%s value %r is not computed by libmo_eval (%s)%s" %
                (name, v, what, hint))
        idx.append(hit[0])
    return idx


# ------------------------------------------------------------------------- COCOeval

class COCOeval:
    """pycocotools' ``COCOeval`` for iouType 'bbox', computed by libmo_eval."""

    def __init__(self, cocoGt=None, cocoDt=None, iouType="segm"):
        if iouType != "bbox":
            raise NotImplementedError("mo_eval: only iouType='bbox' is supported, not %r "
                                      "(note pycocotools' default is 'segm')" % (iouType,))
        _load()
        self._ev = ctypes.c_void_p()
        self._gt = None
        self._dt = None
        self._gt_src = None
        self.params = Params(iouType)
        self._paramsEval = None
        self.eval = {}
        self.stats = []
        self._evaluated = False
        if cocoGt is not None:
            self.cocoGt = cocoGt
        if cocoDt is not None:
            self.cocoDt = cocoDt

    # Ground truth and detections are loaded when assigned (errors raise there); a new
    # cocoDt (torchvision's loop sets it per batch) starts from the ground truth again.
    @property
    def cocoGt(self):
        return self._gt

    @cocoGt.setter
    def cocoGt(self, gt):
        self._gt_src = _gt_source(gt)
        self._gt = gt
        self._open()
        lib, ev = _lib, self._ev
        self.params.imgIds = [lib.mo_coco_eval_image_id(ev, i)
                              for i in range(lib.mo_coco_eval_num_images(ev))]
        self.params.catIds = [lib.mo_coco_eval_category_id(ev, k)
                              for k in range(lib.mo_coco_eval_num_categories(ev))]
        if self._dt is not None:
            _add_detections(self._ev, self._dt)

    @property
    def cocoDt(self):
        return self._dt

    @cocoDt.setter
    def cocoDt(self, dt):
        if self._gt_src is None:
            raise ValueError("mo_eval: set cocoGt before cocoDt")
        if self._dt is not None or self._evaluated:
            self._open()
        self._dt = None
        _add_detections(self._ev, dt)
        self._dt = dt

    @property
    def evalImgs(self):
        raise NotImplementedError("mo_eval: the per-image evalImgs records stay in C; use "
                                  "eval['precision'], eval['recall'], eval['scores']")

    def _open(self):
        self._close()
        kind, src = self._gt_src
        ev = ctypes.c_void_p()
        if kind == "path":
            _check(_lib.mo_coco_eval_open(ctypes.byref(ev), os.fsencode(src)))
        else:
            _check(_lib.mo_coco_eval_open_memory(ctypes.byref(ev), src, len(src),
                                                 b"<ground truth dict>"))
        self._ev = ev
        self._evaluated = False
        self.eval = {}

    def _close(self):
        if self._ev and _lib is not None:
            _lib.mo_coco_eval_close(ctypes.byref(self._ev))
        self._ev = ctypes.c_void_p()

    def __del__(self):
        try:
            self._close()
        except Exception:
            pass

    def _check_params(self, p):
        """Normalize p as pycocotools' evaluate() does; the slices of the C grid."""
        if p.useSegm is not None and p.useSegm == 1:
            raise NotImplementedError("mo_eval: useSegm=1 (segm) is not supported")
        if p.iouType != "bbox":
            raise NotImplementedError("mo_eval: only iouType 'bbox' is supported")
        if not p.useCats:
            raise NotImplementedError("mo_eval: useCats=0 (categories pooled) is not "
                                      "supported by libmo_eval")
        p.imgIds = list(np.unique(p.imgIds))
        p.catIds = list(np.unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        if not p.maxDets:
            raise ValueError("mo_eval: params.maxDets is empty")
        sl = {
            "t": _grid_index("iouThrs", np.asarray(p.iouThrs, dtype=float).ravel(), _IOU,
                             "it computes np.linspace(.5, .95, 10)"),
            "r": _grid_index("recThrs", np.asarray(p.recThrs, dtype=float).ravel(), _REC,
                             "it computes np.linspace(0, 1, 101)"),
            "a": _grid_index("areaRng", [tuple(map(float, a)) for a in p.areaRng], _AREA,
                             "it computes [0, 1e5**2], [0, 32**2], [32**2, 96**2], "
                             "[96**2, 1e5**2]"),
            "m": _grid_index("maxDets", p.maxDets, _MAXDETS, "it computes 1, 10 and 100"),
        }
        return sl

    def evaluate(self):
        """Match detections to the ground truth, per image (pycocotools' evaluate())."""
        tic = time.time()
        print("Running per image evaluation...")
        p = self.params
        if self._gt_src is None:
            raise ValueError("mo_eval: no ground truth (cocoGt)")
        print("Evaluate annotation type *%s*" % p.iouType)
        self._slices = self._check_params(p)
        lib, ev = _lib, self._ev
        all_ids = [lib.mo_coco_eval_image_id(ev, i)
                   for i in range(lib.mo_coco_eval_num_images(ev))]
        if [int(i) for i in p.imgIds] == all_ids:
            _check(lib.mo_coco_eval_select_images(ev, None, 0))
        else:
            ids = np.array(p.imgIds, dtype=np.int64).reshape(-1)
            _check(lib.mo_coco_eval_select_images(ev, ids.ctypes.data_as(ctypes.c_void_p),
                                                  len(ids)))
        _check(lib.mo_coco_eval_evaluate(ev, 0, 1, None, None))
        self._evaluated = True
        self._paramsEval = copy.deepcopy(p)
        self.eval = {}
        print("DONE (t=%0.2fs)." % (time.time() - tic))

    def accumulate(self, p=None):
        """Precision and recall over the images (pycocotools' accumulate())."""
        print("Accumulating evaluation results...")
        tic = time.time()
        if not self._evaluated:
            raise RuntimeError("mo_eval: run evaluate() first")
        if p is None:
            p = self.params
        if p is not self.params or not _same_params(p, self._paramsEval):
            # pycocotools then mixes both parameter sets; evaluate() again instead
            raise NotImplementedError("mo_eval: accumulate() with parameters other than "
                                      "those of evaluate(): run evaluate() again")
        lib, ev = _lib, self._ev
        _check(lib.mo_coco_eval_accumulate(ev))
        K0 = lib.mo_coco_eval_num_categories(ev)
        n5, n4 = _T * _R * K0 * _A * _M, _T * K0 * _A * _M
        grids = [np.empty(n, dtype=np.float64) for n in (n5, n4, n5)]
        _check(lib.mo_coco_eval_arrays(ev, *[g.ctypes.data_as(ctypes.POINTER(ctypes.c_double)) for g in grids]))
        # Categories of params.catIds in order; ids the ground truth lacks stay -1.
        gt_cats = {lib.mo_coco_eval_category_id(ev, k): k for k in range(K0)}
        kidx = [gt_cats.get(int(c), -1) for c in p.catIds]
        s = self._slices
        shape = (len(s["t"]), len(s["r"]), len(kidx), len(s["a"]), len(s["m"]))
        js = [j for j, k in enumerate(kidx) if k >= 0]
        precision = scores = recall = None
        if js:
            ks = [kidx[j] for j in js]
            prec = grids[0].reshape(_T, _R, K0, _A, _M)
            sco = grids[2].reshape(_T, _R, K0, _A, _M)
            rec = grids[1].reshape(_T, K0, _A, _M)
            if shape == prec.shape and all(list(s[d]) == list(range(n)) for d, n in
                                           (("t", _T), ("r", _R), ("a", _A), ("m", _M))) \
                    and ks == list(range(K0)):
                precision, scores, recall = prec, sco, rec  # the whole grid
            else:
                precision, scores = -np.ones(shape), -np.ones(shape)
                recall = -np.ones(shape[:1] + shape[2:])
                ix = np.ix_(s["t"], s["r"], ks, s["a"], s["m"])
                precision[:, :, js] = prec[ix]
                scores[:, :, js] = sco[ix]
                recall[:, js] = rec[np.ix_(s["t"], ks, s["a"], s["m"])]
        if precision is None:  # no category of params.catIds has ground truth
            precision, scores = -np.ones(shape), -np.ones(shape)
            recall = -np.ones(shape[:1] + shape[2:])
        self.eval = {
            "params": p,
            "counts": [len(s["t"]), len(s["r"]), len(kidx), len(s["a"]), len(s["m"])],
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "precision": precision,
            "recall": recall,
            "scores": scores,
        }
        print("DONE (t=%0.2fs)." % (time.time() - tic))

    def _summarize_one(self, ap=1, iouThr=None, areaRng="all", maxDets=100):
        p = self.params
        if iouThr is None:
            iou = "%0.2f:%0.2f" % (p.iouThrs[0], p.iouThrs[-1])
        else:
            iou = "%0.2f" % iouThr
        aind = [i for i, lbl in enumerate(p.areaRngLbl) if lbl == areaRng]
        mind = [i for i, m in enumerate(p.maxDets) if m == maxDets]
        s = self.eval["precision" if ap == 1 else "recall"]
        if iouThr is not None:
            s = s[np.where(np.asarray(p.iouThrs) == iouThr)[0]]
        s = s[:, :, :, aind, mind] if ap == 1 else s[:, :, aind, mind]
        valid = s[s > -1]
        mean = -1 if valid.size == 0 else np.mean(valid)
        print(" %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f" % (
            "Average Precision" if ap == 1 else "Average Recall", "(AP)" if ap == 1 else "(AR)",
            iou, areaRng, maxDets, mean))
        return mean

    def summarize(self):
        """Print pycocotools' 12 summary lines and set ``stats``."""
        if not self.eval:
            raise Exception("Please run accumulate() first")
        md = self.params.maxDets
        one = self._summarize_one
        stats = np.zeros((12,))
        stats[0] = one(1)
        stats[1] = one(1, iouThr=0.5, maxDets=md[2])
        stats[2] = one(1, iouThr=0.75, maxDets=md[2])
        for i, area in enumerate(("small", "medium", "large")):
            stats[3 + i] = one(1, areaRng=area, maxDets=md[2])
        for i in range(3):
            stats[6 + i] = one(0, maxDets=md[i])
        for i, area in enumerate(("small", "medium", "large")):
            stats[9 + i] = one(0, areaRng=area, maxDets=md[2])
        self.stats = stats


def _same_params(a, b):
    if b is None:
        return False
    for f in ("imgIds", "catIds", "iouThrs", "recThrs", "maxDets", "areaRng", "useCats",
              "iouType"):
        x, y = getattr(a, f), getattr(b, f)
        if not np.array_equal(np.asarray(x, dtype=object if f == "iouType" else None),
                              np.asarray(y, dtype=object if f == "iouType" else None)):
            return False
    return True
