"""``lae stream start|stop|status``: the operator's controls without Airflow.

Same functions as the ``streaming_control`` DAG (lae.stream.supervisor): ``start`` records the
desired state 'running' and starts the job detached if it is down; ``stop`` records 'stopped'
(so a running supervisor leaves it down) and stops the local driver; ``status`` prints the
desired state, the process, the lease holder, heartbeat age and lag as JSON.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="stream_action", required=True)
    start = sub.add_parser("start", help="run the streaming job (detached) and keep it wanted")
    start.add_argument("--master", default=None,
                       help="Spark master (default: $LAE_SPARK_MASTER or local[*])")
    stop = sub.add_parser("stop", help="stop the streaming job and keep it stopped")
    stop.add_argument("--reason", default="stopped by hand")
    sub.add_parser("status", help="desired state, process, lease, heartbeat, lag (JSON)")


def run(args: argparse.Namespace) -> int:
    from lae.cassandra import connect
    from lae.config import get_settings
    from lae.stream import supervisor

    settings = get_settings()
    session = connect(settings)
    who = f"cli:{getpass.getuser()}"
    try:
        if args.stream_action == "start":
            master = args.master or os.environ.get("LAE_SPARK_MASTER") or "local[*]"
            result = supervisor.start(session, settings, by=who, master=master)
        elif args.stream_action == "stop":
            result = supervisor.stop(session, settings, by=who, reason=args.reason)
        else:
            result = supervisor.status(session, settings).as_dict()
    finally:
        session.cluster.shutdown()
    print(json.dumps(result, indent=2, default=str))
    return 0
