"""The output folder of a ``prepare`` run: its config check (prepare.json), the tables built from the
job records (manifest.csv, landmarks.csv, no_face.csv) and the summary."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.data.manifest import LABEL_NAMES, ManifestRow, write_manifest
from fakescope.errors import ConfigError
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.pipeline.plan import PrepareJob
from fakescope.utils.atomic import atomic_open, atomic_write_json
from fakescope.utils.hashing import config_hash
from fakescope.utils.text import PATH_CSV_ERRORS

__all__ = [
    "NO_FACE_COLUMNS", "NO_FACE_POLICY_TEXT", "PrepareSummary", "check_output_dir", "output_config_hash",
    "summarise", "write_outputs",
]  # fmt: skip


NO_FACE_COLUMNS = ("source", "label", "group", "dataset", "method", "split", "video", "frame")


NO_FACE_POLICY_TEXT = {
    "drop": "frames with no face are left out of manifest.csv and scored by nothing; they are listed in "
    "no_face.csv and counted here",
    "score_half": "frames with no face are listed in no_face.csv; evaluation gives each a score of 0.5 "
    "when it averages a video's frame scores",
}


@dataclass
class PrepareSummary:
    inputs: int = 0
    jobs_processed: int = 0
    jobs_resumed: int = 0
    jobs_failed: int = 0
    frames_sampled: int = 0
    faces_found: int = 0
    no_face_frames: int = 0
    multi_face_frames: int = 0
    crops_by_label: dict[str, int] = field(default_factory=dict)
    short_videos: list[dict[str, Any]] = field(default_factory=list)
    inputs_without_face: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    no_face_policy: str = "drop"
    no_face_policy_means: str = ""
    detector: str = ""
    config_hash: str = ""
    seconds: float = 0.0
    frames_per_second_this_run: float = 0.0

    def lines(self) -> list[str]:
        out = [
            f"inputs: {self.inputs} ({self.jobs_processed} processed now, {self.jobs_resumed} done before, "
            f"{self.jobs_failed} failed)",
            f"frames sampled: {self.frames_sampled}; faces found: {self.faces_found}; "
            f"no face: {self.no_face_frames} (policy {self.no_face_policy}); several faces: {self.multi_face_frames}",
            "crops by label: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.crops_by_label.items())) or "none"),
        ]
        if self.short_videos:
            out.append(f"short videos (fewer frames than asked, all used): {len(self.short_videos)}")
        if self.inputs_without_face:
            out.append(f"inputs with no face in any sampled frame: {len(self.inputs_without_face)}")
        for e in self.errors:
            out.append(f"error: {e['error']}")
        return out


def output_config_hash(cfg: PreprocessConfig) -> str:
    """Hash of the fields that change what is written (not workers, threads, the decode strategy or
    the no-face policy, which only changes how evaluation reads no_face.csv), so an output folder
    prepared before the decode fields existed resumes under them."""
    d = cfg.model_dump(mode="json")
    for k in ("workers", "threads_per_worker", "no_face_policy"):
        d.pop(k, None)
    # How frames are found never changes which frames are found (all decode strategies are exact).
    for k in ("seek", "decode_threads", "decode", "seek_min_gap", "drop_nonref", "prefetch"):
        d["frames"].pop(k, None)
    return config_hash(d)


def check_output_dir(out_dir: Path, cfg: PreprocessConfig, overwrite: bool, wipe: bool = True) -> str:
    h = output_config_hash(cfg)
    meta_path = out_dir / "prepare.json"
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8")).get("config_hash")
        except ValueError:
            old = None
        if old != h:
            if not overwrite:
                raise ConfigError(
                    f"{out_dir}: was prepared with a different preprocess config (hash {old}, now {h}); "
                    "use another --out, or --overwrite to start it again"
                )
            for sub in ("crops", "records") if wipe else ():
                shutil.rmtree(out_dir / sub, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(meta_path, {"config_hash": h, "preprocess": cfg.model_dump(mode="json")})
    return h


def _crop_row(job: PrepareJob, out_dir: Path, rec: dict[str, Any]) -> ManifestRow:
    return ManifestRow(
        str(out_dir / rec["crop"]),
        job.label,
        job.group,
        job.dataset,
        job.method,
        job.split,
        job.video,
        rec["frame"],
    )


def write_outputs(out_dir: Path, jobs: Sequence[PrepareJob], records: dict[str, dict[str, Any]]) -> None:
    crop_rows: list[ManifestRow] = []
    no_face_lines: list[list[Any]] = []
    lm_lines: list[list[Any]] = []
    for job in jobs:
        rec = records.get(job.key)
        if rec is None:
            continue
        for fr in rec["frames"]:
            if fr["status"] == "face":
                row = _crop_row(job, out_dir, fr)
                crop_rows.append(row)
                lm_lines.append(
                    [
                        fr["crop"],
                        job.video,
                        "" if fr["frame"] is None else fr["frame"],
                        *fr["box"],
                        fr["score"],
                        fr["n_faces"],
                        *np.ravel(fr["landmarks"]).tolist(),
                        *np.ravel(fr["landmarks_aligned"]).tolist(),
                    ]
                )
            else:
                src = job.path if job.kind != "frames" else dict(job.sources).get(fr["frame"], job.path)
                no_face_lines.append(
                    [
                        os.path.abspath(src),
                        LABEL_NAMES.get(job.label, ""),
                        job.group,
                        job.dataset,
                        job.method,
                        job.split,
                        job.video,
                        "" if fr["frame"] is None else fr["frame"],
                    ]
                )
    write_manifest(crop_rows, out_dir / "manifest.csv")
    # Not a manifest: a video's faceless frames share one source path, so rows repeat it.
    with atomic_open(
        out_dir / "no_face.csv", "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS
    ) as fh:
        w = csv.writer(fh)
        w.writerow(NO_FACE_COLUMNS)
        w.writerows(no_face_lines)
    names = ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]
    header = ["path", "video", "frame", "box_x1", "box_y1", "box_x2", "box_y2", "score", "n_faces"]
    header += [f"{n}_{a}" for n in names for a in "xy"]
    header += [f"aligned_{n}_{a}" for n in names for a in "xy"]
    with atomic_open(
        out_dir / "landmarks.csv", "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS
    ) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(lm_lines)


def summarise(
    jobs: Sequence[PrepareJob],
    records: dict[str, dict[str, Any]],
    errors: dict[str, str],
    cfg: PreprocessConfig,
    chash: str,
    resumed: int,
) -> PrepareSummary:
    s = PrepareSummary(
        inputs=len(jobs),
        jobs_resumed=resumed,
        jobs_failed=len(errors),
        no_face_policy=cfg.no_face_policy,
        no_face_policy_means=NO_FACE_POLICY_TEXT[cfg.no_face_policy],
        detector=cfg.detector,
        config_hash=chash,
    )
    s.jobs_processed = len(records) - resumed
    by_label: Counter[str] = Counter()
    for job in jobs:
        rec = records.get(job.key)
        if rec is None:
            if job.key in errors:
                s.errors.append({"path": job.path, "error": errors[job.key]})
            continue
        frames = rec["frames"]
        faces = sum(f["status"] == "face" for f in frames)
        s.frames_sampled += len(frames)
        s.faces_found += faces
        s.no_face_frames += len(frames) - faces
        s.multi_face_frames += sum(f["n_faces"] > 1 for f in frames)
        by_label[LABEL_NAMES.get(job.label, "unknown")] += faces
        if rec.get("short"):
            s.short_videos.append(
                {"path": job.path, "n_frames": rec.get("n_frames"), "requested": rec.get("requested")}
            )
        if faces == 0:
            s.inputs_without_face.append(job.path)
    s.crops_by_label = dict(sorted(by_label.items()))
    return s
