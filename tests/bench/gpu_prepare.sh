#!/usr/bin/env bash
# `prepare --device cuda` on a lent GPU, in one run (about 2 minutes): its CUDA test (nvJPEG and
# the batched warp within 2 grey levels of the CPU path) and frames/s against one CPU core.
# Needs torch, torchvision, opencv, h5py and scikit-image there; not dlib or dask (the
# astronaut landmarks are stored in tests/data; tested here with both blocked).
#
#   tests/bench/gpu_prepare.sh OUT_DIR
set -uo pipefail
OUT=${1:?output folder}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_prepare.log") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
python3 -m pytest -p no:cacheprovider -q -W ignore::DeprecationWarning tests/test_prepare_gpu.py
python3 -W ignore tests/bench/bench_prepare_gpu.py --frames 1024 --device cuda
python3 -m pytest -p no:cacheprovider -q -W ignore::DeprecationWarning tests/bench/test_bench_prepare.py \
    --benchmark-enable --benchmark-columns=min,median,rounds
