"""`lae api`: the example API server connected to LAE (demo routes, access logs, POST /v1/logs).

Wiring into the CLI: ``add_arguments(subparser)`` then ``run(args)``; ``main(argv)`` is the same
as a stand-alone entry point (``python -m lae.api``). Imports of FastAPI/uvicorn/kafka stay
inside the functions so that ``lae --help`` does not pay for them.
"""

from __future__ import annotations

import argparse
import dataclasses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=None,
                        help="address to listen on (default: LAE_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="default: LAE_API_PORT or 8000")
    parser.add_argument("--service", default=None,
                        help="service name of the emitted events (default: LAE_API_SERVICE)")
    parser.add_argument("--emitter", choices=["kafka", "null"], default="kafka",
                        help="where access-log events go; null = nowhere (baseline)")
    parser.add_argument("--ingest-sink", choices=["kafka", "null"], default="kafka",
                        help="where POST /v1/logs writes; null = validate and discard "
                             "(benchmark baseline only: it acknowledges without storing)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the demo behaviour")
    parser.add_argument("--error-rate", type=float, default=None, help="share of random 500s")
    parser.add_argument("--latency-scale", type=float, default=None,
                        help="factor on the simulated latency; 0 = none")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from lae.api.app import create_app
    from lae.api.emitter import NullEmitter
    from lae.api.ingest import NullSink
    from lae.api.settings import ApiSettings
    from lae.config import get_settings

    settings = get_settings()
    overrides = {name: value for name, value in {
        "port": args.port, "service": args.service, "seed": args.seed,
        "error_rate": args.error_rate, "latency_scale": args.latency_scale,
    }.items() if value is not None}
    api_settings = dataclasses.replace(ApiSettings.from_env(), **overrides)
    emitter = NullEmitter() if args.emitter == "null" else None
    sink = NullSink() if args.ingest_sink == "null" else None
    app = create_app(api_settings, emitter=emitter, sink=sink, settings=settings)
    # access_log=False: the middleware is this server's access log; uvicorn's own line per
    # request would only cost time.
    uvicorn.run(app, host=args.bind or settings.host, port=api_settings.port,
                log_level=args.log_level, access_log=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lae api", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
