"""Copy an init learned by ``fakescope learn-inr-init`` into the package as the shipped init for its
resolution, with its provenance added to the safetensors metadata (issue 15; fakescope.inr.shipped).

The shipped inits were made with (one per resolution, on the shared DFDC faces; learn-inr-init reads
only the train split, by group, and uses validation faces for its hold-out check):

    fakescope learn-inr-init --manifest ../shared/data/dfdc-faces/manifest.csv \\
        --out runs/inr_init/siren_64px.safetensors --set inr.resolution=64
    python scripts/ship_inr_init.py runs/inr_init/siren_64px.safetensors \\
        --command "fakescope learn-inr-init ... --set inr.resolution=64" --fit-lr 3e-3 --fit-lr-reason "..."

The tensors are copied unchanged; only metadata is added (``provenance``, JSON). The file is
written atomically.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "src" / "fakescope" / "resources"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("learned", type=Path, help="a file written by fakescope learn-inr-init")
    p.add_argument("--command", required=True, help="the learn-inr-init command that made it (recorded)")
    p.add_argument("--data", default="shared DFDC face swaps (dfdc-faces/manifest.csv), train split by group",
                   help="what it was learned from (recorded)")  # fmt: skip
    p.add_argument("--fit-lr", type=float, default=None,
                   help="Adam rate fits from this init use when inr.lr is null (recorded as fit_lr; default: the "
                   "init's inner_lr); choose it on validation faces")  # fmt: skip
    p.add_argument("--fit-lr-reason", default="", help="how --fit-lr was chosen (recorded)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from fakescope.utils.atomic import atomic_write_bytes

    tensors = load_file(str(args.learned))
    with safe_open(str(args.learned), framework="pt") as fh:
        meta = dict(fh.metadata() or {})
    if meta.get("fakescope_learned_init") != "1":
        print(f"{args.learned}: not written by fakescope learn-inr-init", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    meta["provenance"] = json.dumps({
        "data": args.data,
        "command": args.command,
        "code_commit": commit,
        "learned_file_date": datetime.datetime.fromtimestamp(args.learned.stat().st_mtime, datetime.UTC)
        .strftime("%Y-%m-%d"),
    }, sort_keys=True)  # fmt: skip
    if args.fit_lr is not None:
        meta["fit_lr"] = repr(args.fit_lr)
        meta["fit_lr_reason"] = args.fit_lr_reason
    out = RESOURCES / f"inr_init_siren_{int(meta['resolution'])}px.safetensors"
    RESOURCES.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, save(tensors, metadata=meta))
    print(json.dumps({"out": str(out.relative_to(REPO)), "bytes": out.stat().st_size,
                      "holdout": json.loads(meta.get("holdout", "{}"))}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
