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
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from fakescope.errors import InputError
    from fakescope.eval.metrics import paired_bootstrap_auc_difference
    from fakescope.eval.predictions import paired_clean_scores

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--names", nargs=2, default=["A", "B"])
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    try:
        labels, sa, sb, groups = paired_clean_scores(args.a, args.b)
    except InputError as err:
        sys.exit(f"error: {err}")
    res = paired_bootstrap_auc_difference(labels, sa, sb, groups=groups, n=args.bootstrap)
    na, nb = args.names
    print(f"{len(labels)} images, {len(set(groups))} groups")
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
