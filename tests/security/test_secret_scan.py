"""No secrets in the repo: the scanner CI runs (scripts/scan_secrets.py, detect-secrets) finds
nothing beyond the reviewed baseline, and it does flag a planted key, so a pass means
something."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("scan_secrets", ROOT / "scripts" / "scan_secrets.py")
scan_secrets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scan_secrets)

# Assembled at run time so this file itself holds no key-shaped literal for the scan to find.
FAKE_AWS_KEY = "AKIA" + "Q3EGRTSXWJ7LMN2P"
FAKE_PRIVATE_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n"


def test_the_repo_holds_no_unlisted_secret():
    files = scan_secrets.repo_files(ROOT)
    assert any(f.startswith("include/lae/") for f in files)  # the scan does see the code
    assert not any(f.startswith((".venv/", ".lae/", "artifacts/")) for f in files)
    assert scan_secrets.new_secrets(ROOT, files, scan_secrets.BASELINE) == []


def test_every_baselined_finding_was_reviewed_as_not_a_secret():
    results = json.loads(scan_secrets.BASELINE.read_text())["results"]
    unreviewed = [(f, r["line_number"]) for f, rs in results.items() for r in rs
                  if r.get("is_secret") is not False]
    assert not unreviewed, "review with `detect-secrets audit .secrets.baseline`"


@pytest.mark.parametrize("planted", [
    f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n',
    FAKE_PRIVATE_KEY,
    'db_password = "Zq8#mW2!vR7pL0xK"\n',  # pragma: allowlist secret
])
def test_a_planted_secret_is_flagged(tmp_path, planted):
    # A copy of a real module with a secret added, in a scratch root with the repo's baseline.
    shutil.copy(scan_secrets.BASELINE, tmp_path / ".secrets.baseline")
    target = tmp_path / "include" / "lae" / "config.py"
    target.parent.mkdir(parents=True)
    target.write_text((ROOT / "include" / "lae" / "config.py").read_text() + planted)
    found = scan_secrets.new_secrets(tmp_path, ["include/lae/config.py"],
                                     tmp_path / ".secrets.baseline")
    assert found and all(name == "include/lae/config.py" for name, _, _ in found), found
    # And the untouched copy is clean, so it is the planted line that was flagged.
    target.write_text((ROOT / "include" / "lae" / "config.py").read_text())
    assert scan_secrets.new_secrets(tmp_path, ["include/lae/config.py"],
                                    tmp_path / ".secrets.baseline") == []
