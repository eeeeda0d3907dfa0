#!/usr/bin/env bash
# The README's test command (via `make test`): lint, secret scan, lock check, then every test suite.
# Tests start the services they need themselves (tests/conftest.py) on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "[test] ruff"
.venv/bin/ruff check .

echo "[test] secrets: detect-secrets over tracked and new files, against .secrets.baseline"
.venv/bin/python scripts/scan_secrets.py

echo "[test] uv.lock matches pyproject.toml"
.lae/tools/bin/uv lock --check --quiet

echo "[test] pytest"
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
