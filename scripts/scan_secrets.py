"""Secret scan for CI: fail when a file holds a secret that ``.secrets.baseline`` does not list.

Uses detect-secrets (pinned in uv.lock) with the plugins and filters recorded in the baseline.
Files scanned: everything git tracks plus untracked files that are not ignored, so .venv/,
.lae/ and artifacts/ (gitignored) are never read and a new file is checked before it is
committed. Secrets are compared by file, type and hash, not line number, so moving code does
not fail the scan.

    .venv/bin/python scripts/scan_secrets.py            # the repo, against .secrets.baseline
    .venv/bin/python scripts/scan_secrets.py FILE ...   # only these files

A finding that is not a secret (a test fixture) is either marked on its line with
``# pragma: allowlist secret`` or added to the baseline after review:
``.venv/bin/detect-secrets scan --baseline .secrets.baseline`` then ``detect-secrets audit``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

from detect_secrets import SecretsCollection
from detect_secrets.core import baseline
from detect_secrets.settings import transient_settings

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".secrets.baseline"


def repo_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files, relative to ``root``."""
    out = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607 - git from PATH, as in CI
        cwd=root, capture_output=True, check=True).stdout
    names = out.decode().split("\0")
    return [n for n in names if n and n != BASELINE.name and (root / n).is_file()]


def new_secrets(root: Path, files: list[str], baseline_file: Path) -> list[tuple[str, str, int]]:
    """(file, secret type, line) for each secret in ``files`` that the baseline does not list."""
    known = baseline.load_from_file(str(baseline_file))
    config = {"plugins_used": known["plugins_used"], "filters_used": known["filters_used"]}
    # Relative names from the root: a finding's identity includes its file name as scanned, so
    # it must be spelled as the baseline spells it (SecretsCollection(root=...) would prefix it).
    with transient_settings(config), contextlib.chdir(root):
        found = SecretsCollection()
        for name in files:
            found.scan_file(name)
        unlisted = found - SecretsCollection.load_from_baseline(known)
    return sorted((name, s.type, s.line_number or 0) for name, s in unlisted)


def main(argv: list[str]) -> int:
    files = argv or repo_files(ROOT)
    unlisted = new_secrets(ROOT, files, BASELINE)
    for name, kind, line in unlisted:
        print(f"{name}:{line}: possible secret ({kind}) not in .secrets.baseline")
    print(f"[secrets] {len(files)} files scanned, {len(unlisted)} unlisted secret(s)")
    return 1 if unlisted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
