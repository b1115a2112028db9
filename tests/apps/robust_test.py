#!/usr/bin/python3
"""The apps against hostile inputs (issue 15, findings 3 and 4), on random models
(tests/apps/appmodels.py; no ../shared needed):

- a FIFO named x.jpg among the inputs (inside a folder for mo-detect and mo-segment, as an
  argument for mo-classify and mo-demo): the app must not block on it; it reports it as not
  a regular file, exits 1 and still processes the other image;
- a FIFO as --model (and as the head file): exit 2 promptly with a message naming it;
- an 8192 x 8192 PNG (about 200 KB, inside the image limits): mo-demo draws it within a
  stated memory bound (peak RSS < 512 MiB, the picture at most 2048 a side);
  mo-segment --max-side 8192 refuses it early (limit session_memory_bytes) instead of using
  8 GB for minutes: peak RSS < 512 MiB.
Every run has a timeout, so a regression fails instead of hanging; peak RSS is the child's
own (os.wait4). With --sanitized (ASan builds, whose memory use says nothing) the
8192 x 8192 part is skipped.

  robust_test.py --classify C --detect D --segment S --demo M --work DIR [--sanitized]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FAILS = []
TIMEOUT = 30  # seconds per run; each takes a few at most


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)
    return cond


def run(cmd, timeout=TIMEOUT, as_limit=None):
    """(exit code, stdout + stderr, peak RSS in MiB, seconds); exit code None on timeout."""
    def limit():
        if as_limit:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         preexec_fn=limit)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        print("  timed out after %d s: %s" % (timeout, " ".join(cmd)))
        return None, out.decode(errors="replace"), 0.0, time.monotonic() - t0
    return p.returncode, out.decode(errors="replace"), 0.0, time.monotonic() - t0


def run_rss(cmd, timeout=TIMEOUT * 5, as_limit=None):
    """run() with the child's own peak RSS (os.wait4), output into a file."""
    t0 = time.monotonic()
    with open(os.devnull, "rb") as devnull, \
            tempfile.TemporaryFile() as log:
        def limit():
            if as_limit:
                resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
        p = subprocess.Popen(cmd, stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=limit)
        code, ru = None, None
        while time.monotonic() - t0 < timeout:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.1)
        if code is None:
            p.kill()
            _, _, ru = os.wait4(p.pid, 0)
            print("  timed out after %d s: %s" % (timeout, " ".join(cmd)))
        p.returncode = code if code is not None else -9  # reaped here, not by Popen
        log.seek(0)
        out = log.read().decode(errors="replace")
    return code, out, ru.ru_maxrss / 1024.0, time.monotonic() - t0


def fifo_tests(a, m, w):
    d = os.path.join(w, "in")
    os.makedirs(d)
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
        os.path.join(d, "a.png"))
    fifo = os.path.join(d, "x.jpg")
    os.mkfifo(fifo)
    fmodel = os.path.join(w, "fifo.mo.safetensors")
    os.mkfifo(fmodel)
    img = os.path.join(d, "a.png")
    out = lambda n: os.path.join(w, "out-" + n)
    # a FIFO among the images: reported, the other image done, exit 1
    cases = [
        ("mo-classify", [a.classify, "--model", m["backbone"], fifo, img], None),
        ("mo-detect", [a.detect, "--model", m["backbone"], "--head", m["det"], "--out",
                       out("det"), d], os.path.join(out("det"), "a.png")),
        ("mo-segment", [a.segment, "--model", m["backbone"], "--head", m["seg"], "--out",
                        out("seg"), d], os.path.join(out("seg"), "a_mask.png")),
        ("mo-demo", [a.demo, "--model", m["backbone"], "--seg", m["seg"], "--out", out("demo"),
                     fifo, img], os.path.join(out("demo"), "a.png")),
    ]
    for name, cmd, made in cases:
        code, text, _, dt = run(cmd)
        check(code == 1 and "x.jpg" in text and "FIFO" in text,
              "%s with a FIFO named x.jpg among its inputs: exit %s in %.1f s, reports it "
              "(%s)" % (name, code, dt, [l for l in text.splitlines() if "x.jpg" in l][:1]))
        if made:
            check(os.path.exists(made), "%s still processed a.png (%s)" % (name, made))
        elif code is not None:
            check("a.png" in text, "%s still classified a.png" % name)
    # a FIFO as the model or head file: exit 2 with a message naming it
    cases = [
        ("mo-classify --model", [a.classify, "--model", fmodel, img]),
        ("mo-detect --model", [a.detect, "--model", fmodel, "--head", m["det"], img]),
        ("mo-detect --head", [a.detect, "--model", m["backbone"], "--head", fmodel, img]),
        ("mo-segment --model", [a.segment, "--model", fmodel, "--out", out("seg2"), img]),
        ("mo-segment --head", [a.segment, "--model", m["backbone"], "--head", fmodel,
                               "--out", out("seg2"), img]),
        ("mo-demo --model", [a.demo, "--model", fmodel, "--out", out("demo2"), img]),
        ("mo-demo --seg", [a.demo, "--model", m["backbone"], "--seg", fmodel, "--out",
                           out("demo2"), img]),
        ("mo-bench --model", [a.bench, "--model", fmodel, "--cls", "--runs", "1"]),
        ("mo-bench --det", [a.bench, "--model", m["backbone"], "--det", fmodel, "--runs", "1"]),
        ("mo-bench --seg", [a.bench, "--model", m["backbone"], "--seg", fmodel, "--runs", "1"]),
        ("mo-detect --annotations", [a.detect, "--model", m["backbone"], "--head", m["det"],
                                     "--annotations", fmodel, "--json", "-", img]),
    ]
    for name, cmd in cases:
        code, text, _, dt = run(cmd)
        check(code == 2 and fmodel in text and "FIFO" in text,
              "%s FIFO: exit %s in %.1f s (%s)" % (name, code, dt, text.strip()[:160]))


def big_image_tests(a, m, w):
    from PIL import Image
    import numpy as np
    side = 8192
    x = np.zeros((side, side, 3), np.uint8)  # flat areas: compresses to about 200 KB
    x[: side // 2, :, 0] = 200
    x[:, : side // 2, 1] = 120
    x[side // 2:, side // 2:, 2] = 250
    big = os.path.join(w, "big.png")
    Image.fromarray(x).save(big)
    del x
    print("%s: %d bytes" % (big, os.path.getsize(big)))
    # An address-space cap keeps a regression from taking the machine's memory: it then
    # fails on malloc instead (and the checks below fail).
    cap = 3 << 30
    bound = 512  # MiB
    o = os.path.join(w, "big-demo")
    code, text, rss, dt = run_rss([a.demo, "--model", m["backbone"], "--det", m["det"],
                                   "--seg", m["seg"], "--out", o, big], as_limit=cap)
    print("  mo-demo: exit %s, peak RSS %.0f MiB, %.1f s" % (code, rss, dt))
    ok = check(code == 0, "mo-demo draws the 8192 x 8192 PNG (%s)" % text.strip()[-300:])
    check(rss < bound, "mo-demo peak RSS %.0f MiB < %d MiB" % (rss, bound))
    if ok:
        size = Image.open(os.path.join(o, "big.png")).size
        check(size[0] == 2048 and 2048 <= size[1] <= 2048 + 400,
              "mo-demo picture scaled to 2048 wide plus its legend: %s" % (size,))
    code, text, rss, dt = run_rss([a.segment, "--model", m["backbone"], "--head", m["seg"],
                                   "--max-side", "8192", "--out", os.path.join(w, "big-seg"),
                                   big], as_limit=cap)
    print("  mo-segment --max-side 8192: exit %s, peak RSS %.0f MiB, %.1f s" % (code, rss, dt))
    check(code == 1 and "session_memory_bytes" in text,
          "mo-segment --max-side 8192 refuses it naming the limit (%s)" % text.strip()[-300:])
    check(rss < bound, "mo-segment peak RSS %.0f MiB < %d MiB" % (rss, bound))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("classify", "detect", "segment", "demo", "bench"):
        ap.add_argument("--" + name, required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sanitized", action="store_true")
    a = ap.parse_args()
    try:
        import torch  # noqa: F401  (the models are made with it)
        import numpy  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError as e:
        print("SKIP: %s (install python3-torch python3-numpy python3-pil)" % e)
        return 77
    import appmodels
    w = a.work
    models = appmodels.make(w)
    for sub in os.listdir(w):
        if sub != "models":
            p = os.path.join(w, sub)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    fifo_tests(a, models, w)
    if a.sanitized:
        print("note: 8192 x 8192 memory checks skipped under sanitizers (their RSS is "
              "not the program's)")
    else:
        big_image_tests(a, models, w)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
