#!/usr/bin/env bash
# Build the API reference (HTML generated from the docstrings) with pdoc into docs/api, or into $1.
# Needs no network. Open docs/api/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-docs/api}"
mapfile -t MODULES < <(.venv/bin/python - <<'PY'
import pkgutil

import novelcraft

print("novelcraft")
for m in pkgutil.walk_packages(novelcraft.__path__, "novelcraft."):
    # the backends package has no __all__: pdoc documents its modules from the package itself
    if ".resources" not in m.name and not m.name.endswith("__main__") and ".backends." not in m.name:
        print(m.name)
PY
)
.venv/bin/python -m pdoc --docformat restructuredtext -o "$OUT" "${MODULES[@]}"
echo "API reference: $OUT/index.html (${#MODULES[@]} modules)"
