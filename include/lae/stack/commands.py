"""The `lae stack` actions, printing progress for people."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from lae.config import get_settings
from lae.stack.manager import SERVICES, get_service
from lae.stack.process import ServiceError, rss_mib


def _selected(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise ServiceError(
            f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}"
        )
    # Keep the dependency order of SERVICES whatever order was asked for.
    return [n for n in SERVICES if not names or n in names]


def up(args: argparse.Namespace) -> int:
    settings = get_settings()
    services = [get_service(n, settings) for n in _selected(args.services)]
    t0 = time.monotonic()
    # Start every process first so the JVMs warm up in parallel, then wait in order.
    for service in services:
        started = service.start()
        print(f"[{service.name}] {'starting' if started else 'already running'} "
              f"(log: {service.log_file})", flush=True)
    failed = False
    for service in services:
        try:
            service.wait_healthy()
            service.provision()
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed = True
            continue
        pid = service.process.pid()
        rss = f"{rss_mib(pid):.0f} MiB" if pid else "?"
        print(f"[{service.name}] healthy at {time.monotonic() - t0:.1f}s, pid {pid}, rss {rss}",
              flush=True)
    if failed:
        return 1
    _print_access(settings, [s.name for s in services])
    return 0


def _print_access(settings, names: list[str]) -> None:
    if "airflow" not in names:
        return
    from lae.stack.airflow import admin_credentials

    user, password = admin_credentials(settings)
    print(f"Airflow UI: {settings.airflow_url}  user: {user}  password: {password}")


def down(args: argparse.Namespace) -> int:
    settings = get_settings()
    for name in reversed(_selected(args.services)):
        service = get_service(name, settings)
        stopped = service.down()
        print(f"[{name}] {'stopped' if stopped else 'not running'}", flush=True)
    return 0


def status(args: argparse.Namespace) -> int:
    settings = get_settings()
    all_healthy = True
    print(f"{'service':<10} {'pid':>8} {'state':<10} {'rss':>9}  log")
    for name in _selected(args.services):
        service = get_service(name, settings)
        pid = service.process.pid()
        if pid is None:
            state, rss = "stopped", "-"
            all_healthy = False
        else:
            try:
                ok = service.healthy()
            except Exception:  # noqa: BLE001 - a failing probe is reported, not raised
                ok = False
            state = "healthy" if ok else "unhealthy"
            all_healthy &= ok
            rss = f"{rss_mib(pid):.0f}MiB"
        print(f"{name:<10} {pid or '-':>8} {state:<10} {rss:>9}  {service.log_file}")
    return 0 if all_healthy else 3


def logs(args: argparse.Namespace) -> int:
    service = get_service(_selected([args.service])[0], get_settings())
    if args.follow:
        return subprocess.call(["tail", "-n", str(args.lines), "-F", str(service.log_file)])  # noqa: S603,S607
    print(service.process.tail(args.lines))
    return 0
