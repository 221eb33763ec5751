#!/usr/bin/env bash
# Create (or reuse) the virtual environment of a training tool and print its path, one line per tool.
#
#   bash scripts/toolenv.sh axolotl swift
#
# Axolotl and MS-SWIFT pin conflicting transformers/peft/trl versions, so each gets its own venv in a kept
# cache folder: ${NOVELCRAFT_TOOLENV_DIR:-~/.cache/novelcraft/toolenvs}/<tool>-<hash of the pinned spec>.
# A venv is reused only when its completion marker (written last) exists, so an interrupted install is
# redone from scratch on the next call. The tools run on files novelcraft renders, so novelcraft itself is
# not installed into them. Progress goes to stderr; stdout carries only the venv paths.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE="${NOVELCRAFT_TOOLENV_DIR:-$HOME/.cache/novelcraft/toolenvs}"
MARKER=".novelcraft-toolenv-complete"

# torch==2.13.0 is the CPU wheel for Python 3.11: any other torch (or Python 3.12) pulls GBs of CUDA.
TORCH_PIN="$(grep -E '^torch==' "$ROOT/constraints.txt")"
# bitsandbytes runs QLoRA on CPU from 0.50 on (the smoke recipes load the base model in 4 bit).
BNB_PIN="bitsandbytes==0.50.2"
AXOLOTL_PIN="axolotl==0.21.0"
SWIFT_PIN="ms-swift==4.6.0"
# ms-swift declares ranges; these are the versions tested with it here (axolotl pins its own exactly).
SWIFT_STACK="transformers==5.19.0 peft==0.20.0 trl==0.29.1 datasets==4.8.4 accelerate==1.15.0"
# Bump when the install procedure changes: it is part of the hash, so old venvs are not reused.
PROCEDURE=1

pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1 \
      && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$cand"; return
    fi
  done
  echo "toolenv: Python 3.11 is required (the CPU torch wheel is cp311 only); set PYTHON=..." >&2
  exit 1
}

spec_of() {
  case "$1" in
    axolotl) printf 'procedure=%s\npython=%s\n%s\n%s\n%s\n' "$PROCEDURE" "$PYVER" "$TORCH_PIN" "$BNB_PIN" "$AXOLOTL_PIN" ;;
    swift)   printf 'procedure=%s\npython=%s\n%s\n%s\n%s\n%s\n' "$PROCEDURE" "$PYVER" "$TORCH_PIN" "$BNB_PIN" "$SWIFT_PIN" "$SWIFT_STACK" ;;
    *) echo "toolenv: unknown tool '$1' (expected axolotl or swift)" >&2; exit 2 ;;
  esac
}

install_axolotl() {  # $1 = venv dir
  local venv="$1" dl="$1/.download"
  mkdir -p "$dl"
  # axolotl 0.21.0 declares Python>=3.12 but runs on 3.11; its dependencies are installed from its own
  # metadata (torch pinned), then the wheel itself without dependency resolution.
  "$venv/bin/pip" download --quiet --no-deps --dest "$dl" "$AXOLOTL_PIN" --ignore-requires-python
  local whl
  whl="$(ls "$dl"/axolotl-*.whl)"
  "$venv/bin/python" - "$whl" > "$dl/requirements.txt" <<'PY'
import sys, zipfile
from email.parser import Parser
with zipfile.ZipFile(sys.argv[1]) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zf.read(name).decode())
for req in meta.get_all("Requires-Dist") or []:
    if "extra ==" not in req.replace("extra==", "extra =="):
        print(req)
PY
  "$venv/bin/pip" install --quiet -c "$ROOT/constraints.txt" -r "$dl/requirements.txt" "$BNB_PIN"
  "$venv/bin/pip" install --quiet --no-deps --ignore-requires-python "$whl"
  rm -rf "$dl"
}

install_swift() {
  # shellcheck disable=SC2086  # SWIFT_STACK is a list of requirements
  "$1/bin/pip" install --quiet -c "$ROOT/constraints.txt" "$SWIFT_PIN" "$BNB_PIN" $SWIFT_STACK
}

smoke_import() {  # fail the install (no marker) when the tool cannot be imported
  case "$1" in
    axolotl) "$2/bin/python" -c "import axolotl.utils.config, peft, bitsandbytes" ;;
    swift)   "$2/bin/python" -c "import swift.arguments, swift.cli.sft, peft, bitsandbytes" ;;
  esac
}

[ "$#" -gt 0 ] || { echo "usage: bash scripts/toolenv.sh axolotl|swift ..." >&2; exit 2; }
PY="$(pick_python)"
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
mkdir -p "$BASE"
for tool in "$@"; do
  spec="$(spec_of "$tool")"
  hash="$(printf '%s' "$spec" | sha256sum | cut -c1-12)"
  venv="$BASE/$tool-$hash"
  (
    # One installer per venv at a time; a second caller waits, then finds the marker.
    exec 9>"$venv.lock"
    flock 9
    if [ -f "$venv/$MARKER" ]; then exit 0; fi
    rm -rf "$venv"
    echo "toolenv: installing $tool into $venv (several minutes)" >&2
    start=$(date +%s)
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    ( export OMP_NUM_THREADS=1 PIP_DISABLE_PIP_VERSION_CHECK=1; "install_$tool" "$venv" ) >&2
    # torchvision/torchaudio from PyPI are CUDA builds that break transformers imports; text needs neither.
    "$venv/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
    smoke_import "$tool" "$venv" >&2
    "$venv/bin/pip" freeze > "$venv/requirements.lock"
    printf '%s\n' "$spec" > "$venv/spec.txt"
    touch "$venv/$MARKER"
    echo "toolenv: $tool ready in $(( $(date +%s) - start )) s" >&2
  )
  echo "$venv"
done
