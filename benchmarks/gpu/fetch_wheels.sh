#!/usr/bin/env bash
# Download the wheels of benchmarks/gpu/wheels.txt into benchmarks/gpu/wheels/ and check their sha256.
#   bash benchmarks/gpu/fetch_wheels.sh            # on a machine with PyPI (no GPU needed)
# bitsandbytes 0.50.2 is one wheel for every CUDA (its libbitsandbytes_cuda130.so serves torch +cu130);
# peft 0.21.2 and 0.20.0 are the pins of the axolotl and the swift venv (scripts/toolenv.sh).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
mkdir -p wheels
for pin in bitsandbytes==0.50.2 peft==0.21.2 peft==0.20.0; do
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: "$pin" -d wheels
done
grep -v '^#' wheels.txt | (cd wheels && sha256sum -c -)
du -ch wheels/*.whl | tail -1
