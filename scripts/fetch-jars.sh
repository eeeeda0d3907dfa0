#!/usr/bin/env bash
# Resolves the JVM parts of the stack from Maven Central: one small Maven project per part
# under jvm/<part>/, its runtime jars copied to $LAE_JARS_DIR/<part>/ (default .lae/jars).
# A part whose folder carries a .complete marker for the same pom is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
JARS_DIR=${LAE_JARS_DIR:-$PWD/.lae/jars}

for pom in jvm/*/pom.xml; do
  part=$(basename "$(dirname "$pom")")
  out="$JARS_DIR/$part"
  stamp=$(sha256sum "$pom" | cut -c1-16)
  if [ -f "$out/.complete" ] && [ "$(cat "$out/.complete")" = "$stamp" ]; then
    continue
  fi
  echo "[jars] resolving $part from Maven Central"
  rm -rf "$out"
  mkdir -p "$out"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
      -DoutputDirectory="$out" -DincludeScope=runtime
  echo "$stamp" > "$out/.complete"
done
