#!/usr/bin/env bash
# The GPU paths in one go, on a machine with one CUDA device: the bf16 tests, then the
# fine-tuning, determinism and inference benchmarks; each writes a log or table to $OUT.
#   OUT=bench-out bench/gpu_check.sh DECODER_DIR ENCODER_DIR
# The two folders need only configuration and tokenizer files (weights are drawn at random).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench-out}"; mkdir -p "$out"
decoder="$1"; encoder="$2"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/machine.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$out/machine.txt"
python3 -m pytest -p no:cacheprovider -n 0 -v tests/w2s_ray/test_gpu_paths.py \
  tests/w2s_ray/infer/test_backend_contract.py 2>&1 | tail -25 | tee "$out/pytest.log"
python3 bench/finetune_throughput.py 2>&1 | grep -v "Loading weights" | tee "$out/finetune.md"
python3 bench/determinism.py --preset smollm2-135m --steps 20 --batch 16 --seq 128 2>&1 \
  | grep -v "Loading weights" | tee "$out/determinism.md"
python3 bench/inference_backends.py --model "$decoder" --encoder "$encoder" --random-weights \
  --texts 4096 2>&1 | grep -v "Loading weights" | tee "$out/inference.md"
python3 bench/lora_memory.py --models qwen2.5-0.5b qwen2.5-7b --batch 32 --seq 128 --dtype bf16 \
  --full 2>&1 | grep -v "Loading weights" | tee "$out/lora.md"
