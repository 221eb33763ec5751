#!/usr/bin/env bash
# Habits, checked before the tests: ruff (lint + format), mypy on the package, the API reference builds.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check novelcraft tests benchmarks scripts
.venv/bin/ruff format --check novelcraft tests benchmarks scripts
.venv/bin/mypy novelcraft
docs="$(mktemp -d)"
trap 'rm -rf "$docs"' EXIT
bash scripts/docs.sh "$docs" >/dev/null
echo "lint: ruff, mypy and the API reference are clean"
