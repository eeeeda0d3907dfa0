"""The `lae` command line: `lae stack up|down|status|logs`, `generate`, `api`, `airflow`, `demo`.

Sub-commands import what they need lazily so `lae --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys

from lae.stack.process import ServiceError


def _cmd_stack(args: argparse.Namespace) -> int:
    import os

    from lae.stack import commands

    if getattr(args, "kafka_brokers", None):
        # Through the environment, so every service (Airflow's kafka_default too) sees it.
        os.environ["LAE_KAFKA_BROKERS"] = str(args.kafka_brokers)

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


def _cmd_serve(args: argparse.Namespace) -> int:
    from lae.serving.api import run

    return run(args)


def _cmd_airflow(args: argparse.Namespace) -> int:
    """Run the airflow CLI against the local stack's home, database and secrets."""
    import os

    from lae.config import get_settings
    from lae.stack.airflow import airflow_env, venv_bin

    argv = [str(venv_bin() / "airflow"), *args.airflow_args]
    os.execve(argv[0], argv, {**os.environ, **airflow_env(get_settings())})  # noqa: S606


def _cmd_stream(args: argparse.Namespace) -> int:
    from lae.stream import cli

    return cli.run(args)


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
            p.add_argument("--kafka-brokers", type=int, default=None, metavar="N",
                           help="run Kafka as an N-broker KRaft cluster on loopback (topics "
                                "replicated min(3, N) times); remembered by the state dir")
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

    serve = sub.add_parser("serve", help="the query API and dashboard (merged batch + "
                                         "realtime views)")
    serve.add_argument("--bind", default=None, help="default: LAE_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="default: LAE_SERVE_PORT or 8001")
    serve.add_argument("--log-level", default="warning", help="uvicorn log level")
    serve.set_defaults(func=_cmd_serve)

    from lae.stream.cli import add_arguments as add_stream_arguments

    stream = sub.add_parser("stream", help="the speed layer's streaming job: start, stop, status")
    add_stream_arguments(stream)
    stream.set_defaults(func=_cmd_stream)

    airflow = sub.add_parser("airflow", help="the airflow CLI, pointed at the local stack "
                                             "(e.g. `lae airflow backfill create ...`)")
    airflow.add_argument("airflow_args", nargs=argparse.REMAINDER)
    airflow.set_defaults(func=_cmd_airflow)

    demo = sub.add_parser("demo", help="start the stack and run the pipeline end to end")
    demo.add_argument("--events", type=int, default=20000,
                      help="events of yesterday's history to generate")
    demo.add_argument("--requests", type=int, default=600,
                      help="live requests to send through the example API server")
    demo.add_argument("--seconds", type=float, default=60.0,
                      help="spread the live requests over this many seconds")
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
