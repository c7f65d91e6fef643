"""Scoring many files: expand folders, score each file, keep going past a bad one, and write the
per-input reports and their index (``fakescope detect``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.api.detector import FaceForgeryDetector
from fakescope.api.results import Prediction
from fakescope.errors import FakescopeError
from fakescope.utils.paths import not_a_file_reason, scan_entry_reason
from fakescope.utils.text import display_name, printable

__all__ = ["DetectOutcome", "detect_paths", "expand_inputs", "skipped_summary"]


def expand_inputs(
    paths: Sequence[str | os.PathLike[str]], skipped: list[tuple[str, str]] | None = None
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to score from command-line paths: files as given, folders searched recursively for images
    and videos (sorted). Returns ``(files, [(path, error line)])`` for paths that cannot be scored, each
    named with its cause (no such file, a FIFO, a symbolic-link loop, ...). With ``skipped``, each
    folder entry the scan left out is appended as ``(path, why)``."""
    from fakescope.data.images import IMAGE_EXTENSIONS
    from fakescope.preprocess.video.probe import VIDEO_EXTENSIONS

    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    wanted = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    for raw in paths:
        p = Path(raw)
        name = display_name(p)
        if p.is_dir():
            found = []
            for f in sorted(p.rglob("*")):
                why = _scan_skip_reason(f, wanted)
                if why is None:
                    found.append(f)
                elif skipped is not None and why:
                    skipped.append((display_name(f), why))
            if not found:
                missing.append((name, f"{name}: folder holds no image or video files"))
            files += found
            continue
        reason = not_a_file_reason(p)
        if reason is None:
            files.append(p)
        else:
            missing.append(
                (name, f"{name}: {'no such file or folder' if reason == 'no such file' else reason}")
            )
    return files, missing


def _scan_skip_reason(f: Path, wanted: frozenset[str]) -> str | None:
    """Why a folder scan leaves ``f`` out (``""``: a folder, not worth a line), ``None`` to take it."""
    reason = scan_entry_reason(f)
    if reason is not None:
        return reason
    if f.suffix.lower() not in wanted:
        return f"suffix {f.suffix or '(none)'!r} is not an image or video suffix"
    return None


def skipped_summary(skipped: Sequence[tuple[str, str]], shown: int = 3) -> str | None:
    """One line for what folder scans left out: how many, grouped by cause, with a few names."""
    if not skipped:
        return None
    causes: dict[str, int] = {}
    for _p, why in skipped:
        causes[why] = causes.get(why, 0) + 1
    parts = ", ".join(f"{n} {why}" for why, n in sorted(causes.items(), key=lambda kv: -kv[1]))
    names = ", ".join(p for p, _ in skipped[:shown]) + (", ..." if len(skipped) > shown else "")
    return f"folder scan skipped {len(skipped)} file(s) ({parts}): {names}"


@dataclass
class DetectOutcome:
    """What :func:`detect_paths` produced: predictions, per-input error lines, the report index."""

    predictions: list[Prediction]
    errors: list[tuple[str, str]]
    report_index: Path | None = None

    def table(self) -> str:
        """A plain-text table, one row per input (and one per face when an image has several)."""
        rows = [("input", "kind", "faces", "P(fake)", "label", "threshold")]
        for p in self.predictions:
            score = "—" if p.score is None else f"{p.score:.3f}"
            faces = str(len(p.faces)) + (f" ({p.frames_no_face} frames no face)" if p.frames_no_face else "")
            rows.append((p.source, p.kind, faces, score, p.label or "—", f"{p.threshold:.3f}"))
            if p.kind == "image" and len(p.faces) > 1:
                for i, f in enumerate(p.faces):
                    rows.append(
                        (
                            f"  face {i + 1} {f.box and [round(v) for v in f.box]}",
                            "",
                            "",
                            f"{f.score:.3f}",
                            f.label,
                            "",
                        )
                    )
        for src, _ in self.errors:
            rows.append((src, "error (see above)", "", "", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def detect_paths(
    detector: FaceForgeryDetector,
    paths: Sequence[str | os.PathLike[str]],
    report_dir: str | os.PathLike[str] | None = None,
    gradcam: bool = True,
    progress: bool = True,
    banner: str | None = None,
    aligned: Sequence[bool] | None = None,
) -> DetectOutcome:
    """Score every file; a bad file costs one error line and the others go on. With ``report_dir``,
    write a report folder per input (:func:`fakescope.explain.report.write_report`) and an index.
    ``aligned`` optionally says per path whether it is already an aligned crop."""
    from tqdm import tqdm

    preds: list[Prediction] = []
    errors: list[tuple[str, str]] = []
    entries: list[tuple[str, Path | None, dict[str, Any] | None, str | None]] = []
    if report_dir is not None:
        from fakescope.explain.config import ExplainConfig
        from fakescope.explain.report import report_name, write_index, write_report

        ecfg = ExplainConfig(gradcam=gradcam)
    bar = tqdm(
        list(paths), desc="detect", unit="file", disable=not progress or len(paths) < 2, dynamic_ncols=True
    )
    for i, path in enumerate(bar):
        try:
            pred = detector.predict(path, aligned=None if aligned is None else aligned[i], progress=progress)
        except FakescopeError as err:
            name, text = display_name(path), str(err).replace(str(path), display_name(path))
            text = printable(text)
            msg = text if name in text else f"{name}: {text}"
            errors.append((name, msg))
            entries.append((name, None, None, msg))
            continue
        preds.append(pred)
        rep = None
        if report_dir is not None:
            rep = write_report(
                pred.report_data(),
                detector.explain(pred, ecfg),
                Path(report_dir) / report_name(display_name(path), i),
                ecfg,
                banner=banner,
            )
        entries.append((display_name(path), rep, pred.report_data(), None))
    index = write_index(entries, report_dir, banner=banner) if report_dir is not None else None
    return DetectOutcome(preds, errors, index)
