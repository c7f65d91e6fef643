"""Do the INR heatmaps of a face survive a JPEG Q 90 re-encode? Per layer and map rule (issue 11,
"the layer-1 heatmap sign"; docs/inr.md).

    python benchmarks/layer_map_jpeg.py [DATA] --resolution 64 -n 72   # -> results/layer_map_jpeg_64.json

For ``n`` DFDC crops (manifest rows from ``--offset``, real and fake as listed), the crop and its JPEG
Q 90 re-encode are each fitted by the default INR at ``--resolution`` from the same initialisation.
Per activated layer it reports the ratio of the top two eigenvalues of the activation covariance
(near 1 = the first principal component is ill-defined), and, for the paper's PCA map (luminance sign
rule) and the L2-norm map, the median clean-vs-JPEG correlation, the share of faces with r > 0.7 and
the share with r < -0.7 (a flipped map).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fakescope.data.images import load_image_rgb
from fakescope.inr import InrConfig
from fakescope.inr.engine import _targets, resize_for_inr
from fakescope.inr.fitting import fit_batch
from fakescope.inr.heatmaps import _as_real, l2norm_maps, pca_maps
from fakescope.inr.models import coordinate_grid, forward, load_init
from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]


def jpeg_q90(image: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def layer_activations(images: list[np.ndarray], cfg: InrConfig) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Fit the images as one batch; return each activated layer's [B, N, D] output and the luminance."""
    cpu = torch.device("cpu")
    coords = coordinate_grid(cfg.resolution, cpu)
    tgt, luma = _targets(images, cfg, cpu)
    params, _ = fit_batch(tgt, load_init(cfg), cfg, coords)
    with torch.no_grad():
        _, acts = forward(params, coords, cfg, return_activations=True)
    return acts, luma


def eigen_ratio(acts: torch.Tensor) -> np.ndarray:
    """lambda_2 / lambda_1 of each image's activation covariance."""
    x = _as_real(acts).double()
    xc = x - x.mean(1, keepdim=True)
    w = torch.linalg.eigvalsh(xc.transpose(1, 2) @ xc)
    return (w[:, -2] / w[:, -1]).numpy()


def map_correlation(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)).numpy()


def stability(r: np.ndarray) -> dict:
    return {"median_r": round(float(np.median(r)), 3), "share_r_gt_0.7": round(float((r > 0.7).mean()), 3),
            "share_flipped": round(float((r < -0.7).mean()), 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("-n", type=int, default=72)
    p.add_argument("--offset", type=int, default=1000, help="first manifest row used")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # one image batch; measured faster than spinning threads on a shared CPU
    root = Path(args.data) / "dfdc-faces"
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[args.offset : args.offset + args.n]
    cfg = InrConfig(
        resolution=args.resolution, init_file=None
    )  # the seeded init these figures were made with
    t0 = time.time()
    originals = [load_image_rgb(root / r["path"]) for r in rows]
    clean = layer_activations([resize_for_inr(im, cfg.resolution) for im in originals], cfg)
    jpeg = layer_activations([resize_for_inr(jpeg_q90(im), cfg.resolution) for im in originals], cfg)
    layers = {}
    for k, (ac, aj) in enumerate(zip(clean[0], jpeg[0], strict=True)):
        ratio = eigen_ratio(ac)
        layers[f"layer{k + 1}"] = {
            "eigen_ratio_21": {
                q: round(float(np.quantile(ratio, v)), 3)
                for q, v in (("p10", 0.1), ("median", 0.5), ("p90", 0.9))
            },  # fmt: skip
            "pca": stability(map_correlation(pca_maps(ac, clean[1]), pca_maps(aj, jpeg[1]))),
            "l2norm": stability(map_correlation(l2norm_maps(ac), l2norm_maps(aj))),
        }
    result = {"resolution": cfg.resolution, "n_faces": len(rows), "manifest_rows": [args.offset, args.offset + len(rows)],
              "seconds": round(time.time() - t0, 1), "layers": layers}  # fmt: skip
    out = (
        Path(args.out)
        if args.out
        else REPO / "benchmarks" / "results" / f"layer_map_jpeg_{cfg.resolution}.json"
    )
    atomic_write_json(out, result)
    for name, v in layers.items():
        print(name, v)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
