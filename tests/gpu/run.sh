#!/usr/bin/env bash
# GPU figures: installs the [gpu] extra (onnxruntime-gpu with PyPI's CUDA and cuDNN libraries) and
# [train] (torch, MONAI, onnxconverter-common: to export the cervical paper configuration and make
# fp16 copies) into their own venv, then runs tests/gpu/bench.py: each task end to end, each
# network's throughput and the cervical paper configuration per study, on CPU and GPU side by side
# in one process; then tests/gpu/fp16_check.py. Without a working CUDA provider it says why and
# measures the CPU only.
#     bash tests/gpu/run.sh [bench.py options, e.g. --repeat 10 --json gpu.json]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3.11}
VENV=${GPU_VENV:-build/gpu-venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
"$VENV/bin/pip" install -q -e '.[train,gpu]'
# onnxruntime (a base dependency) and onnxruntime-gpu both install the `onnxruntime` module: keep
# only the GPU build, reinstalled after removing both so none of its files is missing.
ORT_GPU=$("$VENV/bin/pip" show onnxruntime-gpu | sed -n 's/^Version: //p')  # as resolved above
"$VENV/bin/pip" uninstall -q -y onnxruntime onnxruntime-gpu
"$VENV/bin/pip" install -q --no-deps "onnxruntime-gpu==$ORT_GPU"
"$VENV/bin/python" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
"$VENV/bin/python" -m tests.gpu.bench "$@"
# fp16: each task's held-out metrics with fp16 weights against fp32, on the device the engine
# picks (the GPU here); the engine may use fp16 only where every metric stays within 0.5%.
"$VENV/bin/python" -m tests.gpu.fp16_check --n "${FP16_N:-50}" --json build/fp16_check_gpu.json
