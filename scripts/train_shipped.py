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
   familiarity model (``mahalanobis_layers`` unless ``--familiarity``; 95 % of validation faces familiar).
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

from fakescope.utils.atomic import atomic_write_json, atomic_write_text

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
#: the familiarity model, chosen by benchmarks/familiarity_loso.py (docs/model-card.md): the stage-wise
#: Mahalanobis ensemble separates every left-out source; the penultimate features alone invert on DFDC
FAMILIARITY = "mahalanobis_layers"


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


def cpu_record() -> dict:
    """The CPU that trained: its model name and the vector instructions ATen dispatches to (AVX2,
    AVX512, ...). Bit-identical weights are promised only for the same thread count on a CPU with the
    same record, since each instruction set sums in its own order."""
    import platform

    import torch

    from fakescope.inference.precision import cpu_has_native_bf16

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"model": model or platform.processor() or "unknown",
            "capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": cpu_has_native_bf16()}  # fmt: skip


def train_stage(out: Path, manifest: Path, device: str, overrides: list[str]) -> dict:
    from fakescope.config import load_config
    from fakescope.train.trainer import train

    run = out / "run"
    summary = out / "train_summary.json"
    if summary.is_file():  # a finished training is not set up again (its wall time stays the real one)
        done = json.loads(summary.read_text())
        if done["stopped_early"] or done["epochs_run"] >= done["epochs_budget"]:
            return done
    cfg = load_config(CONFIG, [f"data.manifest={manifest}", f"device={device}", *overrides])
    commit_file = out / "train_commit.txt"  # the code that trained (a resumed run keeps its first commit)
    if not commit_file.is_file():
        atomic_write_text(commit_file, git_commit() + "\n")
    t0 = time.time()
    res = train(cfg, run, resume=(run / "checkpoints" / "last.json").is_file())
    info = {"best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "epochs_budget": cfg.train.epochs,
            "stopped_early": res.stopped_early, "time_cut": res.time_cut, "best_val_auc": res.best_val_auc,
            "train_seconds_this_call": round(time.time() - t0, 1), "cpu": cpu_record()}  # fmt: skip
    atomic_write_json(summary, info)
    return info


def calibrate_stage(out: Path, manifest: Path, device: str, familiarity: str = FAMILIARITY) -> dict:
    from fakescope.eval.calibrate import calibrate_run

    # Familiarity is fitted on every training face (not a subsample that DFDC's 16,200 would dominate).
    summary = calibrate_run(
        out / "run", manifest, split="val", device=device, max_train=25_000, familiarity=familiarity
    )
    atomic_write_text(out / "calibration_summary.json", json.dumps(summary, indent=2, default=str))
    return summary


def export_stage(out: Path, data: Path, command: str, threads: int, resource: Path) -> Path:
    """The best checkpoint in float16 plus calibration, familiarity, provenance and the model card,
    written to a fresh folder, checked (float16 scores within 1e-3 of float32 on validation faces), then
    swapped in."""
    import torch

    from fakescope.inference.checkpoint import load_detector, save_checkpoint

    run = out / "run"
    detector, cfg, meta = load_detector(run, "cpu")
    tmp = resource.with_name(resource.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # Float16 halves the wheel, but only when it moves no score by more than 1e-3; else float32.
    for weights in ("float16", "float32"):
        model, _, _ = load_detector(run, "cpu")  # fresh: .half() converts in place
        model = model.half() if weights == "float16" else model
        save_checkpoint(tmp / "checkpoints", "best", model=model, cfg=cfg, detector_name=meta["detector"],
                        epoch=meta["epoch"], step=meta["step"], val_metrics=meta.get("val_metrics"),
                        val_threshold=meta.get("val_threshold"))  # fmt: skip
        for name in ("calibration.json", "familiarity.safetensors", "reliability.png"):
            shutil.copy2(run / name, tmp / name)
        worst = half_precision_gap(run, tmp, out / "val_dfdc-faces.csv")
        print(
            f"[shipped] {weights} weights: largest score change on 200 validation faces {worst:.2e}",
            flush=True,
        )
        if worst <= 1e-3:
            break
    train_info = json.loads((out / "train_summary.json").read_text())
    provenance = {
        "name": "fakescope-airl-pooled",
        "summary": "AIRL family (Lite0 RGB + block-DCT), trained on DFDC, FFHQ-StyleGAN and CIPLAB train "
        "splits; calibrated; research and non-commercial use only",
        "detector": meta.get("detector"),
        "commit": (out / "train_commit.txt").read_text().strip(),
        "export_commit": git_commit(),
        "command": command,
        "threads": threads,
        "torch": torch.__version__,
        "source_manifests_sha256": source_hashes(data),
        "pooled_manifest_sha256": _sha(out / "manifest_pooled.csv"),
        "train": train_info,
        "weights": weights,
        "max_score_gap": worst,
    }
    atomic_write_json(tmp / "shipped.json", provenance)
    write_card_blocks(out, provenance, tmp)
    shutil.copy2(REPO / "docs" / "model-card.md", tmp / "MODEL_CARD.md")
    shutil.rmtree(resource, ignore_errors=True)
    tmp.rename(resource)
    return resource


def write_card_blocks(out: Path, provenance: dict, folder: Path) -> None:
    """The calibration and provenance blocks of docs/model-card.md."""
    from fakescope.train.trainer import budget_cut
    from fakescope.utils.docblocks import write_blocks

    cal = json.loads((out / "calibration_summary.json").read_text())
    fam = cal["familiarity"]
    t = provenance["train"]
    size_mb = (folder / "checkpoints" / "best.safetensors").stat().st_size / 1e6
    calibration = "\n".join([
        "| fitted on the pooled validation split | value |",
        "| --- | --- |",
        f"| calibration method (2-fold cross-fitted choice) | {cal['method']}"
        + (f", T = {cal['temperature']:.3f}" if cal.get("temperature") else "") + " |",
        f"| ECE before → after (validation) | {cal['ece_before']['ece']:.3f} → {cal['ece_after']['ece']:.3f} |",
        f"| operating threshold (calibrated probability) | {cal['threshold_probability']:.3f} "
        f"(target {100 * cal['target_fpr']:.0f} % false positives on validation reals; got "
        f"{100 * cal['val_fpr']:.1f} %, detecting {100 * cal['val_tpr']:.1f} % of validation fakes) |",
        f"| familiarity | {fam['method']}, threshold {fam['threshold']:.2f} ({100 * fam['familiar_fraction_val']:.1f} % "
        f"of validation faces familiar), fitted on {fam['n_train']} training faces |",
    ])  # fmt: skip
    provenance_block = "\n".join([
        f"- **Command:** `{provenance['command']}` (torch {provenance['torch']}, {provenance['threads']} thread(s)"
        + (f", trained on {t['cpu']['model']} ({t['cpu']['capability']})" if t.get("cpu") else "")
        + "; the same thread count on the same CPU gives bit-identical weights).",
        f"- **Commit:** trained at `{provenance['commit']}`, exported at `{provenance['export_commit']}`.",
        f"- **Training:** best validation AUC {t['best_val_auc']:.3f} at epoch {t['best_epoch']} of "
        f"{t['epochs_run']} run ({t['epochs_budget']} budgeted"
        + (", stopped early" if t.get("stopped_early") else "")
        + (", **budget cut**: it reached its epoch cap or time limit, more training might help"
           if budget_cut(epochs_run=t["epochs_run"], epochs_budget=t["epochs_budget"],
                         stopped_early=t["stopped_early"], time_cut=bool(t.get("time_cut"))) else "")
        + f"); training wall time of the last call {t['train_seconds_this_call'] / 60:.0f} min.",
        f"- **Weights:** {size_mb:.1f} MB {provenance['weights']} (float16 is used only when it moves no "
        f"score by more than 1e-3); largest score change against the trained weights on 200 validation "
        f"faces {provenance['max_score_gap']:.1e}.",
        "- **Source manifests (SHA-256):** " + ", ".join(f"{k} `{v[:12]}`" for k, v in
                                                         provenance["source_manifests_sha256"].items()) + ".",
    ])  # fmt: skip
    write_blocks(
        REPO / "docs" / "model-card.md",
        {"CARD_CALIBRATION": calibration, "CARD_PROVENANCE": provenance_block},
    )


def half_precision_gap(run: Path, half: Path, manifest: Path, n: int = 200) -> float:
    """Largest |score(float16 weights) - score(float32 weights)| over ``n`` validation faces."""
    from fakescope.api import load
    from fakescope.data.manifest import read_manifest

    full, small = load(run), load(half)
    rows = read_manifest(manifest)[:n]
    return max(abs(full.predict(r.path, aligned=True).faces[0].score - small.predict(r.path, aligned=True).faces[0].score)
               for r in rows)  # fmt: skip


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
    p.add_argument("--familiarity", default=FAMILIARITY, choices=["mahalanobis", "mahalanobis_layers", "energy"],
                   help=f"the familiarity model the calibrate stage fits (default {FAMILIARITY})")  # fmt: skip
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
            json.dumps(
                calibrate_stage(out, manifests["pooled"], args.device, args.familiarity),
                indent=2,
                default=str,
            ),
            flush=True,
        )
    if stop >= 3:
        print(f"[shipped] exported to {export_stage(out, data, command, args.threads, Path(args.resource))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
