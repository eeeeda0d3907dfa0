#!/usr/bin/env bash
# Installs what LAE needs on a fresh machine, from PyPI and Maven Central only.
# Safe to re-run: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON=${LAE_PYTHON:-python3.11}
TOOLS=.lae/tools

if [ ! -x "$TOOLS/bin/uv" ]; then
  echo "[bootstrap] installing uv $UV_VERSION into $TOOLS"
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

# uv.lock pins the whole tree; --frozen fails instead of silently re-resolving.
echo "[bootstrap] syncing .venv from uv.lock"
"$TOOLS/bin/uv" sync --frozen --quiet --python "$PYTHON"

bash scripts/fetch-jars.sh
