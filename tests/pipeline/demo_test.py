"""mo-demo and bench_pipeline end to end on generated models (random MobileOne-S0, SSDLite
and DeepLabV3 heads from tools/; no ../shared needed): one composite PNG per image,
enlarged when small, with the legend strip; --separate gives the same text output but
the timing; bad input; the bench reports identical outputs for both modes.
Usage: demo_test.py --demo MO_DEMO --bench BENCH --work DIR. Exits 77 without torch."""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")


def run(args, code=0):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != code:
        sys.exit("FAIL: %s exited %d (expected %d)\n%s%s" % (" ".join(args), p.returncode,
                                                           code, p.stdout, p.stderr))
    return p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    try:
        import torch
        from PIL import Image
    except ImportError as e:
        print("SKIP: %s (install python3-torch python3-pil)" % e)
        return 77
    sys.path.insert(0, TOOLS)
    import convert_mobileone as conv_mo
    import convert_ssdlite as conv_det
    import mobileone_ref as ref
    import mofile
    import ssdlite_ref as sref

    w = a.work
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    torch.set_num_threads(1)
    body = ref.random_model("s0", "fused", 21)
    bfile, dfile, sfile = (os.path.join(w, n) for n in ("s0.mo.safetensors", "det.mo.safetensors",
                                                         "seg.mo.safetensors"))
    mofile.write(bfile, *conv_mo.build(ref.clean_state_dict(body.state_dict()), "s0", "fused",
                                       source="demo_test"))
    det = sref.random_model(body, 21)
    mofile.write(dfile, *conv_det.build_files(det.state_dict(), det.config, "s0",
                                              backbone_file=bfile)["det"])
    run([sys.executable, os.path.join(TOOLS, "convert_deeplab.py"), "--backbone", bfile,
         "--random", "--seed", "3", sfile])

    g = torch.Generator().manual_seed(5)
    x = (torch.rand(30, 40, 3, generator=g) * 255).byte().numpy()
    img = os.path.join(w, "small.png")
    Image.fromarray(x).resize((300, 200), Image.BILINEAR).save(img)
    big = os.path.join(w, "big.jpg")
    Image.fromarray(x).resize((900, 700), Image.BILINEAR).save(big)

    out = os.path.join(w, "out")
    text = run([a.demo, "--model", bfile, "--det", dfile, "--seg", sfile, "--out", out, img, big])
    for name, size in (("small.png", (640, 427)), ("big.png", (900, 700))):
        pic = Image.open(os.path.join(out, name))
        if pic.size[0] != size[0] or not size[1] <= pic.size[1] <= size[1] + 200:
            sys.exit("FAIL: %s is %s, expected width %d and height %d + a legend strip"
                     % (name, pic.size, size[0], size[1]))
    if len(re.findall(r"ms: convert", text)) != 2 or "detections" not in text:
        sys.exit("FAIL: unexpected output\n" + text)
    sep = run([a.demo, "--model", bfile, "--det", dfile, "--seg", sfile, "--out", out,
               "--separate", img])
    strip = lambda t: [l for l in t.splitlines() if "ms:" not in l]
    if strip(sep) != strip(text)[: len(strip(sep))]:
        sys.exit("FAIL: --separate gives other results\n%s\n%s" % (sep, text))
    # --overlap: boxes overlapping a better one are not drawn, so the picture changes (the
    # corner panel, whose timing varies, is cropped off)
    pics = []
    for ov in ("1", "0.05"):
        o = os.path.join(w, "overlap" + ov)
        run([a.demo, "--model", bfile, "--det", dfile, "--out", o, "--draw-score", "0",
             "--max-boxes", "50", "--overlap", ov, img])
        pic = Image.open(os.path.join(o, "small.png"))
        pics.append(pic.crop((0, 150, pic.size[0], pic.size[1])).tobytes())
    if pics[0] == pics[1]:
        sys.exit("FAIL: --overlap 0.05 draws the same boxes as --overlap 1")
    # bad input: a missing image fails that image (1), no model is a usage error (2)
    run([a.demo, "--model", bfile, "--det", dfile, "--out", out, os.path.join(w, "none.png")], 1)
    run([a.demo, "--det", dfile, img], 2)
    run([a.demo, "--model", bfile, "--det", dfile, "--det", dfile, img], 2)
    b = run([a.bench, "--model", bfile, "--head", dfile, "--head", sfile, "--frame", "333x211",
             "--iters", "1"])
    if "outputs identical" not in b:
        sys.exit("FAIL: bench_pipeline\n" + b)
    print(b)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
