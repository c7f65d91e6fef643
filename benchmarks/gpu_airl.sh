#!/usr/bin/env bash
# AIRL and its two single-stream ablations at the paper's size and budget on one GPU (issue 11): the
# configs/gpu recipes (224 px, up to 40 epochs, patience 10; Lite0 stands in for B4) trained on the
# whole dfdc-faces train split and scored on its test split, exactly as benchmarks/learning_curve.py
# does for the CPU recipes. Each run has a wall-clock budget (train.max_minutes); a run that hits it
# is marked time_cut in its row and in every table, never passed off as the recipe's result.
#
#   bash benchmarks/gpu_airl.sh DATA_DIR OUT_DIR [DETECTOR:MINUTES ...]
#
# DATA_DIR holds dfdc-faces/ (a copy of ../shared/data, since only the repo travels to a lent GPU).
# OUT_DIR receives gpu_runs.tar.gz (each run's learning_curve_row.json, log.csv, test metrics and
# predictions; refreshed after every run, so a cut session keeps what finished) and gpu_airl.log.
# Wheels in .gpu/whl (packages the GPU image lacks) are installed to /tmp/site first when present.
# DEVICE=cpu WHEELS=none and EXTRA="--set ..." make a quick dry run on a machine without a GPU.
set -u
DATA=$1
OUT=$2
shift 2
RUNS=${*:-airl:3 airl_rgb:2.5 airl_freq:1.5}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
LC=${LC_OUT:-runs/learning_curve_gpu}
mkdir -p "$OUT" "$LC"
exec > >(tee -a "$OUT/gpu_airl.log") 2>&1
WHEELS=${WHEELS:-.gpu/whl}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
$PY -c "import torch, timm, pydantic; print('torch', torch.__version__, 'timm', timm.__version__, 'pydantic', pydantic.__version__, 'cuda', torch.cuda.is_available())"
df -h /dev/shm 2>/dev/null | tail -1
# Loader workers hand batches over through /dev/shm, which containers often keep small: check that 12
# workers can pass a few full-size batches, and fall back to loading in the main process if they cannot.
if ! timeout 120 $PY - <<'PYEOF'
import torch
from torch.utils.data import DataLoader, Dataset
class D(Dataset):
    def __len__(self): return 32 * 40
    def __getitem__(self, i): return torch.rand(3, 224, 224)
n = sum(1 for _ in DataLoader(D(), batch_size=32, num_workers=12, pin_memory=torch.cuda.is_available()))
print("loader check: 12 workers passed", n, "batches")
PYEOF
then
  echo "!! 12 loader workers failed: training with data.num_workers=0"
  EXTRA="${EXTRA:-} --set data.num_workers=0"
fi
for item in $RUNS; do
  det=${item%%:*}
  minutes=${item##*:}
  echo "== $det (train.max_minutes=$minutes) $(date -u +%T)"
  # shellcheck disable=SC2086
  $PY benchmarks/learning_curve.py --config-dir configs/gpu --device "$DEVICE" --data "$DATA" --out "$LC" \
    --detectors "$det" --sizes all --set train.progress=false --set "train.max_minutes=$minutes" ${EXTRA:-} \
    || echo "!! $det failed"
  tar -czf "$OUT/gpu_runs.tmp.tar.gz" -C "$LC" --exclude='*.safetensors' --exclude='checkpoints' \
    $(cd "$LC" && ls -d learning_curve.json runs/*/learning_curve_row.json runs/*/log.csv runs/*/steps.csv runs/*/eval 2>/dev/null) \
    && mv "$OUT/gpu_runs.tmp.tar.gz" "$OUT/gpu_runs.tar.gz"
done
echo "== done $(date -u +%T)"
