#!/usr/bin/env bash
# Installs what LAE needs on a fresh machine, from PyPI and Maven Central only.
# Safe to re-run: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
TOOLS=.lae/tools
# Only the machine's own Python 3.11: uv must not try to download one (no such registry here).
export UV_PYTHON_DOWNLOADS=never
PYTHON=${LAE_PYTHON:-$(command -v python3.11 || command -v python3 || true)}
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "[bootstrap] error: LAE needs Python 3.11 (set LAE_PYTHON to its path)" >&2
  exit 1
fi
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "[bootstrap] error: $tool not found on PATH" >&2; exit 1; }
done

if [ ! -x "$TOOLS/bin/uv" ]; then
  echo "[bootstrap] installing uv $UV_VERSION into $TOOLS"
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

# uv.lock pins the whole tree; --frozen fails instead of silently re-resolving.
# --compile-bytecode: machines that export PYTHONDONTWRITEBYTECODE=1 (this one does) would
# otherwise re-compile every imported module in every process — seconds per Airflow task,
# Spark driver and archive run. Python still reads .pyc files written at install time.
echo "[bootstrap] syncing .venv from uv.lock"
"$TOOLS/bin/uv" sync --frozen --quiet --compile-bytecode --python "$PYTHON"

bash scripts/fetch-jars.sh
# Debian's chromium for the browser tests (skipped with a message when it cannot install).
bash scripts/install-browser.sh
