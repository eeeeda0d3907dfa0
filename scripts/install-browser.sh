#!/usr/bin/env bash
# The browser for tests/e2e: Debian's chromium at /usr/bin/chromium, driven by Playwright's
# Python package (pinned in uv.lock). Playwright's own browser download is not used.
# Safe to re-run; without root or apt-get it only says what is missing (e2e tests then skip).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  echo "[browser] chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "[browser] $CHROMIUM is missing and this is not root on a Debian/Ubuntu system:" >&2
  echo "[browser]   install the 'chromium' package (sudo apt-get install chromium);" >&2
  echo "[browser]   until then the browser tests in tests/e2e are skipped." >&2
  exit 0
fi
echo "[browser] installing Debian's chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
"$CHROMIUM" --version
