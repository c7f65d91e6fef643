"""Paired comparison of two runs scored on the same test images: AUC(A) - AUC(B) with a paired
bootstrap over source videos (groups), which is what a claim such as "full AIRL beats its RGB stream
by >= 3 AUC points" needs. Two separate 95% intervals that overlap neither prove nor refute it.

    python benchmarks/compare_runs.py RUN_A/eval/predictions/X.csv RUN_B/eval/predictions/Y.csv \
        [--names airl airl_rgb] [--json OUT.json]

The prediction CSVs are the ones ``fakescope evaluate`` writes. Rows are matched on the image's last two
path parts (``real/abc.jpg``), so runs scored from different copies of a data set still pair; every
image must be in both files with the same label, else the script says which are not.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def read_predictions(path: Path) -> dict[str, tuple[int, float, str]]:
    rows = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r.get("perturbation", "clean") not in ("", "clean"):
                continue
            key = "/".join(Path(r["path"]).parts[-2:])
            rows[key] = (1 if r["label"] == "fake" else 0, float(r["score"]), r["group"])
    return rows


def main(argv: list[str] | None = None) -> int:
    from fakescope.eval.metrics import paired_bootstrap_auc_difference

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--names", nargs=2, default=["A", "B"])
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    a, b = read_predictions(args.a), read_predictions(args.b)
    only = sorted(set(a) ^ set(b))
    if only:
        sys.exit(f"error: {len(only)} image(s) are scored by one run only (first: {only[0]}): compare runs "
                 "scored on the same split")  # fmt: skip
    keys = sorted(a)
    if any(a[k][0] != b[k][0] for k in keys):
        sys.exit("error: the two files disagree on labels: not the same data")
    res = paired_bootstrap_auc_difference(
        [a[k][0] for k in keys], [a[k][1] for k in keys], [b[k][1] for k in keys],
        groups=[a[k][2] for k in keys], n=args.bootstrap,
    )  # fmt: skip
    na, nb = args.names
    print(f"{len(keys)} images, {len({a[k][2] for k in keys})} groups")
    print(f"AUC {na} {res['auc_a']:.3f}, {nb} {res['auc_b']:.3f}")
    print(f"{na} - {nb} = {res['difference']:+.3f} [{res['ci_low']:+.3f}, {res['ci_high']:+.3f}] (paired 95% "
          f"bootstrap over groups); share of resamples with {na} <= {nb}: {res['p_not_better']:.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"a": str(args.a), "b": str(args.b), "names": args.names, **res}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
