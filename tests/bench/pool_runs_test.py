#!/usr/bin/env python3
"""bench/pool_runs.py on made-up bench.py JSON files whose answer is known: the pooled
median, the rounds C won, the sign-test p-value, rows without an ONNX Runtime side left
out, and exit status 1 when no file holds per-round ratios."""

import importlib.util
import io
import json
import os
import sys
import tempfile
from contextlib import redirect_stdout


def load(path):
    spec = importlib.util.spec_from_file_location("pool_runs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_json(rounds_by_row, commit):
    rows = []
    for key, rounds in rounds_by_row.items():
        res = {"c_med": 1.0}
        if rounds is not None:
            res.update(paired=sorted(rounds)[len(rounds) // 2], paired_rounds=rounds)
        rows.append({"key": key, "threads": {"1": res}})
    return {"commit": commit, "rows": rows}


def main():
    pool = load(sys.argv[1])
    fails = []

    def check(ok, what):
        if not ok:
            fails.append(what)

    check(pool.sign_test_p(5, 5) == 1 / 32, "p(5 of 5) = 1/32")
    check(pool.sign_test_p(0, 7) == 1.0, "p(0 of n) = 1")
    check(abs(pool.sign_test_p(8, 10) - 56 / 1024) < 1e-15, "p(8 of 10) = 56/1024")
    with tempfile.TemporaryDirectory() as d:
        a, b, empty = (os.path.join(d, n) for n in ("a.json", "b.json", "empty.json"))
        with open(a, "w") as f:
            json.dump(run_json({"cls_s0": [0.9, 0.95, 1.1], "pipeline": None}, "abc1234"), f)
        with open(b, "w") as f:
            json.dump(run_json({"cls_s0": [0.8, 1.2]}, None), f)
        with open(empty, "w") as f:
            json.dump(run_json({"pipeline": None}, None), f)
        out = io.StringIO()
        with redirect_stdout(out):
            rc = pool.main([a, b])
        text = out.getvalue()
        check(rc == 0, "exit 0")
        # 5 rounds: 0.8 0.9 0.95 1.1 1.2 -> median 0.95, C faster in 3, p = 16/32
        line = next((x for x in text.splitlines() if x.startswith("| cls_s0 ")), "")
        check("| 5 | 0.950 [0.80-1.20] | 3 of 5 | 5.0e-01 |" in line, "pooled line: " + line)
        check("pipeline" not in text, "a row without ORT is left out")
        check("abc1234" in text and "commit not recorded" in text, "commits named")
        with redirect_stdout(io.StringIO()):
            check(pool.main([empty]) == 1, "no per-round ratios: exit 1")
    for f in fails:
        print("FAIL:", f)
    print("pool_runs: %d checks failed" % len(fails) if fails else "pool_runs: ok")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
