"""DCT coefficient-importance map of trained ``airl`` / ``airl_freq`` runs (issue 14): for each of the 64
positions of the 8×8 luma block DCT, the mean |gradient| of the fake log-odds over a test set
(:func:`fakescope.explain.dct_importance.dct_importance`), drawn as an 8×8 heat grid.

    python benchmarks/dct_importance.py --run runs/learning_curve/runs/airl__all \
        --run runs/learning_curve/runs/airl_freq__all --data dfdc-faces --max-images 300 \
        --out runs/dct_importance

Protocol: the images are the ``--split`` (default ``test``) split of ``--data`` as ``evaluate`` splits it
(a set the run trained on is split by group exactly as training split it), the first ``--max-images``
of it in manifest order, both classes, un-augmented, at the run's ``data.image_size``. Runs are only
read. Output per run: ``OUT/<run>.json`` (the grid, its normalised form, the image count, the run's
cutoff) and ``OUT/<run>.png``; and the share of the importance that falls inside the ``u < c, v < c``
corner the DCT stream removes versus outside it is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def importance_for_run(
    run: Path, data: str, split: str, max_images: int, batch_size: int, device: str
) -> dict:
    import torch

    from fakescope.data.dataset import FaceDataset, collate_batch
    from fakescope.explain.dct_importance import dct_importance
    from fakescope.inference.checkpoint import load_detector
    from fakescope.rows.datasets import resolve_dataset
    from fakescope.rows.splits import rows_to_score

    detector, cfg, _ = load_detector(run, torch.device(device))
    ds = resolve_dataset(data)
    rows, part = rows_to_score(ds, cfg, split)
    rows = rows[:max_images]
    faces = FaceDataset(rows, cfg.data.image_size)
    loader = torch.utils.data.DataLoader(
        faces, batch_size=batch_size, shuffle=False, collate_fn=collate_batch
    )
    grid, n = dct_importance(detector, (b["image"].to(device) for b in loader), block=cfg.model.dct_block)
    c = cfg.model.dct_cutoff
    low = float(grid[:c, :c].sum() / grid.sum()) if grid.sum() > 0 else float("nan")
    return {
        "run": str(run), "detector": cfg.model.name, "dataset": ds.name, "split": part, "images": n,
        "image_size": cfg.data.image_size, "dct_cutoff": c, "grid": grid.tolist(),
        "grid_normalised": (grid / grid.max()).tolist() if grid.max() > 0 else grid.tolist(),
        "share_in_removed_corner": low,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, help="a trained run folder (repeatable)")
    p.add_argument("--data", default="dfdc-faces", help="a set name under ../shared/data, folder or manifest")
    p.add_argument("--split", default="test")
    p.add_argument("--max-images", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(REPO / "runs" / "dct_importance"))
    args = p.parse_args(argv)
    import numpy as np

    from fakescope.explain.dct_importance import importance_figure
    from fakescope.explain.figures import save_figure

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for run in map(Path, args.run):
        rec = importance_for_run(run, args.data, args.split, args.max_images, args.batch_size, args.device)
        name = run.name
        (out / f"{name}.json").write_text(json.dumps(rec, indent=2))
        title = f"{rec['detector']} ({name}): {rec['images']} {rec['dataset']} {rec['split']} faces"
        save_figure(
            importance_figure(np.asarray(rec["grid"]), title, rec["dct_cutoff"]), out / f"{name}.png", dpi=120
        )
        print(f"{name}: {rec['images']} images; share of importance in the removed u,v < {rec['dct_cutoff']} "
              f"corner {rec['share_in_removed_corner']:.3f}; figure {out / (name + '.png')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
