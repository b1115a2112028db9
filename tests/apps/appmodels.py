"""Random models for the app tests of tests/apps (no ../shared needed): a fused
MobileOne-S0 backbone with its classification head, an SSDLite detection head and a
DeepLabV3 segmentation head for it, made with tools/ as tests/pipeline/demo_test.py does.
Made once per work folder; needs torch (callers skip with 77 without it)."""
import os
import subprocess
import sys

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")


def make(work):
    """Paths {"backbone", "det", "seg"} of the three model files under work/models."""
    d = os.path.join(work, "models")
    paths = {k: os.path.join(d, k + ".mo.safetensors") for k in ("backbone", "det", "seg")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(d, exist_ok=True)
    sys.path.insert(0, TOOLS)
    import torch
    import convert_mobileone as conv_mo
    import convert_ssdlite as conv_det
    import mobileone_ref as ref
    import mofile
    import ssdlite_ref as sref

    torch.set_num_threads(1)
    body = ref.random_model("s0", "fused", 21)
    mofile.write(paths["backbone"], *conv_mo.build(ref.clean_state_dict(body.state_dict()),
                                                   "s0", "fused", source="tests/apps"))
    det = sref.random_model(body, 21)
    mofile.write(paths["det"], *conv_det.build_files(det.state_dict(), det.config, "s0",
                                                     backbone_file=paths["backbone"])["det"])
    subprocess.run([sys.executable, os.path.join(TOOLS, "convert_deeplab.py"), "--backbone",
                    paths["backbone"], "--random", "--seed", "3", paths["seg"]], check=True,
                   stdout=subprocess.DEVNULL)
    return paths


def make_small(work):
    """make() with the inputs shrunk for slow runs (valgrind): classification on a 32 x 32
    crop (cls.resize 40), detection at 64 x 64 (det.input_size). Same weights; the
    segmentation head runs at the image's size anyway."""
    big = make(work)
    d = os.path.join(work, "models")
    paths = {"backbone": os.path.join(d, "backbone-small.mo.safetensors"),
             "det": os.path.join(d, "det-small.mo.safetensors"), "seg": big["seg"]}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    sys.path.insert(0, TOOLS)
    import mofile
    for key, meta in (("backbone", {"cls.resize": "40", "cls.crop": "32",
                                    "mo.input_size": "[32,32]"}),
                      ("det", {"det.input_size": "[64,64]", "mo.input_size": "[64,64]"})):
        tensors, m = mofile.read(big[key])
        m.update(meta)
        mofile.write(paths[key], tensors, m)
    return paths
