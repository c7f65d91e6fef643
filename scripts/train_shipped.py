"""Retrain the detector that ships with fakescope, from ../shared/data, end to end (docs/model-card.md).

    python scripts/train_shipped.py [--data ../shared/data] [--out runs/shipped] [--threads 2] [--until STAGE]

Stages, each resumable (a finished stage is skipped, an interrupted training resumes):

1. ``manifests``: every shared source split by group with the default seeded 70/15/15 split, exactly as
   ``fakescope train`` splits one source alone, so each source's test split is the one a single-source
   run is tested on. Training pools the train splits of ``dfdc-faces``, ``ffhq-stylegan`` and
   ``ciplab-photoshop`` and **all** of ``dfdc-faces-more`` (its videos are in no test split); the pooled
   val splits choose the epoch, the calibration and the thresholds. Test splits are never read here.
   Rows carry their source in the ``dataset`` column (``dfdc`` for both DFDC sets), which
   ``train.balance_sources`` balances every batch over.
2. ``train``: ``configs/shipped/airl.yaml`` on the pooled manifest, ``--threads`` intra-op threads (the
   figure that makes the weights bit-identical from one run to the next on the same CPU).
3. ``calibrate``: ``fakescope.eval.calibrate.calibrate_run`` on the pooled val split: temperature or
   isotonic calibration, the operating threshold at 5 % false positives on validation reals, and the
   familiarity model (95 % of validation faces familiar).
4. ``export``: the best checkpoint in float16 with its SHA-256, the calibration and familiarity files,
   ``shipped.json`` (operating point and provenance: commit, the source manifests' SHA-256, this
   command, wall times) and the model card, into ``src/fakescope/resources/detector``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "shipped" / "airl.yaml"
RESOURCE = REPO / "src" / "fakescope" / "resources" / "detector"
#: source folder -> (name in the dataset column, whether all of it is training data)
SOURCES = {
    "dfdc-faces": ("dfdc", False),
    "dfdc-faces-more": ("dfdc", True),
    "ffhq-stylegan": ("ffhq-stylegan", False),
    "ciplab-photoshop": ("ciplab-photoshop", False),
}
STAGES = ("manifests", "train", "calibrate", "export")


def build_manifests(data: Path, out: Path) -> dict[str, Path]:
    """The pooled manifest (every row with its split and source) and one test and one val manifest per
    source; returns their paths by name."""
    from fakescope.data.config import SplitConfig
    from fakescope.data.manifest import read_manifest, split_by_group, write_manifest

    out.mkdir(parents=True, exist_ok=True)
    pooled = []
    paths: dict[str, Path] = {}
    for folder, (dataset, all_train) in SOURCES.items():
        rows = read_manifest(data / folder / "manifest.csv")
        parts = {"train": rows} if all_train else split_by_group(rows, SplitConfig())
        for split, split_rows in parts.items():
            # Groups are prefixed by folder, so no two sources (or the two DFDC sets) share a group.
            tagged = [
                replace(r, dataset=dataset, split=split, group=f"{folder}:{r.group}") for r in split_rows
            ]
            pooled += tagged
            if split in ("val", "test"):
                paths[f"{split}_{folder}"] = write_manifest(
                    tagged, out / f"{split}_{folder}.csv", relative_to="/"
                )
    paths["pooled"] = write_manifest(pooled, out / "manifest_pooled.csv", relative_to="/")
    return paths


def source_hashes(data: Path) -> dict[str, str]:
    from fakescope.utils.hashing import file_sha256

    return {folder: file_sha256(data / folder / "manifest.csv") for folder in SOURCES}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except OSError:
        return "unknown"


def train_stage(out: Path, manifest: Path, device: str, overrides: list[str]) -> dict:
    from fakescope.config import load_config
    from fakescope.train.trainer import train

    run = out / "run"
    cfg = load_config(CONFIG, [f"data.manifest={manifest}", f"device={device}", *overrides])
    t0 = time.time()
    res = train(cfg, run, resume=(run / "checkpoints" / "last.json").is_file())
    info = {"best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "epochs_budget": cfg.train.epochs,
            "stopped_early": res.stopped_early, "best_val_auc": res.best_val_auc,
            "train_seconds_this_call": round(time.time() - t0, 1)}  # fmt: skip
    (out / "train_summary.json").write_text(json.dumps(info, indent=2))
    return info


def calibrate_stage(out: Path, manifest: Path, device: str) -> dict:
    from fakescope.eval.calibrate import calibrate_run

    summary = calibrate_run(out / "run", manifest, split="val", device=device)
    data = summary if isinstance(summary, dict) else getattr(summary, "__dict__", {"summary": str(summary)})
    (out / "calibration_summary.json").write_text(json.dumps(data, indent=2, default=str))
    return data


def export_stage(out: Path, data: Path, command: str, threads: int, resource: Path) -> Path:
    """The best checkpoint in float16 (scores checked against float32) plus calibration, familiarity,
    provenance and the model card, written to a fresh folder and swapped in."""
    import torch

    from fakescope.inference.checkpoint import load_detector, save_checkpoint

    run = out / "run"
    detector, cfg, meta = load_detector(run, "cpu")
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in detector.state_dict().items()}
    tmp = resource.with_name(resource.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints").mkdir(parents=True)
    save_checkpoint(tmp / "checkpoints", "best", half, cfg, meta_extra_from(meta))
    for name in ("calibration.json", "familiarity.safetensors", "reliability.png"):
        if (run / name).is_file():
            shutil.copy2(run / name, tmp / name)
    card = REPO / "docs" / "model-card.md"
    if card.is_file():
        shutil.copy2(card, tmp / "MODEL_CARD.md")
    provenance = {
        "name": "fakescope-airl-pooled",
        "detector": meta.get("detector"),
        "commit": git_commit(),
        "command": command,
        "threads": threads,
        "torch": torch.__version__,
        "source_manifests_sha256": source_hashes(data),
        "pooled_manifest_sha256": _sha(out / "manifest_pooled.csv"),
        "train": json.loads((out / "train_summary.json").read_text()) if (out / "train_summary.json").is_file() else None,
        "weights": "float16",
    }  # fmt: skip
    (tmp / "shipped.json").write_text(json.dumps(provenance, indent=2) + "\n")
    shutil.rmtree(resource, ignore_errors=True)
    tmp.rename(resource)
    return resource


def meta_extra_from(meta: dict) -> dict:
    return meta


def _sha(path: Path) -> str:
    from fakescope.utils.hashing import file_sha256

    return file_sha256(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--out", default=str(REPO / "runs" / "shipped"))
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--threads", type=int, default=2, help="torch intra-op threads (weights are bit-identical per value)"
    )
    p.add_argument("--until", choices=STAGES, default="export", help="stop after this stage")
    p.add_argument(
        "--resource", default=str(RESOURCE), help="where the export stage writes the shipped folder"
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    command = "python scripts/train_shipped.py " + " ".join(argv if argv is not None else sys.argv[1:])
    stop = STAGES.index(args.until)
    manifests = build_manifests(data, out)
    print(f"[shipped] manifests in {out}", flush=True)
    if stop >= 1:
        print(
            json.dumps(train_stage(out, manifests["pooled"], args.device, args.overrides), indent=2),
            flush=True,
        )
    if stop >= 2:
        print(
            json.dumps(calibrate_stage(out, manifests["pooled"], args.device), indent=2, default=str),
            flush=True,
        )
    if stop >= 3:
        print(f"[shipped] exported to {export_stage(out, data, command, args.threads, Path(args.resource))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
