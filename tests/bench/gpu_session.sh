#!/usr/bin/env bash
# Everything docs/benchmarks.md records from a GPU, in one run (about 8 minutes on an H100):
# CUDA correctness tests, the GPU augmentation and training-step benchmarks, and `austack bench`
# for resnet50 and swin_base with WCE and AUNCE on a synthetic BP4D store.
#
#   tests/bench/gpu_session.sh STORE.h5 OUT_DIR
#
# The store: `austack synth RAW --layout bp4d --subjects 24 --sessions 3 --frames 42 --seed 7` then
# `austack prepare bp4d RAW STORE.h5` (3023 frames of 256 px). Installs austack without
# dependencies: the GPU image brings torch, timm, h5py, opencv, click and rich.
set -uo pipefail
STORE=${1:?store}; OUT=${2:?output folder}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/session.log") 2>&1

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
python3 -c "import sys, torch, timm; print(sys.version.split()[0], 'torch', torch.__version__, 'timm', timm.__version__)"

echo "== CUDA correctness"
python3 -m pytest -p no:cacheprovider -q tests/test_cuda.py tests/test_losses.py -k "cuda"
echo "== GPU augmentation"
python3 -m pytest -p no:cacheprovider -q tests/bench/test_bench_augment.py -k cuda --benchmark-enable \
    --benchmark-json="$OUT/augment.json" --benchmark-columns=median,iqr,rounds
echo "== training step, fp32 baseline vs austack"
python3 -m pytest -p no:cacheprovider -q tests/bench/test_bench_train_step_cuda.py --benchmark-enable \
    --benchmark-json="$OUT/step.json" --benchmark-columns=median,iqr,rounds

echo "== austack bench"
for run in "resnet50 wce" "resnet50 aunce.paper" \
           "swin_base_patch4_window7_224 wce" "swin_base_patch4_window7_224 aunce.paper"; do
    echo "-- austack bench $run"
    austack bench $run --data "$STORE" --fold 1 --epochs 3 --batch-size 64 --workers 12 --linear-epochs 2 \
        --device cuda --db "$OUT/gpu.sqlite" --out-dir /tmp/gpu-runs
done
austack leaderboard --db "$OUT/gpu.sqlite" --dataset bp4d --no-published
(cd /tmp && find gpu-runs -name epochs.csv | tar czf "$OUT/epochs.tar.gz" -T -)
python3 - "$OUT/step.json" <<'PY'
import json, sys
rows = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    p = b["params"]
    rows.setdefault((p["backbone"], p["loss_name"]), {})[p["mode"]] = b
print(f"{'backbone':34} {'loss':12} {'baseline img/s':>15} {'austack img/s':>14} {'ratio':>6} {'peak MB (base/austack)':>24}")
for (bb, loss), m in rows.items():
    if len(m) == 2:
        a, b = m["austack"]["extra_info"], m["baseline"]["extra_info"]
        print(f"{bb:34} {loss:12} {b['images_per_s']:15.0f} {a['images_per_s']:14.0f} "
              f"{a['images_per_s'] / b['images_per_s']:6.2f} {b['peak_mem_mb']:>11.0f} / {a['peak_mem_mb']:.0f}")
PY
