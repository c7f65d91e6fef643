"""Does the "unfamiliar" flag find what a detector has not seen? Leave one source out and ask.

    python benchmarks/transfer.py --detectors airl --recipe shipped --config-dir configs/shipped --out runs/transfer
    python benchmarks/familiarity_loso.py --transfer runs/transfer --detector airl --recipe shipped \
        [--update-docs docs/model-card.md]

For each shared source S, the leave-one-source-out run of ``benchmarks/transfer.py`` (trained on the
other sources only) is calibrated on its own pooled validation split (``fakescope calibrate``: the
familiarity model on its training faces, its threshold at 95 % of its validation faces), then every test
face of all three sources is scored the way a user's crop is (``fakescope.load(run)``, ``predict(path,
aligned=True)``). Reported per left-out source, with bootstrap 95 % intervals over groups:

- **flag AUROC**: how well the familiarity score tells S's test faces (never seen) from the in-source
  test faces (target ≥ 0.8 averaged over the left-out sources);
- the share of faces flagged unfamiliar, left-out and in-source;
- detection AUC on all test faces and on the faces **not** flagged (the flag should remove faces the
  detector gets wrong, not faces it gets right).

Nothing here chooses anything: the runs, calibration and thresholds come from training sources only.
Writes ``OUT/familiarity_loso.json`` and ``.md``; ``--update-docs`` writes the table between the
``CARD_FAMILIARITY`` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("dfdc-faces", "ffhq-stylegan", "ciplab-photoshop")
METHODS = ("mahalanobis_layers", "mahalanobis", "energy")
SHORT = {"dfdc-faces": "DFDC", "ffhq-stylegan": "FFHQ-StyleGAN", "ciplab-photoshop": "CIPLAB"}


def score_tests(run: Path, tests: dict[str, Path]) -> dict[str, np.ndarray]:
    """Every test face of every source through the run, as a user's aligned crop."""
    import fakescope
    from fakescope.data.manifest import read_manifest

    det = fakescope.load(run)
    cols: dict[str, list] = {k: [] for k in ("source", "y", "score", "fam", "flag", "group")}
    for source, manifest in tests.items():
        for r in read_manifest(manifest):
            face = det.predict(r.path, aligned=True).faces[0]
            fam = face.familiarity or {}
            cols["source"].append(source)
            cols["y"].append(r.label)
            cols["score"].append(face.score)
            cols["fam"].append(fam.get("score", np.nan))
            cols["flag"].append(bool(fam.get("unfamiliar", False)))
            cols["group"].append(r.group)
    return {k: np.asarray(v) for k, v in cols.items()}


def left_out_row(s: dict[str, np.ndarray], left_out: str, bootstrap: int) -> dict:
    from fakescope.eval.metrics import auc, bootstrap_auc_ci

    unseen = (s["source"] == left_out).astype(int)
    lo, hi = bootstrap_auc_ci(unseen, s["fam"], groups=s["group"], n=bootstrap)
    keep = ~s["flag"]
    return {
        "left_out": left_out,
        "flag_auroc": auc(unseen, s["fam"]),
        "flag_auroc_ci": [lo, hi],
        "flagged_left_out": float(s["flag"][unseen == 1].mean()),
        "flagged_in_source": float(s["flag"][unseen == 0].mean()),
        "auc_all": auc(s["y"], s["score"]),
        "auc_unflagged": auc(s["y"][keep], s["score"][keep])
        if len(set(s["y"][keep].tolist())) == 2
        else None,
        "auc_left_out_all": auc(s["y"][unseen == 1], s["score"][unseen == 1]),
        "n": int(len(unseen)),
        "n_left_out": int(unseen.sum()),
    }


def calibrated_method(run: Path) -> str | None:
    """The familiarity model the run's calibration holds (None when it has none)."""
    path = run / "calibration.json"
    if not path.is_file():
        return None
    return (json.loads(path.read_text()).get("familiarity") or {}).get("method")


def markdown(rows: list[dict]) -> str:
    def f(x: float | None) -> str:
        return "–" if x is None or x != x else f"{x:.3f}"

    lines = [
        "| familiarity | left out | flag AUROC [95 % CI] (unseen vs in-source test faces) "
        "| flagged: left-out / in-source | detection AUC, all test faces | on unflagged faces |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        for r in mine:
            lines.append(
                f"| {method} | {SHORT[r['left_out']]} "
                f"| {f(r['flag_auroc'])} [{f(r['flag_auroc_ci'][0])}, {f(r['flag_auroc_ci'][1])}] "
                f"| {100 * r['flagged_left_out']:.0f} % / {100 * r['flagged_in_source']:.0f} % "
                f"| {f(r['auc_all'])} | {f(r['auc_unflagged'])} |"
            )
        mean = float(np.mean([r["flag_auroc"] for r in mine]))
        lines.append(f"| {method} | **mean** | **{mean:.3f}** (target ≥ 0.8) | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from fakescope.eval.calibrate import calibrate_run
    from fakescope.utils.atomic import atomic_write_json, atomic_write_text
    from fakescope.utils.docblocks import write_blocks

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transfer", required=True, help="the --out folder of benchmarks/transfer.py")
    p.add_argument("--detector", default="airl")
    p.add_argument("--recipe", default="shipped")
    p.add_argument("--familiarity", nargs="+", default=["mahalanobis_layers"], choices=list(METHODS),
                   help="familiarity model(s) to measure, each on the same runs (one row per source and model)")  # fmt: skip
    p.add_argument("--max-train", type=int, default=25_000)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--update-docs", metavar="CARD", help="write the table into CARD's CARD_FAMILIARITY block")
    p.add_argument("--table-only", action="store_true",
                   help="measure nothing: rebuild the table from OUT/familiarity_loso.json")  # fmt: skip
    args = p.parse_args(argv)
    out = Path(args.transfer)
    tests = {s: out / "manifests" / f"test_{s}.csv" for s in SOURCES}
    # Rows measured earlier on the same runs stay in the table until a new measurement of the same
    # (method, left-out source) replaces them: each model can be measured on its own, an interrupted call
    # loses nothing, and the table still compares them all.
    saved = out / "familiarity_loso.json"
    found = {
        (r["method"], r["left_out"]): r for r in (json.loads(saved.read_text()) if saved.is_file() else [])
    }
    for method in [] if args.table_only else args.familiarity:
        for left_out in SOURCES:
            run = out / "runs" / f"{args.detector}__{args.recipe}__{left_out}"
            if not (run / "transfer_row.json").is_file():
                print(f"skip {left_out}: {run} has not finished (run benchmarks/transfer.py first)",
                      file=sys.stderr)  # fmt: skip
                continue
            if calibrated_method(run) != method:  # (re)fit: the run keeps the last method measured
                calibrate_run(run, out / "manifests" / f"without_{left_out}.csv", split="val", device=args.device,
                              familiarity=method, max_train=args.max_train, progress=False)  # fmt: skip
            row = {"method": method, **left_out_row(score_tests(run, tests), left_out, args.bootstrap)}
            found[(method, left_out)] = row
            print(json.dumps(row), flush=True)
            atomic_write_json(saved, list(found.values()))  # each row as it comes
    order = {m: i for i, m in enumerate(METHODS)}
    rows = sorted(found.values(), key=lambda r: (order.get(r["method"], 99), SOURCES.index(r["left_out"])))
    table = markdown(rows)
    atomic_write_json(saved, rows)
    atomic_write_text(out / "familiarity_loso.md", table + "\n")
    if args.update_docs and rows:
        write_blocks(Path(args.update_docs), {"CARD_FAMILIARITY": table})
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
