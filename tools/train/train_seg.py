#!/usr/bin/python3
"""Train the DeepLabV3 VOC head (torchvision DeepLabHead) on cached MobileOne-S0 features.

Why this exists: issue 7 ships a trained segmentation head on the frozen real MobileOne-S0.
The backbone never changes, so the trainer reads the stage4 maps (output stride 16) that
cache_features.py stored for augmented 320x320 views, with their VOC class maps
(pseudo-labels of the TF-Lite DeepLab teacher, real COCO masks; 255 = ignore), and trains
only the head, built by tools/deeplab_ref.make_head (state_dict keys = DeepLabHead's, so
tools/convert_deeplab.py takes the checkpoint as is).

Recipe (tools/train/README.md, "Segmentation"): ASPP width 128, rates 6/12/18, 21
classes; batch 16 of records drawn without replacement from a seeded permutation per pass;
SGD momentum 0.9, lr 0.01 with poly 0.9 decay to 0 over the fixed step count, weight
decay 1e-4 on all parameters; cross-entropy (ignore 255) of the logits upsampled
bilinearly (align_corners=False) from 20x20 to --loss-size (80) against the labels
subsampled by nearest neighbour at the centres of the loss pixels; BatchNorm in training
mode. Seed 0, 2 threads.

  train_seg.py [--feat build/feat-seg] [--steps 1776] [--out build/train-seg]

Output (--out): head.pth = {"model": state_dict, "train": record}; the record (command,
seed, steps, wall seconds, load averages, sha256 of the cache's meta.json, ...) becomes
the model file's `mo.source` in convert_deeplab.py. log.json: loss per logged step.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import deeplab_ref as dl  # noqa: E402
from cache_features import sha256  # noqa: E402  (one file-digest helper)



def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class Cache:
    """The seg feature cache: stage4 fp16 memmap [N, C, h, w] and labels u8 [N, S, S]."""

    def __init__(self, folder):
        self.meta_path = os.path.join(folder, "meta.json")
        with open(self.meta_path) as f:
            self.meta = json.load(f)
        if self.meta["task"] != "seg":
            raise ValueError("%s is not a seg cache" % folder)
        m = self.meta["maps"]["stage4"]
        self.feat = np.memmap(os.path.join(folder, m["file"]), np.float16, "r",
                              shape=tuple(m["shape"]))
        lb = self.meta["labels"]
        self.labels = np.memmap(os.path.join(folder, lb["file"]), np.uint8, "r",
                                shape=tuple(lb["shape"]))
        self.n = self.feat.shape[0]

    def batch(self, idx, loss_size):
        idx = np.sort(idx)  # sequential reads of the memmap
        x = torch.from_numpy(self.feat[idx].astype(np.float32))
        size = self.labels.shape[1]
        step = size // loss_size
        # nearest neighbour at the loss pixels' centres (4i + 1.5 -> 4i + 2 for 320 -> 80)
        y = self.labels[idx][:, step // 2::step, step // 2::step]
        return x, torch.from_numpy(np.ascontiguousarray(y).astype(np.int64))


def _labels_digest(command):
    """sha256 of the det.json a cache was made from (its `--cache` folder), if readable."""
    args = (command or "").split()
    if "--cache" in args and args.index("--cache") + 1 < len(args):
        p = os.path.join(args[args.index("--cache") + 1], "det.json")
        if os.path.exists(p):
            return sha256(p)
    return None


def train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    feats = a.feat if isinstance(a.feat, list) else [a.feat]
    caches = [Cache(f) for f in feats]
    cache = caches[0]
    if cache.labels.shape[1] % a.loss_size:
        raise SystemExit("--loss-size must divide the label size %d" % cache.labels.shape[1])
    # more caches (e.g. seg_data.py's real scenes at another crop size): the loss keeps the
    # same stride against the labels (320 / 80 = 4), each batch comes from one cache
    stride = cache.labels.shape[1] // a.loss_size
    loss_sizes = [c.labels.shape[1] // stride for c in caches]
    mix = None
    if len(caches) > 1:
        mix = np.array([float(m) for m in a.mix.split(",")] if a.mix else [1.0] * len(caches))
        if len(mix) != len(caches):
            raise SystemExit("--mix needs one weight per --feat")
        mix = mix / mix.sum()
    rates = [int(r) for r in a.rates.split(",")]
    cin = cache.feat.shape[1]
    head = dl.make_head(cin, a.classes, rates, a.width).train()
    init = None
    if a.init:  # fine-tune: start from a head file (.mo.safetensors) or checkpoint (.pth)
        if a.init.endswith(".safetensors"):
            src, meta = dl.load_head(a.init, cin)
            if json.loads(meta.get("seg.rates", "[12, 24, 36]")) != rates:
                raise SystemExit("--init has other atrous rates than --rates")
            sd = src.state_dict()
        else:
            sd = torch.load(a.init, map_location="cpu")["model"]
        if dl.head_width(sd) != a.width:
            raise SystemExit("--init has width %d, not --width %d" % (dl.head_width(sd), a.width))
        head.load_state_dict(sd)
        head.train()
        init = {"file": os.path.relpath(a.init, REPO) if a.init.startswith(REPO) else a.init,
                "sha256": sha256(a.init)}
    params = list(head.parameters())
    opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=a.wd)
    per_pass = cache.n // a.batch
    rng = np.random.default_rng(a.seed)
    order = None
    log = []
    record = {
        "script": "tools/train/train_seg.py",
        "command": " ".join(["train_seg.py"] + sys.argv[1:]),
        "seed": a.seed, "steps": a.steps, "batch": a.batch, "lr": a.lr, "poly": 0.9,
        "momentum": 0.9, "weight_decay": a.wd, "width": a.width, "rates": rates,
        "classes": a.classes, "loss_size": a.loss_size, "threads": a.threads,
        "records": cache.n, "passes": round(a.steps / per_pass, 2),
        "cache_meta_sha256": sha256(cache.meta_path),
        "cache_command": cache.meta.get("command"),
        "optimizer": a.opt,
        "init": init,
        "backbone_sha256": cache.meta.get("backbone", {}).get("sha256"),
        "torch": torch.__version__,
        "params": sum(p.numel() for p in params),
        "loadavg_start": loadavg(),
    }
    if mix is not None:
        record.update(
            caches=[{"meta_sha256": sha256(c.meta_path), "command": c.meta.get("command"),
                     "records": c.n, "size": c.labels.shape[1], "loss_size": ls,
                     "weight": round(float(w), 4),
                     "labels_sha256": _labels_digest(c.meta.get("command")),
                     "passes": round(a.steps * w * a.batch / c.n, 2)}
                    for c, ls, w in zip(caches, loss_sizes, mix)],
            records=sum(c.n for c in caches), passes=None)
    print("DeepLabHead width %d rates %s: %d params; %d records, %d steps of %d (%s passes)"
          % (a.width, rates, record["params"], record["records"], a.steps, a.batch,
             record["passes"] if mix is None else [c["passes"] for c in record["caches"]]),
          flush=True)
    if a.opt == "adamw":
        opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.wd)
    mix_rng = np.random.default_rng([a.seed, 1])
    orders = [None] * len(caches)
    ks = [0] * len(caches)
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    t_data = 0.0
    run = []
    for step in range(a.steps):
        k = step % per_pass
        if k == 0:
            order = rng.permutation(cache.n)
        lr = a.lr * (1.0 - step / a.steps) ** 0.9
        for g in opt.param_groups:
            g["lr"] = lr
        td = time.time()
        if mix is None:
            x, y = cache.batch(order[k * a.batch:(k + 1) * a.batch], a.loss_size)
            ls = a.loss_size
        else:
            c = int(mix_rng.choice(len(caches), p=mix))
            pc = caches[c].n // a.batch
            if ks[c] % pc == 0:
                orders[c] = np.random.default_rng([a.seed, 2, c, ks[c] // pc]).permutation(caches[c].n)
            j = ks[c] % pc
            ks[c] += 1
            x, y = caches[c].batch(orders[c][j * a.batch:(j + 1) * a.batch], loss_sizes[c])
            ls = loss_sizes[c]
        t_data += time.time() - td
        out = head(x)
        out = F.interpolate(out, size=(ls, ls), mode="bilinear",
                            align_corners=False)
        loss = F.cross_entropy(out, y, ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.append(loss.item())
        if (step + 1) % a.log_every == 0 or step + 1 == a.steps:
            el = time.time() - t0
            m = float(np.mean(run))
            log.append({"step": step + 1, "loss": round(m, 4), "lr": round(lr, 6),
                        "seconds": round(el, 1)})
            print("step %4d/%d  loss %.4f  lr %.5f  %.0f s (data %.0f s)  eta %.0f s  load %s"
                  % (step + 1, a.steps, m, lr, el, t_data, el / (step + 1) * (a.steps - step - 1),
                     loadavg()), flush=True)
            run = []
        if a.save_every and (step + 1) % a.save_every == 0 and step + 1 < a.steps:
            torch.save({"model": head.state_dict(),
                        "train": dict(record, partial_step=step + 1)},
                       os.path.join(a.out, "head_partial.pth"))
    wall = time.time() - t0
    record.update(wall_seconds=round(wall, 1), data_seconds=round(t_data, 1),
                  loadavg_end=loadavg(), final_loss=log[-1]["loss"] if log else None)
    head.eval()
    torch.save({"model": head.state_dict(), "train": record}, os.path.join(a.out, "head.pth"))
    with open(os.path.join(a.out, "log.json"), "w") as f:
        json.dump({"train": record, "log": log}, f, indent=1)
    print("%s: %d steps in %.0f s (data %.0f s), final loss %.4f"
          % (os.path.join(a.out, "head.pth"), a.steps, wall, t_data, record["final_loss"]))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feat", default=os.path.join(REPO, "build", "feat-seg"), nargs="+",
                    help="cache_features.py seg output(s) (default build/feat-seg); with "
                         "several, each batch comes from one, drawn with --mix weights")
    ap.add_argument("--mix", default=None, help="weights of the --feat caches (default equal)")
    ap.add_argument("--opt", default="sgd", choices=("sgd", "adamw"))
    ap.add_argument("--init", default=None,
                    help="start from this head (.mo.safetensors or train_seg.py .pth)")
    ap.add_argument("--out", default=os.path.join(REPO, "build", "train-seg"))
    ap.add_argument("--steps", type=int, default=1776, help="fixed step count (6 passes)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--width", type=int, default=128, help="ASPP / head channels")
    ap.add_argument("--rates", default="6,12,18")
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--loss-size", type=int, default=80, help="loss resolution (divides 320)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--save-every", type=int, default=300)
    return train(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
