"""Which detector ships: the candidates trained on the shipped detector's data, chosen on validation
only (docs/model-card.md "How the model was chosen").

    python benchmarks/candidates.py --detectors airl airl_rgb srm xception f3net clip_fft \\
        --recipe short --out runs/candidates [--set KEY=VALUE ...] [--floor 0.5] [--update-docs docs/model-card.md]

Protocol:
- **Data:** ``scripts/train_shipped.py``'s pooled manifest: the train splits of ``dfdc-faces``,
  ``ffhq-stylegan`` and ``ciplab-photoshop`` and all of ``dfdc-faces-more``; the pooled val splits
  choose each run's epoch. Every batch is balanced over sources and classes
  (``train.balance_sources=true``, before ``--set``, so a recipe may say otherwise).
- **Candidates:** ``CONFIG_DIR/<detector>.yaml`` plus ``--set``, each a resumable run
  ``OUT/runs/<detector>__<recipe>``; a finished run is not trained again. Crops come from the crop
  cache of ``benchmarks/transfer.py`` (the same pixels; speed only).
- **The choice, on the pooled val split alone** (no test split is read): each run's val AUC per source
  and pooled, with bootstrap 95 % intervals over source videos. A candidate is eligible when every
  source's val AUC interval lies above ``--floor`` (default 0.5: it tells every source's fakes from its
  reals better than chance); the chosen single model is the eligible one with the best pooled
  val AUC, and every other candidate is compared with it, paired over the same val faces. Then an
  ensemble of the best two or three eligible candidates (mean of calibrated log-odds,
  :func:`fakescope.eval.ensemble.choose_members`) replaces it only when its paired interval lies above
  zero.

- **References** (``--reference NAME=RUN``, optional): other trained runs, e.g. the shipped detector at
  its full budget, scored on the same pooled val faces (cached in ``OUT/references/NAME``) and
  compared, paired, with the chosen model and the ensemble. They are never chosen: they answer what
  a longer budget buys against a second stream at about the same compute.

Outputs: ``OUT/candidates.json`` and ``OUT/candidates.md`` (with ``--update-docs``, the table between
the ``<!-- CANDIDATES -->`` markers of that file). ``--table-only`` trains nothing.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VAL_PREDICTIONS = "val_predictions.csv"
ROW = "candidate_row.json"


@functools.cache
def _transfer():
    """benchmarks/transfer.py as a module (its sources, manifests and speed settings)."""
    spec = importlib.util.spec_from_file_location(
        "fakescope_transfer_bench", REPO / "benchmarks" / "transfer.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_candidate(det: str, recipe: str, pooled: Path, args: argparse.Namespace) -> dict:
    """Train (or resume) one candidate and score its pooled val split; a finished one is read back."""
    from fakescope.config import load_config
    from fakescope.eval.calibrate import score_split
    from fakescope.eval.predictions import PredictionWriter
    from fakescope.train.trainer import train
    from fakescope.utils.atomic import atomic_write_text

    run = Path(args.out) / "runs" / f"{det}__{recipe}"
    if (run / ROW).is_file():
        return {**json.loads((run / ROW).read_text()), "trained_this_call": False}
    cfg = load_config(Path(args.config_dir) / f"{det}.yaml",
                      [f"data.manifest={pooled}", f"device={args.device}", *_transfer().SPEED, "train.balance_sources=true",
                       *args.overrides])  # fmt: skip
    t0 = time.time()
    resume = (run / "checkpoints" / "last.json").is_file()
    res = train(cfg, run, resume=resume)
    train_s = time.time() - t0
    rows, scores = score_split(run, pooled, "val", device=args.device)
    with PredictionWriter(run / VAL_PREDICTIONS) as w:
        w.write_many(rows, scores.scores)
    row = {"detector": det, "recipe": recipe, "overrides": args.overrides, "best_epoch": res.best_epoch,
           "epochs_run": res.epochs_run, "epochs_budget": cfg.train.epochs, "stopped_early": res.stopped_early,
           "time_cut": res.time_cut, "best_val_auc": res.best_val_auc,
           "train_seconds_this_call": round(train_s, 1), "resumed": resume,
           "config": str((Path(args.config_dir) / f"{det}.yaml").resolve())}  # fmt: skip
    atomic_write_text(run / ROW, json.dumps(row, indent=2))
    return {**row, "trained_this_call": True}


def score_reference(name: str, run: Path, pooled: Path, out: Path, device: str) -> Path:
    """``run``'s best checkpoint on the pooled val split, written once to ``OUT/references/NAME``."""
    from fakescope.eval.calibrate import score_split
    from fakescope.eval.predictions import PredictionWriter

    path = out / "references" / name / VAL_PREDICTIONS
    if path.is_file():
        return path
    rows, scores = score_split(run, pooled, "val", device=device)
    path.parent.mkdir(parents=True, exist_ok=True)
    with PredictionWriter(path) as w:
        w.write_many(rows, scores.scores)
    (path.parent / "run.txt").write_text(str(Path(run).resolve()) + "\n")
    return path


def _auc_ci(y: np.ndarray, s: np.ndarray, videos: list[str], n: int) -> dict[str, float]:
    from fakescope.eval.metrics import auc, bootstrap_auc_ci

    lo, hi = bootstrap_auc_ci(y, s, groups=videos, n=n)
    return {"n": int(y.size), "auc": auc(y, s), "auc_ci_low": lo, "auc_ci_high": hi}


def choose(out: Path, recipe: str, floor: float, n: int, references: dict[str, Path] | None = None) -> dict:
    """Every finished candidate of ``recipe`` under ``out``: val AUC per source and pooled, eligibility
    (every source's interval above ``floor``), the chosen single model, paired differences against it, and the ensemble check.
    ``references`` (name -> val predictions file) are compared on the same faces, never chosen."""
    from fakescope.errors import InputError
    from fakescope.eval.ensemble import choose_members
    from fakescope.eval.metrics import paired_bootstrap_auc_difference

    rows = [json.loads(f.read_text()) for f in sorted(out.glob(f"runs/*__{recipe}/{ROW}"))]
    if not rows:
        raise InputError(f"{out}: no finished candidate of recipe {recipe!r}")
    runs = {r["detector"]: out / "runs" / f"{r['detector']}__{recipe}" / VAL_PREDICTIONS for r in rows}
    references = references or {}
    clash = sorted(set(references) & set(runs))
    if clash:
        raise InputError(f"--reference {clash[0]}: a candidate has that name")
    # the same val faces, in one order
    y, scores, groups, _, videos = _transfer()._joined({**runs, **references})
    sources = np.array([g.split(":", 1)[0] for g in groups])

    def per_source(s: np.ndarray) -> dict[str, dict[str, float]]:
        out_ = {"pooled": _auc_ci(y, s, videos, n)}
        for src in sorted(set(sources)):
            m = sources == src
            out_[src] = _auc_ci(y[m], s[m], [v for v, k in zip(videos, m, strict=True) if k], n)
        return out_

    cands = []
    for r in rows:
        val = per_source(scores[r["detector"]])
        worst = min(v["auc_ci_low"] for k, v in val.items() if k != "pooled")
        cands.append({**r, "val": val, "worst_source_ci_low": worst, "eligible": worst > floor})
    eligible = sorted((c for c in cands if c["eligible"]), key=lambda c: -c["val"]["pooled"]["auc"])
    result: dict = {"recipe": recipe, "floor": floor, "bootstrap": n, "n_val": int(y.size),
                    "candidates": cands, "chosen": None, "ensemble": None}  # fmt: skip
    if not eligible:
        return result
    best = eligible[0]["detector"]
    for c in cands:
        if c["detector"] != best:
            d = paired_bootstrap_auc_difference(y, scores[c["detector"]], scores[best], groups=videos, n=n)
            c["vs_chosen"] = {k: float(v) for k, v in d.items()}
    top = [c["detector"] for c in eligible[:3]]
    chosen_single = {"detector": best, "val": eligible[0]["val"]}
    if len(top) >= 2:
        ens = choose_members({d: scores[d] for d in top}, y, videos, bootstrap=n)
        result["ensemble"] = {**ens.as_dict(), "tried": top,
                              "val": per_source(ens.predict(scores))}  # fmt: skip
        if len(ens.members) > 1:
            chosen_single["ensemble_replaces_it"] = list(ens.members)
    result["chosen"] = chosen_single
    chosen_scores = scores[best]
    if result["ensemble"] and len(result["ensemble"]["members"]) > 1:
        chosen_scores = ens.predict(scores)
    result["references"] = []
    for name in references:
        d = paired_bootstrap_auc_difference(y, scores[name], chosen_scores, groups=videos, n=n)
        result["references"].append({"name": name, "val": per_source(scores[name]),
                                     "minus_chosen": {k: float(v) for k, v in d.items()}})  # fmt: skip
    return result


def _fmt(m: dict) -> str:
    return f"{m['auc']:.3f} [{m['auc_ci_low']:.2f}, {m['auc_ci_high']:.2f}]"


def markdown(result: dict) -> str:
    """The candidates table (val AUC per source and pooled, eligibility, paired difference against the
    chosen model) and the choice in one sentence."""
    cands = sorted(result["candidates"], key=lambda c: -c["val"]["pooled"]["auc"])
    sources = [k for k in cands[0]["val"] if k != "pooled"]
    head = ["candidate", *(f"val: {s}" for s in sources), "val: pooled", f"every source's interval > {result['floor']}",
            "pooled − chosen (paired)", "epochs (best / run / budget)", "training minutes"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    chosen = (result["chosen"] or {}).get("detector")
    for c in cands:
        d = c.get("vs_chosen")
        diff = "chosen" if c["detector"] == chosen else (
            f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else "—")  # fmt: skip
        cut = " (time cut)" if c.get("time_cut") else ""
        # the wall time of the call that finished the run: a resumed run's earlier epochs are not in it
        minutes = f"{c['train_seconds_this_call'] / 60:.0f}" + (" (resumed)" if c.get("resumed") else "")
        lines.append(f"| `{c['detector']}` | " + " | ".join(_fmt(c["val"][s]) for s in sources) +
                     f" | {_fmt(c['val']['pooled'])} | {'yes' if c['eligible'] else 'no'} | {diff} | "
                     f"{c['best_epoch']} / {c['epochs_run']} / {c['epochs_budget']}{cut} | {minutes} |")  # fmt: skip
    lines.append("")
    if chosen is None:
        lines.append(f"No candidate's val AUC interval lies above {result['floor']} on every source.")
        return "\n".join(lines) + "\n"
    for r in result.get("references", []):
        d = r["minus_chosen"]
        lines.insert(len(lines) - 1, f"| `{r['name']}` (reference, not a candidate) | "
                     + " | ".join(_fmt(r["val"][s]) for s in sources)
                     + f" | {_fmt(r['val']['pooled'])} | — | {d['difference']:+.3f} [{d['ci_low']:+.3f}, "
                     f"{d['ci_high']:+.3f}] against the choice below | — | — |")  # fmt: skip
    ens = result["ensemble"]
    text = f"Chosen on validation: `{chosen}` (recipe {result['recipe']}, {result['n_val']} val faces)."
    if ens:
        v = ens["vs_best_single"]
        members = "+".join(ens["members"])
        verdict = f"replaces it: `{members}`" if len(ens["members"]) > 1 else "keeps the single model"
        text += (f" An ensemble of {' + '.join(f'`{t}`' for t in ens['tried'])} (mean of calibrated log-odds) "
                 f"{verdict}; chosen − best single on val {v['difference']:+.3f} [{v['ci_low']:+.3f}, "
                 f"{v['ci_high']:+.3f}], every member together {ens['val_auc']['+'.join(ens['tried'])]:.3f}.")  # fmt: skip
    lines.append(text)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument(
        "--detectors", nargs="+", default=["airl", "airl_rgb", "srm", "xception", "f3net", "clip_fft"]
    )
    p.add_argument(
        "--recipe", default="short", help="name of this set of --set overrides (a run-folder part)"
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=str(REPO / "runs" / "candidates"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--config-dir", default=str(REPO / "configs" / "cpu"))
    p.add_argument(
        "--floor", type=float, default=0.5, help="every source's val AUC interval must lie above this"
    )
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of each interval")
    p.add_argument("--table-only", action="store_true", help="choose from finished candidates; train nothing")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=RUN",
                   help="a trained run to compare on the same val faces (never chosen); repeatable")  # fmt: skip
    p.add_argument("--update-docs", type=Path, metavar="MD",
                   help="write the table between the <!-- CANDIDATES --> markers of this file")  # fmt: skip
    args = p.parse_args(argv)
    from fakescope.errors import InputError
    from fakescope.utils.atomic import atomic_write_text

    transfer = _transfer()
    out = Path(args.out)
    if not args.table_only:
        unknown = [d for d in args.detectors if not (Path(args.config_dir) / f"{d}.yaml").is_file()]
        if unknown:
            raise SystemExit(f"error: no recipe {Path(args.config_dir) / (unknown[0] + '.yaml')}")
        transfer.check_recipe(out, args.recipe, args.overrides)
        pooled = transfer._train_shipped().build_manifests(Path(args.data), out / "manifests")["pooled"]
        for det in args.detectors:
            print(f"== {det} [{args.recipe}]", flush=True)
            train_candidate(det, args.recipe, pooled, args)
    references = {}
    try:
        for ref in args.reference:
            name, sep, run = ref.partition("=")
            if not sep or not name or not run:
                raise InputError(f"--reference {ref!r}: expected NAME=RUN")
            pooled = out / "manifests" / "manifest_pooled.csv"
            if not pooled.is_file():
                manifests = transfer._train_shipped().build_manifests(Path(args.data), out / "manifests")
                pooled = manifests["pooled"]
            references[name] = score_reference(name, Path(run), pooled, out, args.device)
        result = choose(out, args.recipe, args.floor, args.bootstrap, references)
    except InputError as err:
        raise SystemExit(f"error: {err}") from None
    atomic_write_text(out / "candidates.json", json.dumps(result, indent=2))
    table = markdown(result)
    atomic_write_text(out / "candidates.md", table)
    print(table)
    if args.update_docs:
        from fakescope.utils.docblocks import write_blocks

        write_blocks(args.update_docs, {"CANDIDATES": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
