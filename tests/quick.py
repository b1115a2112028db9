"""MO_TEST_QUICK=1 for the Python tests: the same switch as tests/quick.h (./test.sh sets it
for the AArch64 step under qemu and the ThreadSanitizer build only; the release x86 run is
full). A test that reduces itself prints one line naming what it skipped (note()).

    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import quick
    if quick.on(): quick.note("imagenet-parity", "10 images of imagenet-samples ...")
"""
import os
import sys


def on():
    """True when MO_TEST_QUICK is set to anything but "" or "0"."""
    return os.environ.get("MO_TEST_QUICK", "") not in ("", "0")


def note(test, skipped, full=None):
    """The one line a reduced test prints: what it left out and where the full run is."""
    print("MO_TEST_QUICK: %s: %s; the full set: %s" % (
        test, skipped, full or "run without MO_TEST_QUICK (meson test -C BUILD %s)" % test))
    sys.stdout.flush()
