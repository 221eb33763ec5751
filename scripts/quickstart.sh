#!/usr/bin/env bash
# Fresh machine -> the main job on the bundled sample book (The Iron Heel, data/books/iron-heel.epub):
# install, run the prep recipe, validate what it wrote against the schemas and token budgets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/novelcraft prep recipes/prep/default.yaml "$@"
.venv/bin/novelcraft validate runs/sample/books --recipe recipes/prep/default.yaml
