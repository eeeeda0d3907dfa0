"""The `lae` command line: `lae stack up|down|status|logs`, `generate`, `api`, `airflow`, `demo`.

Sub-commands import what they need lazily so `lae --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys

from lae.stack.process import ServiceError


def _cmd_stack(args: argparse.Namespace) -> int:
    from lae.stack import commands

    action = {
        "up": commands.up,
        "down": commands.down,
        "status": commands.status,
        "logs": commands.logs,
    }[args.action]
    return action(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from lae import demo

    return demo.run(args)


def _cmd_generate(args: argparse.Namespace) -> int:
    from lae import generate

    return generate.run(args)


def _cmd_api(args: argparse.Namespace) -> int:
    from lae import api

    return api.run(args)


def _cmd_airflow(args: argparse.Namespace) -> int:
    """Run the airflow CLI against the local stack's home, database and secrets."""
    import os

    from lae.config import get_settings
    from lae.stack.airflow import airflow_env, venv_bin

    argv = [str(venv_bin() / "airflow"), *args.airflow_args]
    os.execve(argv[0], argv, {**os.environ, **airflow_env(get_settings())})  # noqa: S606


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lae", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="the local stack of real services")
    stack_sub = stack.add_subparsers(dest="action", required=True)
    for action, help_text in [
        ("up", "start every service (idempotent) and wait until healthy"),
        ("down", "stop the services this tool started"),
        ("status", "show pid, health and memory of each service"),
        ("logs", "print the tail of a service's log"),
    ]:
        p = stack_sub.add_parser(action, help=help_text)
        if action in ("up", "down", "status"):
            p.add_argument("services", nargs="*", help="limit to these services (default: all)")
        if action == "logs":
            p.add_argument("service", help="s3, kafka, cassandra or airflow")
            p.add_argument("-n", "--lines", type=int, default=60)
            p.add_argument("-f", "--follow", action="store_true")
    stack.set_defaults(func=_cmd_stack)

    from lae.generate import add_arguments as add_generate_arguments

    gen = sub.add_parser("generate", help="synthetic access logs to Kafka, with a ground truth")
    add_generate_arguments(gen)
    gen.set_defaults(func=_cmd_generate)

    from lae.api import add_arguments as add_api_arguments

    api = sub.add_parser("api", help="the example API server (access logs to Kafka) and "
                                     "the POST /v1/logs ingest endpoint")
    add_api_arguments(api)
    api.set_defaults(func=_cmd_api)

    airflow = sub.add_parser("airflow", help="the airflow CLI, pointed at the local stack "
                                             "(e.g. `lae airflow backfill create ...`)")
    airflow.add_argument("airflow_args", nargs=argparse.REMAINDER)
    airflow.set_defaults(func=_cmd_airflow)

    demo = sub.add_parser("demo", help="start the stack and run the pipeline end to end")
    demo.add_argument("--events", type=int, default=5000, help="events to produce")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
