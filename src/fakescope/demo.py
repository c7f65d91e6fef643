"""The end-to-end demo on an embedded stand-in set: no download, no ``../shared``.

**The data is a stand-in, not a benchmark.** It is built from what installed packages ship:

- *real*: the 100 face crops of ``skimage.data.lfw_subset()`` (Labeled Faces in the Wild, 25×25
  grayscale), upscaled to ``size`` and given a fixed, seeded sensor grain (σ = ``grain`` / 255) so they
  carry camera-like high-frequency texture;
- *fake*: a **blended face swap** between the two faces of a pair. The donor's inner face (an ellipse
  over eyes, nose and mouth) is colour-matched to the target, passed through a *generator-style*
  resampling (area down-sampling by ``gen_factor`` then nearest-neighbour up-sampling, the 2×
  checkerboard trace of transposed-convolution decoders), and pasted with a feathered elliptical mask.
  The pasted region therefore lacks the grain and carries upsampling periodicity, and its border is a
  blend seam: the three kinds of cue (texture, frequency, boundary) that real face swaps leave.

Faces ``2k`` and ``2k+1`` form pair ``k``; the swaps ``2k ← 2k+1`` and ``2k+1 ← 2k`` are its fakes, and
the pair is the ``group`` (so a split by group never puts one identity on both sides).

After building the data, :func:`run_demo` runs the whole path: ``fit-inr``, training of a tiny
INFER-family and a tiny AIRL-family detector, ``evaluate``, and ``detect`` with an HTML report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fakescope.data.images import standin_photo
from fakescope.data.manifest import ManifestRow, write_manifest
from fakescope.utils.atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "DemoSettings",
    "StandinConfig",
    "STANDIN_NOTICE",
    "build_standin_dataset",
    "face_swap",
    "run_demo",
    "standin_photo",
    "write_standin_video",
]

STANDIN_NOTICE = (
    "STAND-IN DATA, NOT A BENCHMARK: real = scikit-image's LFW subset faces, fake = a synthetic blended "
    "face swap with generator-style resampling (fakescope.demo). Scores on it say the pipeline runs, "
    "not how well a detector finds real deepfakes."
)


@dataclass(frozen=True)
class StandinConfig:
    size: int = 64
    n_pairs: int = 50
    grain: float = 4.0
    gen_factor: int = 2
    feather: float = 0.08
    seed: int = 0


def _lfw_faces() -> np.ndarray:
    from skimage.data import lfw_subset

    # lfw_subset() holds 100 faces followed by 100 non-face patches.
    return (lfw_subset()[:100] * 255.0).round().astype(np.uint8)


def _upscale(gray: np.ndarray, size: int) -> np.ndarray:
    up = cv2.resize(gray, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return np.repeat(up[..., None], 3, axis=2)


def _ellipse_mask(size: int, feather: float) -> np.ndarray:
    # The inner face of a tight LFW crop: eyes, nose and mouth, not the hair line or the ears.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    r = np.sqrt(((xx - 0.5) / 0.30) ** 2 + ((yy - 0.56) / 0.36) ** 2)
    return np.clip((1.0 + feather - r) / (2 * feather), 0.0, 1.0)[..., None]


def _add_grain(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return img + rng.normal(0.0, sigma, size=img.shape[:2])[..., None].astype(np.float32)


def face_swap(
    target: np.ndarray, donor: np.ndarray, cfg: StandinConfig, rng: np.random.Generator
) -> np.ndarray:
    """Paste ``donor``'s inner face on ``target`` (both float32 HxWx3 in [0, 255], same size):
    colour transfer inside the mask, generator-style resampling, feathered elliptical blend."""
    size = target.shape[0]
    mask = _ellipse_mask(size, cfg.feather)
    inside = mask[..., 0] > 0.5
    d = donor.copy()
    # Reinhard-style statistics transfer so the seam is a texture cue, not a brightness jump.
    d_mean, d_std = d[inside].mean(0), d[inside].std(0) + 1e-3
    t_mean, t_std = target[inside].mean(0), target[inside].std(0) + 1e-3
    d = (d - d_mean) / d_std * t_std + t_mean
    small = cv2.resize(d, (size // cfg.gen_factor,) * 2, interpolation=cv2.INTER_AREA)
    d = cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST)
    target = _add_grain(target, cfg.grain, rng)
    return mask * d + (1.0 - mask) * target


def _to_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(np.clip(img, 0, 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
    )
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def build_standin_dataset(out_dir: str | os.PathLike[str], cfg: StandinConfig | None = None) -> Path:
    """Write ``real/*.png``, ``fake/*.png``, ``manifest.csv`` (``path,label,group,method``) and
    ``STANDIN.txt`` under ``out_dir``; returns the manifest path. Deterministic for a given config."""
    cfg = cfg or StandinConfig()
    out = Path(out_dir)
    faces = _lfw_faces()
    n_pairs = min(cfg.n_pairs, len(faces) // 2)
    rng = np.random.default_rng(cfg.seed)
    rows: list[ManifestRow] = []
    for k in range(n_pairs):
        a, b = (_upscale(faces[2 * k + i], cfg.size) for i in (0, 1))
        group = f"pair{k:03d}"
        for i, (target, donor) in enumerate(((a, b), (b, a))):
            idx = 2 * k + i
            real = _add_grain(target, cfg.grain, rng)
            fake = face_swap(target, donor, cfg, rng)
            for label, img, sub, method in ((0, real, "real", ""), (1, fake, "fake", "blend_swap")):
                path = out / sub / f"lfw{idx:03d}.png"
                atomic_write_bytes(path, _to_png(img))
                rows.append(
                    ManifestRow(path=str(path), label=label, group=group, method=method, dataset="standin")
                )
    atomic_write_text(
        out / "STANDIN.txt", STANDIN_NOTICE + "\n\nsettings: " + json.dumps(cfg.__dict__) + "\n"
    )
    return write_manifest(rows, out / "manifest.csv")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo. The defaults finish in a few minutes on a 2-core CPU; ``quick()`` is the
    CI-sized variant the tests run."""

    n_pairs: int = 30
    image_size: int = 64
    inr_resolution: int = 32
    inr_max_steps: int = 300
    epochs: int = 4
    batch_size: int = 16
    infer_backbone: str = "lite0"
    airl_backbone: str = "lite0"
    pretrained: bool = True
    video_frames: int = 6
    detect_per_class: int = 2
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        """CI-sized: 8 pairs, 16-px INR, one epoch, the tiny random backbones (no pretrained weights)."""
        return cls(
            n_pairs=8,
            inr_resolution=16,
            inr_max_steps=150,
            epochs=1,
            batch_size=8,
            infer_backbone="clip_tiny",
            airl_backbone="efficientnet_tiny",
            pretrained=False,
            video_frames=3,
            detect_per_class=1,
        )


def write_standin_video(
    path: str | os.PathLike[str], n_frames: int = 24, fps: int = 8, size: int = 320
) -> Path:
    """A short real (unmanipulated) clip: a slow zoom into the astronaut photograph, H.264 in MP4,
    so the demo shows ``detect`` on a video (frame sampling, per-frame scores, score over time)."""
    import av

    photo = standin_photo()
    h, w = photo.shape[:2]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            zoom = 1.0 - 0.25 * i / max(n_frames - 1, 1)
            side = int(min(h, w) * zoom)
            y0, x0 = int(0.02 * h * i / n_frames), (w - side) // 2
            crop = cv2.resize(
                photo[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA
            )
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(crop), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


def demo_config(
    data_manifest: Path, out: Path, s: DemoSettings, model: str, device: str, progress: bool
) -> Any:
    """The experiment config of one demo run (also saved in its run directory)."""
    from fakescope.config import config_from_dict

    return config_from_dict(
        {
            "name": f"demo_{model}",
            "seed": s.seed,
            "device": device,
            "data": {"manifest": str(data_manifest), "image_size": s.image_size},
            "inr": {
                "resolution": s.inr_resolution,
                "max_steps": s.inr_max_steps,
                "cache_dir": str(out / "cache"),
            },
            "model": {
                "name": model,
                "backbone": s.infer_backbone if model == "infer" else s.airl_backbone,
                "pretrained": s.pretrained,
            },
            "train": {
                "epochs": s.epochs,
                "batch_size": s.batch_size,
                "progress": progress,
                "feature_cache_dir": str(out / "cache"),
                "early_stopping_patience": max(s.epochs, 1),
            },
            "eval": {"bootstrap": 200, "frames_per_video": s.video_frames},
        },
        source=f"demo config ({model})",
    )


@dataclass
class DemoResult:
    data_manifest: Path
    runs: dict[str, Path]
    eval_dir: Path
    report_index: Path
    seconds: float


def run_demo(
    out_dir: str | os.PathLike[str],
    settings: DemoSettings | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Any = print,
) -> DemoResult:
    """The whole path on the embedded stand-in set: build data -> fit-inr -> train a tiny INFER-family
    and a tiny AIRL-family detector -> evaluate on the held-out groups -> detect with HTML reports."""
    import time

    from fakescope.api import detect_paths, load
    from fakescope.data.manifest import read_manifest, split_by_group
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.inr.run import fit_manifest
    from fakescope.train.trainer import train
    from fakescope.utils.runtime import seed_everything

    s = settings or DemoSettings()
    out = Path(out_dir)
    t0 = time.perf_counter()
    seed_everything(s.seed)
    log("=" * 100)
    log(STANDIN_NOTICE)
    log("=" * 100)

    log(f"[1/5] building the stand-in set ({s.n_pairs} face pairs, {s.image_size} px) in {out / 'data'}")
    manifest = build_standin_dataset(
        out / "data", StandinConfig(size=s.image_size, n_pairs=s.n_pairs, seed=s.seed)
    )
    rows = read_manifest(manifest)
    cfgs = {m: demo_config(manifest, out, s, m, device, progress) for m in ("infer", "airl")}

    log(
        f"[2/5] fit-inr: one SIREN per face at {s.inr_resolution} px, PCA heatmaps per layer -> {out / 'inr'}"
    )
    summary = fit_manifest(
        rows,
        cfgs["infer"].inr,
        out / "inr",
        device=device,
        cache_dir=out / "cache",
        figures=2,
        progress=progress,
    )
    log(
        f"      {summary.get('n')} faces, mean PSNR {summary.get('mean_psnr', float('nan')):.1f} dB, "
        f"{100 * summary.get('share_reached', 0):.0f}% reached the target"
    )

    runs: dict[str, Path] = {}
    for model in ("infer", "airl"):
        log(
            f"[3/5] train {model} ({'INFER' if model == 'infer' else 'AIRL'} family, backbone "
            f"{cfgs[model].model.backbone}, {s.epochs} epoch(s)) -> {out / 'runs' / model}"
        )
        res = train(cfgs[model], out / "runs" / model)
        log(f"      best val AUC {res.best_val_auc:.3f} at epoch {res.best_epoch}")
        runs[model] = res.run_dir

    log(f"[4/5] evaluate both runs on the held-out test groups -> {out / 'eval'}")
    evaluate_runs(
        [str(runs["infer"]), str(runs["airl"])],
        [str(manifest)],
        out / "eval",
        device=device,
        progress=progress,
    )
    for md in sorted((out / "eval" / "metrics").glob("*.md")):
        log(md.read_text(encoding="utf-8").rstrip())

    log("[5/5] detect with HTML reports (test-split crops, a photograph, a video)")
    test_rows = split_by_group(rows, cfgs["infer"].data.split)["test"]
    picks = [
        r.path for label in (0, 1) for r in [r for r in test_rows if r.label == label][: s.detect_per_class]
    ]
    photo = out / "data" / "photo" / "astronaut.png"
    from fakescope.explain.figures import save_image

    save_image(standin_photo(), photo)
    video = write_standin_video(
        out / "data" / "video" / "astronaut_zoom.mp4", n_frames=max(4 * s.video_frames, 12)
    )
    paths = [*picks, str(photo), str(video)]
    aligned = [True] * len(picks) + [False, False]
    reports = {}
    for model, run in runs.items():
        det = load(run, device=device)
        outcome = detect_paths(
            det, paths, out / "report" / model, progress=progress, banner=STANDIN_NOTICE, aligned=aligned
        )
        for _, err in outcome.errors:
            log(f"      {model}: {err}")
        log(outcome.table())
        reports[model] = outcome.report_index
    if shipped := _shipped_or_none(log):  # the real detector beside the stand-ins: no stand-in banner
        det = load(shipped, device=device)
        outcome = detect_paths(det, paths, out / "report" / "shipped", progress=progress, aligned=aligned)
        for _, err in outcome.errors:
            log(f"      shipped: {err}")
        log("      the shipped detector (real data, docs/model-card.md) on the same files:")
        log(outcome.table())
        reports[SHIPPED_REPORT] = outcome.report_index
    index = _write_demo_index(out / "report", reports)
    seconds = time.perf_counter() - t0
    log(f"demo finished in {seconds:.0f} s. Report: {index}")
    return DemoResult(manifest, runs, out / "eval", index, seconds)


#: the demo index's name for the shipped detector's reports (the others are stand-in runs)
SHIPPED_REPORT = "shipped detector (trained on real data; not a stand-in)"


def _shipped_or_none(log: Any) -> Path | None:
    """The shipped detector's folder, or ``None`` (with a line) in an install that has none."""
    from fakescope.errors import ModelLoadError
    from fakescope.inference.shipped import shipped_model_dir

    try:
        return shipped_model_dir()
    except ModelLoadError as err:
        log(f"      {err}")
        return None


def _write_demo_index(folder: Path, reports: dict[str, Path | None]) -> Path:
    import html

    links = "".join(
        f"<li><a href='{html.escape(os.path.relpath(p, folder))}'>{html.escape(m)}</a>"
        f"{'' if m == SHIPPED_REPORT else ' (stand-in)'}</li>"
        for m, p in reports.items()
        if p is not None
    )
    text = (
        "<!doctype html><html><head><meta charset='utf-8'><title>fakescope demo</title></head>"
        "<body style='font-family:sans-serif;margin:24px'><h1>fakescope demo</h1>"
        f"<p style='background:#fff3cd;padding:8px'>{html.escape(STANDIN_NOTICE)}</p>"
        f"<p>Reports per model:</p><ul>{links}</ul></body></html>"
    )
    path = folder / "index.html"
    atomic_write_text(path, text)
    return path
