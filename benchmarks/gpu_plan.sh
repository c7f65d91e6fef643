#!/usr/bin/env bash
# The GPU plan: three measurements for one lent GPU (about 10 device minutes), each with its own
# wall-clock budget, each writing a result labelled with the device it ran on ("GPU figures" and the
# device's name; a CPU dry run is labelled as one), and a tarball refreshed after every step so a
# session cut short keeps what finished.
#
#   bash benchmarks/gpu_plan.sh DATA_DIR OUT_DIR
#
# 1. inr_speed.json  batched INR fitting speed (faces/s) at 64, 128 and 224 px on DFDC faces, through
#                    the engine's batched path (inr.cpu_path batched; what a GPU uses), fp32 defaults
#                    and the bf16 settings; goal: 100 faces/s at 224 px.
# 2. heatmaps.json   `fakescope fit-inr` at 224 px on the whole dfdc-faces manifest (its train, val
#                    and test faces) into a content-addressed cache (HEATMAP_CACHE, printed): a cut run
#                    keeps every heatmap it wrote, and a rerun fits only the rest.
# 3. train.json      the shipped detector's recipe (configs/shipped/airl.yaml) at 224 px through
#                    scripts/train_shipped.py --until train, with train.max_minutes inside the step's
#                    budget; marked GPU-trained, and budget-cut when the time (or the epoch cap) ended it.
#                    Sources missing from DATA_DIR are left out of the pooled manifest (and said so).
#
# DATA_DIR holds dfdc-faces/ (and, for the full pooled recipe of step 3, dfdc-faces-more/,
# ffhq-stylegan/, ciplab-photoshop/): a copy of ../shared/data, since only the repo travels to a GPU.
# OUT_DIR receives gpu_plan.log, the three JSON files and gpu_plan.tar.gz (those, fit-inr's
# records.csv and summary.json, the training summary and log.csv, and a snapshot of the log). Bulky
# work (the heatmap cache, the training run, crop cache) goes to WORK (default runs/gpu_plan).
#
# Knobs: DEVICE (cuda; cpu for a dry run); TINY=1 (2 faces timed at 16 and 32 px, 8 faces per source
# for steps 2 and 3, 5 fitting steps, 2 training steps at 32 px: the dry run tests/test_gpu_plan.py
# runs); INR_MIN / HEATMAP_MIN / TRAIN_MIN (minutes per step: 2 / 3 / 4); INR_N (faces timed per size,
# 256); INR_BATCH and HM_BATCH (faces per batched fit, 32); TRAIN_WORKERS (loader workers, 12);
# THREADS (torch intra-op threads, 2); TRAIN_SET ("KEY=VALUE ..." extra training overrides); STEPS
# (which steps run: "inr_speed heatmaps train"; e.g. two device calls when the data and the wheels do
# not travel together); WORK; HEATMAP_CACHE; PY; WHEELS (folder of wheels installed to /tmp/site first
# when it holds any; default .gpu/whl).
set -u
if [ $# -ne 2 ]; then
  echo "usage: bash benchmarks/gpu_plan.sh DATA_DIR OUT_DIR" >&2
  exit 2
fi
DATA=$1
OUT=$2
if [ ! -f "$DATA/dfdc-faces/manifest.csv" ]; then
  echo "gpu_plan: $DATA/dfdc-faces/manifest.csv not found (DATA_DIR is a copy of ../shared/data)" >&2
  exit 2
fi
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
TINY=${TINY:-0}
INR_MIN=${INR_MIN:-2}
HEATMAP_MIN=${HEATMAP_MIN:-3}
TRAIN_MIN=${TRAIN_MIN:-4}
THREADS=${THREADS:-2}
WORK=${WORK:-runs/gpu_plan}
STEPS=${STEPS:-inr_speed heatmaps train}
if [ "$TINY" = 1 ]; then
  INR_SIZES="16 32" INR_N=${INR_N:-2} INR_BATCH=${INR_BATCH:-2} INR_SET='{"max_steps": 5}'
  HM_RES=32 HM_BATCH=${HM_BATCH:-4} HM_ARGS="--set inr.max_steps=5"
  TRAIN_RES=32 TRAIN_WORKERS=${TRAIN_WORKERS:-0}
  TINY_SET="train.epochs=1 train.max_steps_per_epoch=2 train.batch_size=4 data.persistent_workers=false"
else
  INR_SIZES="64 128 224" INR_N=${INR_N:-256} INR_BATCH=${INR_BATCH:-32} INR_SET='{}'
  HM_RES=224 HM_BATCH=${HM_BATCH:-32} HM_ARGS=""
  TRAIN_RES=224 TRAIN_WORKERS=${TRAIN_WORKERS:-12} TINY_SET=""
fi
mkdir -p "$OUT" || exit 1
DATA=$(cd "$DATA" && pwd)
OUT=$(cd "$OUT" && pwd)
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac
cd "$(dirname "$0")/.." || exit 1  # the repo root: benchmarks/, scripts/ and src/ are used from there
mkdir -p "$WORK" || exit 1  # WORK, HEATMAP_CACHE and WHEELS: relative to the repo root
WORK=$(cd "$WORK" && pwd)
HEATMAP_CACHE=${HEATMAP_CACHE:-$WORK/inr_cache_${HM_RES}}
rm -f "$OUT/inr_speed.json" "$OUT/heatmaps.json" "$OUT/train.json"  # no result of an earlier run passes for this one's
exec > >(tee -a "$OUT/gpu_plan.log") 2>&1
echo "== gpu_plan $(date -u +%FT%TZ) DEVICE=$DEVICE TINY=$TINY budgets (min): inr $INR_MIN, heatmaps $HEATMAP_MIN, train $TRAIN_MIN"
echo "   data $DATA -> out $OUT, work $WORK, heatmap cache $HEATMAP_CACHE"
WHEELS=${WHEELS:-.gpu/whl}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export GP_DATA=$DATA GP_OUT=$OUT GP_WORK=$WORK GP_DEVICE=$DEVICE GP_THREADS=$THREADS GP_TINY=$TINY
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true

# The label every result carries: which device made the figures (torch is imported only for a GPU).
if ! "$PY" - <<'PYEOF'
import json, os, platform, sys
from importlib.metadata import version
from fakescope.utils.atomic import atomic_write_json
dev = os.environ["GP_DEVICE"]
if dev.startswith("cuda"):
    import torch
    if not torch.cuda.is_available():
        sys.exit(f"!! DEVICE={dev} but torch {torch.__version__} sees no GPU (DEVICE=cpu makes a dry run)")
    figures, name = "GPU figures", torch.cuda.get_device_name(torch.device(dev))
else:
    figures, name = "CPU dry run (not GPU figures)", f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
label = {"figures": figures, "device": dev, "device_name": name, "tiny": os.environ["GP_TINY"] == "1",
         "torch": version("torch")}
atomic_write_json(os.path.join(os.environ["GP_WORK"], "label.json"), label)
print("label:", json.dumps(label))
PYEOF
then
  exit 2
fi
export GP_LABEL=$WORK/label.json

# tar the results so far: the step JSONs from OUT, the rest from WORK (written next to it, then renamed)
pack() {
  cp "$OUT/gpu_plan.log" "$WORK/gpu_plan.log.snapshot" 2>/dev/null
  local outs=() works=() f
  for f in inr_speed.json heatmaps.json train.json; do [ -f "$OUT/$f" ] && outs+=("$f"); done
  for f in label.json gpu_plan.log.snapshot heatmaps/records.csv heatmaps/summary.json \
    train/train_summary.json train/run/log.csv train/run/config.yaml; do
    [ -f "$WORK/$f" ] && works+=("$f")
  done
  tar -czf "$OUT/gpu_plan.tmp.tar.gz" -C "$OUT" "${outs[@]}" -C "$WORK" "${works[@]}" \
    && mv "$OUT/gpu_plan.tmp.tar.gz" "$OUT/gpu_plan.tar.gz" && echo "   packed $OUT/gpu_plan.tar.gz"
}
wanted() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
# step_end EXIT_CODE NAME MINUTES: say how a step ended (124/137: timeout stopped it at its budget)
step_end() {
  case $1 in
    0) echo "== step $2: done $(date -u +%T)" ;;
    124 | 137) echo "!! step $2: stopped at its ${3}-minute budget $(date -u +%T) (its results so far are kept)" ;;
    *) echo "!! step $2 failed (exit $1) $(date -u +%T); going on to the next step" ;;
  esac
}

# --- 1. batched INR fitting speed ------------------------------------------------------------------
if wanted inr_speed; then
echo "== step 1 inr_speed: batched INR fitting, sizes $INR_SIZES, $INR_N faces each ($INR_MIN min) $(date -u +%T)"
GP_INR_SIZES=$INR_SIZES GP_INR_N=$INR_N GP_INR_BATCH=$INR_BATCH GP_INR_SET=$INR_SET \
  timeout -k 15 "${INR_MIN}m" "$PY" - <<'PYEOF'
import json, os, time
from pathlib import Path
import numpy as np
import torch
from fakescope.data.images import load_image_rgb
from fakescope.data.manifest import read_manifest
from fakescope.inr import InrConfig, heatmaps_for_images
from fakescope.inr.engine import resize_for_inr
from fakescope.utils.atomic import atomic_write_json

env = os.environ
torch.set_num_threads(int(env["GP_THREADS"]))
dev = torch.device(env["GP_DEVICE"])
n, batch = int(env["GP_INR_N"]), int(env["GP_INR_BATCH"])
rows = read_manifest(Path(env["GP_DATA"]) / "dfdc-faces" / "manifest.csv")[:n]
faces = [load_image_rgb(r.path) for r in rows]
settings = {"fp32": {}, "bf16": {"bf16_warmup_margin_db": 4.0, "bf16_backward": True}}
out = Path(env["GP_OUT"]) / "inr_speed.json"
report = {**json.loads(Path(env["GP_LABEL"]).read_text()), "step": "inr_speed", "faces": len(faces),
          "batch_size": batch, "goal": "100 faces/s at 224 px", "complete": False, "results": {}}

def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)

for size in [int(s) for s in env["GP_INR_SIZES"].split()]:
    images = [resize_for_inr(f, size) for f in faces]
    for name, update in settings.items():
        cfg = InrConfig(resolution=size, cpu_path="batched", batch_size=batch,
                        **{**update, **json.loads(env["GP_INR_SET"])})
        heatmaps_for_images(images[:batch], cfg.model_copy(update={"max_steps": 3}), dev)  # warm up
        sync()
        t0 = time.perf_counter()
        _, recs = heatmaps_for_images(images, cfg, dev)
        sync()
        wall = time.perf_counter() - t0
        row = {"faces_per_second": len(recs) / wall, "wall_seconds": wall,
               "mean_steps": float(np.mean([r.steps for r in recs])),
               "mean_psnr": float(np.mean([r.final_psnr for r in recs])),
               "share_reached": float(np.mean([r.reached for r in recs])), "settings": update}
        report["results"].setdefault(str(size), {})[name] = row
        print(f"   [{size}px] {name}: {row['faces_per_second']:.1f} faces/s, {row['mean_steps']:.0f} steps, "
              f"{row['mean_psnr']:.2f} dB, {row['share_reached']:.0%} reached", flush=True)
        atomic_write_json(out, report)  # a cut step keeps the sizes it finished
best = max((r["faces_per_second"] for r in report["results"].get("224", {}).values()), default=None)
report.update(complete=True, best_224_faces_per_second=best, goal_met=None if best is None else best >= 100)
atomic_write_json(out, report)
print(f"   {report['figures']} ({report['device_name']}) -> {out}")
PYEOF
step_end $? inr_speed "$INR_MIN"
pack
else echo "== step inr_speed: skipped (STEPS=$STEPS)"; fi

# --- 2. INFER's heatmaps of every DFDC face ----------------------------------------------------------
# TINY: each source's first 4 real and 4 fake faces (absolute paths), for steps 2 and 3
TRAIN_DATA=$DATA
if [ "$TINY" = 1 ]; then
  for src in dfdc-faces dfdc-faces-more ffhq-stylegan ciplab-photoshop; do
    m=$DATA/$src/manifest.csv
    [ -f "$m" ] || continue
    mkdir -p "$WORK/tiny_data/$src"
    { head -1 "$m"; grep ',real,' "$m" | head -4; grep ',fake,' "$m" | head -4; } \
      | awk -F, -v d="$(cd "$DATA/$src" && pwd)" 'NR == 1 { print; next } { print d "/" $0 }' \
        >"$WORK/tiny_data/$src/manifest.csv"
  done
  TRAIN_DATA=$WORK/tiny_data
fi
MANIFEST=$TRAIN_DATA/dfdc-faces/manifest.csv
if wanted heatmaps; then
echo "== step 2 heatmaps: fit-inr ${HM_RES} px on $MANIFEST into $HEATMAP_CACHE ($HEATMAP_MIN min) $(date -u +%T)"
rm -f "$WORK/heatmaps/summary.json" "$WORK/heatmaps/records.csv"
# progress: the heatmaps in the cache, every 20 s (fit-inr's own bar is off: it would fill the log)
(while sleep 20 >/dev/null 2>&1; do echo "   heatmaps cached: $(find "$HEATMAP_CACHE" -name '*.safetensors' 2>/dev/null | wc -l) $(date -u +%T)"; done) &
progress=$!
# shellcheck disable=SC2086
timeout -k 15 "${HEATMAP_MIN}m" "$PY" -m fakescope fit-inr --manifest "$MANIFEST" --out "$WORK/heatmaps" \
  --cache "$HEATMAP_CACHE" --device "$DEVICE" --set "inr.resolution=$HM_RES" --set "inr.batch_size=$HM_BATCH" \
  $HM_ARGS --quiet
rc=$?
kill "$progress" 2>/dev/null
wait "$progress" 2>/dev/null
step_end $rc heatmaps "$HEATMAP_MIN"
GP_RC=$rc GP_MANIFEST=$MANIFEST GP_CACHE=$HEATMAP_CACHE GP_RES=$HM_RES "$PY" - <<'PYEOF'
import json, os
from pathlib import Path
from fakescope.data.manifest import read_manifest, split_by_group
from fakescope.utils.atomic import atomic_write_json

env = os.environ
rows = read_manifest(env["GP_MANIFEST"])
summary = Path(env["GP_WORK"]) / "heatmaps" / "summary.json"
cache = Path(env["GP_CACHE"])
rc = int(env["GP_RC"])
report = {**json.loads(Path(env["GP_LABEL"]).read_text()), "step": "heatmaps", "resolution": int(env["GP_RES"]),
          "manifest": env["GP_MANIFEST"], "faces": len(rows),
          "faces_by_split": {s: len(r) for s, r in split_by_group(rows).items()},
          "exit_code": rc, "budget_cut": rc in (124, 137), "cache_dir": str(cache),
          "cache_files": sum(1 for _ in cache.rglob("*.safetensors")) if cache.is_dir() else 0,
          "summary": json.loads(summary.read_text()) if summary.is_file() else None}
atomic_write_json(Path(env["GP_OUT"]) / "heatmaps.json", report)
fit = report["summary"] or {}
print(f"   {report['figures']} ({report['device_name']}): {report['cache_files']} heatmaps cached of {len(rows)} faces"
      + (f", {fit['fitted_images_per_second']:.1f} fitted faces/s end to end" if fit.get("fitted_images_per_second") else ""))
PYEOF
pack
else echo "== step heatmaps: skipped (STEPS=$STEPS)"; fi

# --- 3. the shipped detector's recipe at 224 px ------------------------------------------------------
# train.max_minutes leaves a fifth of the step (at least 20 s) for set-up and the last validation.
if wanted train; then
MAX_MIN=$(awk -v m="$TRAIN_MIN" 'BEGIN { x = m * 0.8; if (m - x < 1 / 3) x = m - 1 / 3; if (x < 0.1) x = 0.1; printf "%.2f", x }')
if [ "$TRAIN_WORKERS" -gt 0 ]; then
  # Loader workers hand batches over through /dev/shm, which containers often keep small: check that
  # the workers can pass a few full-size batches, and fall back to the main process if they cannot.
  if ! GP_WORKERS=$TRAIN_WORKERS timeout 60 "$PY" - <<'PYEOF'
import os
import torch
from torch.utils.data import DataLoader, Dataset
class D(Dataset):
    def __len__(self): return 32 * 40
    def __getitem__(self, i): return torch.rand(3, 224, 224)
w = int(os.environ["GP_WORKERS"])
n = sum(1 for _ in DataLoader(D(), batch_size=32, num_workers=w, pin_memory=torch.cuda.is_available()))
print(f"   loader check: {w} workers passed {n} batches")
PYEOF
  then
    echo "!! $TRAIN_WORKERS loader workers failed: training with data.num_workers=0"
    TRAIN_WORKERS=0
  fi
fi
echo "== step 3 train: configs/shipped/airl.yaml at ${TRAIN_RES} px, train.max_minutes=$MAX_MIN ($TRAIN_MIN min) $(date -u +%T)"
touch "$WORK/train.started"  # a training summary older than this is not this call's
GP_SETS="data.image_size=$TRAIN_RES train.max_minutes=$MAX_MIN data.num_workers=$TRAIN_WORKERS data.crop_cache_dir=$WORK/crops train.progress=false $TINY_SET ${TRAIN_SET:-}" \
  GP_TRAIN_DATA=$TRAIN_DATA timeout -k 20 "${TRAIN_MIN}m" "$PY" - <<'PYEOF'
import os, sys
from pathlib import Path
sys.path.insert(0, "scripts")
import train_shipped  # its manifest and train stages, as the shipped detector was made

env = os.environ
data = Path(env["GP_TRAIN_DATA"])
missing = [s for s in train_shipped.SOURCES if not (data / s / "manifest.csv").is_file()]
if missing:
    print(f"!! not in {data}: {', '.join(missing)}; the pooled manifest is made of the other sources", flush=True)
    train_shipped.SOURCES = {k: v for k, v in train_shipped.SOURCES.items() if k not in missing}
sets = [a for s in env["GP_SETS"].split() for a in ("--set", s)]
sys.exit(train_shipped.main(["--data", str(data), "--out", str(Path(env["GP_WORK"]) / "train"),
                             "--device", env["GP_DEVICE"], "--threads", env["GP_THREADS"], "--until", "train", *sets]))
PYEOF
rc=$?
step_end $rc train "$TRAIN_MIN"
GP_RC=$rc GP_RES=$TRAIN_RES GP_MAX_MIN=$MAX_MIN GP_TRAIN_DATA=$TRAIN_DATA "$PY" - <<'PYEOF'
import json, os
from pathlib import Path
from fakescope.utils.atomic import atomic_write_json

env = os.environ
work = Path(env["GP_WORK"]) / "train"
summary_file = work / "train_summary.json"
fresh = summary_file.is_file() and summary_file.stat().st_mtime >= (Path(env["GP_WORK"]) / "train.started").stat().st_mtime
summary = json.loads(summary_file.read_text()) if fresh else None
label = json.loads(Path(env["GP_LABEL"]).read_text())
rc = int(env["GP_RC"])
# fakescope.train.trainer.budget_cut's rule (importing the trainer would cost a torch import here)
cut = bool(summary) and (bool(summary.get("time_cut")) or (not summary["stopped_early"]
                                                           and summary["epochs_run"] >= summary["epochs_budget"]))
trained = "GPU-trained" if label["figures"] == "GPU figures" else "CPU dry run"
if summary is None:
    verdict = f"{trained}: no finished training call (exit {rc})"
else:
    verdict = trained + (", budget-cut" if cut else "")
data = Path(env["GP_TRAIN_DATA"])
report = {**label, "step": "train", "recipe": "configs/shipped/airl.yaml", "image_size": int(env["GP_RES"]),
          "train_max_minutes": float(env["GP_MAX_MIN"]), "exit_code": rc, "killed_at_budget": rc in (124, 137),
          "sources": [s for s in ("dfdc-faces", "dfdc-faces-more", "ffhq-stylegan", "ciplab-photoshop")
                      if (data / s / "manifest.csv").is_file()],
          "trained": trained, "budget_cut": cut if summary else None, "label": verdict, "summary": summary,
          "run_dir": str(work / "run")}
atomic_write_json(Path(env["GP_OUT"]) / "train.json", report)
print(f"   {verdict} ({label['device_name']})"
      + (f": best val AUC {summary['best_val_auc']:.3f}, {summary['epochs_run']} of {summary['epochs_budget']} epochs"
         if summary else ""))
PYEOF
pack
else echo "== step train: skipped (STEPS=$STEPS)"; fi
echo "== gpu_plan done $(date -u +%T): results in $OUT (gpu_plan.tar.gz, gpu_plan.log)"
