"""The HTML report of one input (image or video) scored by ``fakescope detect``.

A report is a folder: ``index.html`` plus the images it shows, next to it (so the folder can be
zipped, mailed or served as is; no network, no script). It shows what a reviewer needs to trust or
doubt a score:

- the aligned crop of every face, its score and the decision threshold (the one chosen on the run's
  validation split; docs/design.md, "Model selection");
- INR heatmaps per layer for INFER-family detectors (INFER §3.4, Fig. 3; anonymous NeurIPS-format
  submission);
- Grad-CAM on the RGB / CLIP branch (INFER supplementary A.8, Fig. 12; AIRL (Parihar), §VI-A);
- the block-DCT high-frequency residual for AIRL-family detectors (AIRL §III-C);
- for a video, the score over time and the frames with no face.

:func:`write_index` writes one page linking every input's report.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.explain.config import ExplainConfig
from fakescope.explain.figures import (
    cam_overlay,
    dct_residual_image,
    heatmap_figure,
    save_figure,
    save_image,
    score_over_time_figure,
)
from fakescope.inference.familiarity import CAUTION
from fakescope.utils.atomic import atomic_write_text

__all__ = ["FaceExplanation", "report_name", "write_index", "write_report"]


@dataclass
class FaceExplanation:
    """What the report shows for one face. Any part may be ``None`` when the model family has none."""

    crop: np.ndarray  # uint8 HxWx3, the aligned crop the detector scored
    cam: np.ndarray | None = None  # [H, W] in [0, 1]
    dct_residual: np.ndarray | None = None  # [H, W] raw high-pass coefficients
    heatmaps: np.ndarray | None = None  # [L, R, R] standardised INR heatmaps
    cam_note: str = ""  # why a Grad-CAM is missing, when it is


def report_name(source: str, index: int) -> str:
    """A folder name for an input's report: its file name made safe, prefixed by its position."""
    stem = Path(str(source)).name or "input"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "input"
    return f"{index:03d}_{safe[:80]}"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1150px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px} .muted{color:#666;font-size:13px}
.verdict{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:600;font-size:15px}
.fake{background:#c0392b} .real{background:#27ae60} .none{background:#7f8c8d}
.card{border:1px solid #ddd;border-radius:6px;padding:12px;margin:12px 0}
.row{display:flex;gap:14px;flex-wrap:wrap;align-items:flex-start}
figure{margin:0;text-align:center} figcaption{font-size:12px;color:#555;margin-top:3px}
img.sq{width:200px;height:200px;image-rendering:pixelated;border:1px solid #ccc}
img.wide{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.banner{background:#fff3cd;border:1px solid #e0c36c;padding:8px 12px;border-radius:4px;font-size:13px}
"""


def _verdict(score: float | None, label: str | None) -> str:
    if score is None or label is None:
        return '<span class="verdict none">no score</span>'
    return f'<span class="verdict {label}">{label.upper()} &middot; P(fake) = {score:.3f}</span>'


def _fmt_box(box: list[float] | None) -> str:
    return "—" if box is None else "(" + ", ".join(f"{v:.0f}" for v in box) + ")"


def write_report(
    prediction: Mapping[str, Any],
    explanations: list[FaceExplanation],
    out_dir: str | os.PathLike[str],
    cfg: ExplainConfig | None = None,
    banner: str | None = None,
) -> Path:
    """Write ``out_dir/index.html`` and its images for one input; returns the HTML path.

    ``prediction`` is plain data: the JSON of ``fakescope detect --json`` for this input
    (``Prediction.to_dict()``) plus ``explained`` and ``error`` (``Prediction.report_data()``).
    ``explanations[i]`` belongs to ``prediction["faces"][shown[i]]`` where ``shown`` is
    ``prediction["explained"]`` (the faces chosen for explanation: all faces of an image, the
    highest-scoring frames of a video).
    """
    cfg = cfg or ExplainConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = prediction
    parts = _header(p, banner) + _verdict_line(p)
    if p["kind"] == "video":
        parts += _score_over_time(p, out)
    parts += _faces_heading(p, explanations)
    for k, (face_idx, ex) in enumerate(zip(p["explained"], explanations, strict=True)):
        parts += _face_card(p["faces"][face_idx], face_idx, ex, f"face{k:02d}", out, cfg)
    if not p["faces"]:
        parts.append("<p>No face was found, so there is nothing to explain.</p>")
    parts += [_footer(any(ex.heatmaps is not None for ex in explanations)), "</body></html>"]
    path = out / "index.html"
    atomic_write_text(path, "\n".join(parts))
    return path


# ---- sections of a report (each returns its HTML lines and writes the images it shows into ``out``) ----


def _footer(inr: bool) -> str:
    """The note under a report: what its figures show (the INR heatmaps only where the report has any)."""
    heatmaps = "heatmaps are each layer's first principal component of the INR activations; " if inr else ""
    return (
        "<p class='muted'>fakescope report. Bright Grad-CAM regions push the score toward "
        f"&lsquo;fake&rsquo;; {heatmaps}the DCT map shows the high-frequency residual (the image rebuilt "
        "from its 8&times;8-block DCT coefficients above the cutoff).</p>"
    )


def _calibrated(faces: list[Mapping[str, Any]]) -> bool:
    """Whether the run that scored these faces has a calibration (its faces carry ``probability``)."""
    return any(f.get("probability") is not None for f in faces)


def _header(p: Mapping[str, Any], banner: str | None) -> list[str]:
    """The page head, the input's name and where its score came from, and the run's banner."""
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>fakescope: {esc(Path(p['source']).name)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(Path(p['source']).name)}</h1>",
        f"<div class='muted'>{esc(p['source'])} &middot; {esc(p['kind'])} &middot; model <b>{esc(p['model'])}</b>"
        f" ({esc(p['model_source'])})</div>",
    ]
    if banner:
        parts.append(f"<p class='banner'>{esc(banner)}</p>")
    return parts


def _verdict_line(p: Mapping[str, Any]) -> list[str]:
    """The verdict, the threshold and where it comes from, and the input's note (if any)."""
    esc = html.escape
    thr_note = (
        "chosen on the run's validation split"
        if p["threshold_source"] == "validation"
        else "default 0.5: the checkpoint records no validation threshold"
    )
    if _calibrated(p["faces"]):
        thr_note = "the run's calibrated operating point (a false-positive-rate target on validation reals)"
    what = (
        "video score = mean of frame scores" if p["kind"] == "video" else "image score = highest face score"
    )
    parts = [
        f"<p>{_verdict(p['score'], p['label'])}&nbsp; threshold <b>{p['threshold']:.3f}</b> "
        f"<span class='muted'>({esc(thr_note)}; {esc(what)})</span></p>"
    ]
    if p["kind"] == "image" and _calibrated(p["faces"]):
        top = max(p["faces"], key=lambda f: f["score"])
        parts.append(f"<p>calibrated P(fake) <b>{top['probability']:.3f}</b> <span class='muted'>(of the "
                     "highest-scoring face; the run's calibration.json)</span></p>")  # fmt: skip
    if p.get("error"):
        parts.append(f"<p class='banner'>{esc(p.get('error'))}</p>")
    return parts


def _score_over_time(p: Mapping[str, Any], out: Path) -> list[str]:
    """A video's frame scores over time (score_over_time.png) and its sampled / no-face counts."""
    times = [f["time_s"] if f["time_s"] is not None else float(f["frame"]) for f in p["frames"]]
    xlabel = "time (s)" if all(f["time_s"] is not None for f in p["frames"]) else "frame"
    fig = score_over_time_figure(times, [f["score"] for f in p["frames"]], p["threshold"], p["score"], xlabel)
    save_figure(fig, out / "score_over_time.png")
    return [
        "<h2>Score over time</h2>",
        "<img class='wide' src='score_over_time.png' alt='score over time'>",
        f"<p class='muted'>{p['frames_sampled']} frames sampled, {p['frames_no_face']} with no face "
        f"(policy: {html.escape(p['no_face_policy'])}).</p>",
    ]


def _faces_heading(p: Mapping[str, Any], explanations: list[FaceExplanation]) -> list[str]:
    if p["faces"] and p["kind"] == "image":
        return [f"<h2>{len(p['faces'])} face(s)</h2>"]
    if p["kind"] == "video" and explanations:
        return [f"<h2>The {len(explanations)} highest-scoring frame(s)</h2>"]
    return []


def _face_figures(ex: FaceExplanation, tag: str, out: Path, cfg: ExplainConfig) -> str:
    """The aligned crop, Grad-CAM and DCT residual images of one face, side by side."""
    ext = cfg.image_format
    save_image(ex.crop, out / f"{tag}_crop.{ext}")
    figs = [
        f"<figure><img class='sq' src='{tag}_crop.{ext}' alt='aligned crop'>"
        "<figcaption>aligned crop (model input)</figcaption></figure>"
    ]
    if ex.cam is not None:
        save_image(
            cam_overlay(ex.crop, ex.cam, cfg.cam_alpha, cfg.cam_colormap), out / f"{tag}_gradcam.{ext}"
        )
        figs.append(
            f"<figure><img class='sq' src='{tag}_gradcam.{ext}' alt='Grad-CAM'>"
            "<figcaption>Grad-CAM toward &lsquo;fake&rsquo;</figcaption></figure>"
        )
    if ex.dct_residual is not None:
        save_image(dct_residual_image(ex.dct_residual, cfg), out / f"{tag}_dct.{ext}")
        figs.append(
            f"<figure><img class='sq' src='{tag}_dct.{ext}' alt='DCT residual'>"
            "<figcaption>block-DCT high-frequency residual</figcaption></figure>"
        )
    return "<div class='row' style='margin-top:8px'>" + "".join(figs) + "</div>"


def _face_facts(f: Mapping[str, Any], ex: FaceExplanation) -> str:
    """The table under a face: box, detector confidence, INR fit, why Grad-CAM is missing."""
    rows = [
        ("box (x1, y1, x2, y2)", _fmt_box(f["box"])),
        (
            "face detector confidence",
            "—" if f["detection_score"] is None else f"{f['detection_score']:.3f}",
        ),
    ]
    inr = f.get("inr")
    if inr:
        rows.append(
            (
                "INR fit",
                f"{inr.get('steps')} steps, {inr.get('psnr', float('nan')):.1f} dB"
                f"{'' if inr.get('reached', True) else ' (target not reached)'}",
            )
        )
    if f.get("probability") is not None:
        rows.append(("calibrated P(fake)", f"{f['probability']:.3f}"))
    fam = f.get("familiarity")
    if fam:
        state = "unfamiliar" if fam["unfamiliar"] else "familiar"
        rows.append(("familiarity (higher = farther from training data)",
                     f"{fam['score']:.3f} (threshold {fam['threshold']:.3f}): {state}"))  # fmt: skip
    if ex.cam_note:
        rows.append(("Grad-CAM", ex.cam_note))
    esc = html.escape
    return (
        "<table style='margin-top:8px'>"
        + "".join(f"<tr><th>{esc(a)}</th><td>{esc(b)}</td></tr>" for a, b in rows)
        + "</table>"
    )


def _face_card(
    f: Mapping[str, Any], face_idx: int, ex: FaceExplanation, tag: str, out: Path, cfg: ExplainConfig
) -> list[str]:
    """One face's card: its verdict and where it is, its images, INR heatmaps and facts."""
    where = (
        f"frame {f['frame']}" + (f" ({f['time_s']:.2f} s)" if f.get("time_s") is not None else "")
        if f.get("frame") is not None
        else f"face {face_idx + 1}"
    )
    parts = [
        f"<div class='card'><div>{_verdict(f['score'], f['label'])} <span class='muted'>{html.escape(where)}"
        "</span></div>",
        _face_figures(ex, tag, out, cfg),
    ]
    if (f.get("familiarity") or {}).get("unfamiliar"):
        parts.insert(1, f"<p class='banner'>{html.escape(CAUTION)}</p>")
    if ex.heatmaps is not None:
        save_figure(heatmap_figure(ex.crop, ex.heatmaps, cfg=cfg), out / f"{tag}_inr_heatmaps.png")
        parts.append(
            "<h2>INR heatmaps per layer</h2>"
            f"<img class='wide' src='{tag}_inr_heatmaps.png' alt='INR heatmaps'>"
        )
    parts.append(_face_facts(f, ex) + "</div>")  # the card ends after its table
    return parts


def write_index(
    entries: list[tuple[str, Path | None, Mapping[str, Any] | None, str | None]],
    out_dir: str | os.PathLike[str],
    banner: str | None = None,
) -> Path:
    """One page listing every input: ``(source, report_html or None, prediction data or None, error)``,
    the prediction data as in :func:`write_report`."""
    out = Path(out_dir)
    esc = html.escape
    rows = []
    for source, rep, pred, err in entries:
        link = (
            f"<a href='{esc(os.path.relpath(rep, out))}'>{esc(Path(source).name)}</a>" if rep else esc(source)
        )
        if pred is not None:
            cell = _verdict(pred["score"], pred["label"])
            extra = f"{len(pred['faces'])} face(s)" + (
                f", {pred['frames_sampled']} frames" if pred["kind"] == "video" else ""
            )
        else:
            cell, extra = '<span class="verdict none">error</span>', esc(err or "")
        rows.append(f"<tr><td>{link}</td><td>{cell}</td><td>{extra}</td></tr>")
    banner_html = f"<p class='banner'>{esc(banner)}</p>" if banner else ""
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>fakescope report</title>"
        f"<style>{_CSS}</style></head><body><h1>fakescope detect</h1>{banner_html}"
        "<table><tr><th>input</th><th>result</th><th>details</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    path = out / "index.html"
    atomic_write_text(path, text)
    return path
