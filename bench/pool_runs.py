#!/usr/bin/env python3
"""Pool the alternated rounds of several bench.py runs: one line per row and thread count.

    python3 bench/pool_runs.py docs/bench-runs/run8.json docs/bench-runs/run9.json ...

bench.py times C and ONNX Runtime in alternating rounds and records each round's ratio of
medians (C / ORT) in its JSON ("paired_rounds"). One run of 5-10 rounds on a shared
2-core machine can land on either side of 1.0 for rows where the engines are close; this
pools the rounds of every run given (same machine, same code) and prints, per row:
- the median of all per-round ratios, with their lowest and highest;
- in how many rounds C was faster, and the one-sided sign-test p-value of that count if
  the engines were equally fast (each round a fair coin);
- the median of each run's own ratio, run by run.
Standard library only. Runs made with different code should not be pooled.
"""

import argparse
import json
import math
import statistics
import sys


def sign_test_p(wins, n):
    """Chance of at least `wins` C-faster rounds out of n if either engine were as likely
    to win a round."""
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2.0 ** n if n else 1.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", help="bench.py --json files")
    a = ap.parse_args(argv)
    pooled = {}  # (row, threads) -> list of per-round ratios
    per_run = {}  # (row, threads) -> list of each run's paired ratio
    commits = []
    for path in a.json:
        with open(path) as f:
            run = json.load(f)
        commits.append(run.get("commit") or "commit not recorded")
        for row in run["rows"]:
            for t, res in row.get("threads", {}).items():
                rounds = res.get("paired_rounds")
                if not rounds:
                    continue  # no ONNX Runtime side, or a JSON from before paired_rounds
                key = (row["key"], int(t))
                pooled.setdefault(key, []).extend(rounds)
                per_run.setdefault(key, []).append(res["paired"])
    if not pooled:
        print("no per-round ratios in these files (bench.py writes them as paired_rounds)",
              file=sys.stderr)
        return 1
    print("%d runs pooled: %s" % (len(a.json), ", ".join(
        "%s (%s)" % (p, c) for p, c in zip(a.json, commits))))
    print()
    print("| row | thr | rounds | median C/ORT [lowest-highest] | C faster | sign-test p | "
          "each run's paired C/ORT |")
    print("|---|---|---|---|---|---|---|")
    for (key, t), r in pooled.items():
        wins = sum(1 for x in r if x < 1.0)
        print("| %s | %d | %d | %.3f [%.2f-%.2f] | %d of %d | %.1e | %s |"
              % (key, t, len(r), statistics.median(r), min(r), max(r), wins, len(r),
                 sign_test_p(wins, len(r)), " / ".join("%.2f" % x for x in per_run[(key, t)])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
