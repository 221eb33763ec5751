#!/usr/bin/env bash
# On the GPU machine, from the repository root, with benchmarks/gpu/wheels/ carried along:
#   bash benchmarks/gpu/run_full_shape.sh OUT_DIR [--variants NAME...] [--steps N]
# Installs the carried wheels into benchmarks/gpu/site/ (no registry, no dependencies: the machine's
# torch, transformers, accelerate and numpy are used) and runs the three full-shape variants of
# train_qlora.py (Qwen3-30B-A3B shapes, RANDOM weights), each in its own process. Writes
# OUT_DIR/train_full_shape.md and OUT_DIR/train_full_shape.json. About 2 minutes per variant on an H200.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:?usage: run_full_shape.sh OUT_DIR [train_qlora.py options]}"; shift
W=benchmarks/gpu/wheels SITE=benchmarks/gpu/site
mkdir -p "$OUT" "$SITE"
grep -v '^#' benchmarks/gpu/wheels.txt | (cd "$W" && sha256sum -c -)
python -m pip install --quiet --no-deps --no-index --target "$SITE/bitsandbytes" "$W"/bitsandbytes-0.50.2-*.whl
python -m pip install --quiet --no-deps --no-index --target "$SITE/peft-0.21.2" "$W"/peft-0.21.2-*.whl
python -m pip install --quiet --no-deps --no-index --target "$SITE/peft-0.20.0" "$W"/peft-0.20.0-*.whl
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
python benchmarks/train_qlora.py --full-shape --site "$SITE" --json "$OUT/train_full_shape.json" "$@" | tee "$OUT/train_full_shape.md"
