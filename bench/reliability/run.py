"""Run the fault scenarios and write docs/RELIABILITY.md from what they measured.

The scenarios are the reliability tests themselves (real services, real faults, ground truth
compared event by event); each appends its figures as one JSON line to the file named by
``LAE_RELIABILITY_REPORT`` (tests/integration/faults.record_figures). This script runs them
with that variable set, then renders the page (``render.py``) from the figures and the
pytest outcome of each scenario. Nothing on the page is typed in by hand. Each group runs as
its own pytest process with its own figures file (``docs/reliability/figures-<group>.jsonl``,
committed with the page), so re-running one group replaces only its rows.

    env $(cat <your env block>) .venv/bin/python bench/reliability/run.py            # all
    .venv/bin/python bench/reliability/run.py --only outages                         # a group
    .venv/bin/python bench/reliability/run.py --render-only                          # re-render

Groups: ``broker_kill`` (3-broker Kafka, SIGKILL of a broker; starts 3 JVMs), ``outages``
(S3, Kafka, Cassandra stopped under work), ``bad_view`` (human mistake + recovery),
``spark_cluster`` (batch on a standalone master + 2 workers vs local). The soak with chaos
(issue 9 item 5) is a script on a stack of its own; take its figures in with
``run.py --collect <its LAE_RELIABILITY_REPORT file>`` (group ``soak``). The page shows every
scenario it finds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET  # noqa: S405 - parsing pytest's own junit file
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "reliability"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import render  # noqa: E402 - after the path tweak

GROUPS = {
    "broker_kill": ["tests/integration/test_kafka_cluster.py"],
    "outages": ["tests/integration/test_outage_kafka.py", "tests/integration/test_outage_s3.py",
                "tests/integration/test_outage_cassandra.py"],
    "bad_view": ["tests/integration/test_recovery_bad_view.py"],
    "spark_cluster": ["tests/integration/test_spark_cluster.py"],
}
# Scenarios measured by a script rather than pytest: their figures are taken in with
# ``--collect`` (the soak runs for 30 min on a stack of its own, so `run.py` never starts it).
SCRIPT_GROUPS = {"soak": ["bench/soak.py"]}

SCENARIO_GROUP = {"kafka_broker_kill": "broker_kill", "kafka_outage_under_load": "outages",
                  "s3_outage_mid_archive": "outages", "cassandra_killed_mid_batch": "outages",
                  "bad_view_deploy_recovery": "bad_view",
                  "spark_standalone_batch": "spark_cluster", "soak_with_chaos": "soak"}


def _outcomes(junit: Path) -> dict[str, dict]:
    """test file stem → {"outcome", "seconds"} from pytest's junit XML."""
    out: dict[str, dict] = {}
    root = ET.parse(junit).getroot()  # noqa: S314 - our own pytest run's file
    for case in root.iter("testcase"):
        stem = case.get("classname", "").rsplit(".", 1)[-1]
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        out[f"{stem}::{case.get('name')}"] = {
            "outcome": "failed" if failed else "skipped" if skipped else "passed",
            "seconds": round(float(case.get("time", 0)), 1)}
    return out


def _collect(source: Path, figures_dir: Path, state: Path) -> None:
    """Split a pytest run's figures into the groups' files. A scenario writes its figures only
    after its last assertion, so a line means that test passed; its junit result is dropped
    (the page then says "passed (figures)")."""
    import json

    by_group: dict[str, list[str]] = {}
    for raw in source.read_text().splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        test_file = line.get("test", "").split("::")[0]
        for group, files in {**GROUPS, **SCRIPT_GROUPS}.items():
            if test_file in files or SCENARIO_GROUP.get(line["scenario"]) == group:
                by_group.setdefault(group, []).append(raw)
                break
    for group, lines in by_group.items():
        # The newest line of a scenario wins; the group's other scenarios are kept.
        path = figures_dir / f"figures-{group}.jsonl"
        latest = {}
        for raw in [*(path.read_text().splitlines() if path.exists() else []), *lines]:
            if raw.strip():
                latest[json.loads(raw)["scenario"]] = raw
        path.write_text("\n".join(latest.values()) + "\n")
        (state / f"junit-{group}.xml").unlink(missing_ok=True)
        print(f"collected {len(lines)} figure line(s) for {group}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(GROUPS), default=None)
    parser.add_argument("--state", default=None,
                        help="where pytest results are kept (default: $LAE_STATE_DIR/reliability)")
    parser.add_argument("--figures", default=str(FIGURES),
                        help="where each group's figures are kept (default: docs/reliability, "
                             "committed next to the page so it can be re-rendered)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "RELIABILITY.md"))
    parser.add_argument("--render-only", action="store_true",
                        help="render the page from the figures of the last run")
    parser.add_argument("--collect", default=None, metavar="JSONL",
                        help="take the figures of scenarios run by plain pytest with "
                             "LAE_RELIABILITY_REPORT=JSONL (newest per scenario), then render")
    args = parser.parse_args(argv)
    if args.state is None:
        from lae.config import get_settings

        args.state = get_settings().state_dir / "reliability"
    state = Path(args.state)
    figures_dir = Path(args.figures)
    for d in (state, figures_dir):
        d.mkdir(parents=True, exist_ok=True)
    exit_codes = {}
    if args.collect:
        _collect(Path(args.collect), figures_dir, state)
    elif not args.render_only:
        # One pytest run per group, each with its own figures and results, so re-running a
        # group replaces only its part of the page.
        for group in args.only or GROUPS:
            figures = figures_dir / f"figures-{group}.jsonl"
            junit = state / f"junit-{group}.xml"
            figures.unlink(missing_ok=True)
            t0 = time.monotonic()
            # `-m integration` replaces the default `-m 'not cluster'`: cluster scenarios run.
            proc = subprocess.run(  # noqa: S603 - fixed argv
                [sys.executable, "-m", "pytest", *GROUPS[group], "-m", "integration", "-q",
                 "-p", "no:cacheprovider", f"--junitxml={junit}"],
                cwd=ROOT, env={**os.environ, "LAE_RELIABILITY_REPORT": str(figures)},
                check=False)
            exit_codes[group] = proc.returncode
            print(f"{group}: {time.monotonic() - t0:.0f}s, pytest exit {proc.returncode}",
                  flush=True)
    outcomes: dict[str, dict] = {}
    figure_lines: list[str] = []
    for group in [*GROUPS, *SCRIPT_GROUPS]:
        junit, figures = state / f"junit-{group}.xml", figures_dir / f"figures-{group}.jsonl"
        if junit.exists():
            outcomes.update(_outcomes(junit))
        if figures.exists():
            figure_lines += figures.read_text().splitlines()
    merged = state / "figures.jsonl"
    merged.write_text("\n".join(figure_lines) + "\n")
    Path(args.output).write_text(render(merged, outcomes, groups=GROUPS))
    print(f"wrote {args.output}")
    return 0 if all(o["outcome"] == "passed" for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
