#!/usr/bin/python3
"""mo-classify command line: JSON layout and order, per-image errors that do not stop the
batch, exit codes. Uses a seeded random-weight s0 model and images written here."""
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # a counted skip (77), never a silent pass
    print("SKIP: %s (Debian python3-numpy python3-pil: tools/install-deps.sh)" % e)
    sys.exit(77)

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")


def main():
    # meson sets MESON_EXE_WRAPPER (e.g. qemu-aarch64) when the app is cross-built
    exe = shlex.split(os.environ.get("MESON_EXE_WRAPPER", "")) + [sys.argv[1]]
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "s0.mo.safetensors")
        subprocess.run([sys.executable, os.path.join(TOOLS, "convert_mobileone.py"), "--random",
                        "s0", "--fused", "--seed", "3", model], check=True, stdout=subprocess.DEVNULL)
        rng = np.random.default_rng(0)
        good = os.path.join(d, "good.png")
        Image.fromarray(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)).save(good)
        gray = os.path.join(d, "gray.jpg")
        Image.fromarray(rng.integers(0, 256, (50, 70), dtype=np.uint8)).save(gray)
        tiny = os.path.join(d, "tiny.bmp")
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
        trunc = os.path.join(d, "truncated.jpg")
        with open(trunc, "wb") as f:
            f.write(buf.getvalue()[:300])
        text = os.path.join(d, "notes.jpg")
        with open(text, "w") as f:
            f.write("not an image")
        empty = os.path.join(d, "empty.png")
        open(empty, "w").close()
        missing = os.path.join(d, "missing.png")
        images = [good, missing, gray, trunc, text, empty, tiny, "a \"quoted\" name.png"]
        p = subprocess.run(exe + ["--model", model, "--json", "--top", "3"] + images,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.returncode == 1, p.returncode
        out = json.loads(p.stdout)
        assert [x["image"] for x in out] == images, "order or names differ"
        ok = {good, gray, tiny}
        for x in out:
            if x["image"] in ok:
                assert len(x["top"]) == 3 and set(x["top"][0]) == {"class", "name", "prob"}, x
                probs = [t["prob"] for t in x["top"]]
                assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1, x
                assert x["top"][0]["name"].startswith("class_"), x
            else:
                assert set(x) == {"image", "error"} and x["error"], x
        assert p.stderr.count("mo-classify:") == len(images) - len(ok), p.stderr
        # Text output, and the exit code when everything works.
        p = subprocess.run(exe + ["--model", model, good], stdout=subprocess.PIPE, text=True)
        assert p.returncode == 0 and p.stdout.count("\n") == 6, p.stdout
        # Usage and model errors: exit 2 with a message.
        for args in ([], ["--model", model], ["--model", text, good], ["--model", missing, good],
                     ["--model", model, "--top", "0", good], ["--bogus", good]):
            p = subprocess.run(exe + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
            assert p.returncode == 2 and p.stderr, (args, p.returncode, p.stderr)
        # Metadata that makes no sense is refused at open (exit 2, the field named), the
        # same way the library refuses it everywhere (core/meta.c); it used to run.
        sys.path.insert(0, TOOLS)
        import mofile
        tensors, meta = mofile.read(model)
        meta = {k: v for k, v in meta.items()
                if k not in ("mo.crc32", "mo.format", "mo.format_version")}
        for key, value, word in (("mo.mean", "[NaN,0.456,0.406]", "mo.mean = [NaN"),
                                 ("mo.std", "[0.229,-1,0.225]", "mo.std[1] = -1 must be positive"),
                                 ("mo.bn_eps", "1e30", "mo.bn_eps"),
                                 ("cls.crop", "4096", "model_memory_bytes")):
            bad = os.path.join(d, "bad.mo.safetensors")
            mofile.write(bad, tensors, dict(meta, **{key: value}))
            p = subprocess.run(exe + ["--model", bad, good], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            assert p.returncode == 2 and word in p.stderr and not p.stdout, (
                key, value, p.returncode, p.stderr)
    print("mo-classify CLI: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
