"""What does access logging to Kafka add to the demo API's latency? Measured, same run.

The same app runs under uvicorn (one process, uvloop + httptools) twice per round: once with
the Kafka emitter (events to the real broker) and once with the no-op emitter, alternating so
that drift on a shared machine hits both. Simulated latency and random errors are off, so what
differs is the logging alone. Load: `wrk` (Debian package) with a Lua script rotating over
orders/users/search, at each concurrency in --concurrency; without wrk, a concurrent httpx
client (slower, so its absolute numbers are not comparable with wrk's).

    .venv/bin/python bench/bench_api_logging.py [--duration 10] [--concurrency 1,8] [--rounds 2]

Starts the local Kafka if it is not running (and stops it again if it started it). Events go
to --raw-topic (default bench.logs.raw) so benchmark traffic stays out of logs.raw.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

# wrk calls done() once at the end; latency percentiles are in microseconds.
DONE_LUA = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, errors, summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

API_LUA = """
local n = 0
request = function()
  n = n + 1
  local k = n % 3
  local path
  if k == 0 then path = "/v1/orders/" .. (n % 9 + 1)          -- ids 1..9: never the 404 ones
  elseif k == 1 then path = "/v1/users/" .. (n % 1000 + 1)
  else path = "/v1/search?q=item" .. (n % 50) end
  return wrk.format("GET", path, {["X-User-Id"] = "u" .. (n % 500)})
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def kafka_running(topics: list[str]):
    """The local broker, started if needed; the bench topics created like logs.raw."""
    from lae.config import get_settings
    from lae.kafka import ensure_topics, topic_specs
    from lae.stack.manager import get_service

    settings = get_settings()
    service = get_service("kafka", settings)
    started = service.start()
    service.wait_healthy()
    raw_spec = topic_specs(settings)[0]
    ensure_topics(settings, specs=[dataclasses.replace(raw_spec, name=t) for t in topics])
    try:
        yield settings
    finally:
        if started:
            service.down()


class Server:
    def __init__(self, url: str, pid: int):
        self.url = url
        self.pid = pid

    def cpu_seconds(self, loop_only: bool = False) -> float:
        """User + system CPU of the server: all threads (Kafka client ones included), or only
        the main thread, which runs the event loop and so is what request latency waits on."""
        stat = f"/proc/{self.pid}/task/{self.pid}/stat" if loop_only else f"/proc/{self.pid}/stat"
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def api_server(emitter: str, env: dict[str, str], extra_args: list[str] = ()):
    """`python -m lae.api` in a subprocess on a free port; yields it as a ``Server``."""
    port = free_port()
    argv = [PYTHON, "-m", "lae.api", "--port", str(port), "--emitter", emitter,
            "--latency-scale", "0", "--error-rate", "0", "--seed", "1", *extra_args]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log,  # noqa: S603
                            stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"API server did not start:\n{log.read().decode()[-3000:]}")
            time.sleep(0.2)
        yield Server(url, proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful stop: lifespan closes the producer
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_wrk(url: str, lua_body: str, duration: float, connections: int,
            threads: int = 1) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua_body + DONE_LUA)
        script = f.name
    try:
        argv = [shutil.which("wrk") or "wrk", f"-t{threads}", f"-c{connections}",
                f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", script, url]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout  # noqa: S603
    finally:
        os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    result = json.loads(line.removeprefix("WRK_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    for p in ("p50", "p90", "p99", "max"):
        result[f"{p}_ms"] = result.pop(f"{p}_us") / 1000
    return result


async def _httpx_load(url: str, requests_for, duration: float, connections: int) -> dict:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        async def worker(wid: int) -> None:
            nonlocal errors
            n = wid
            while time.perf_counter() < stop:
                method, path, headers, body = requests_for(n)
                n += connections
                t = time.perf_counter()
                r = await client.request(method, path, headers=headers, content=body)
                latencies.append((time.perf_counter() - t) * 1000)
                errors += r.status_code >= 300
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "errors": errors,
            "non2xx": errors, "p50_ms": q[49], "p90_ms": q[89], "p99_ms": q[98],
            "max_ms": max(latencies)}


def run_httpx(url: str, requests_for, duration: float, connections: int) -> dict:
    return asyncio.run(_httpx_load(url, requests_for, duration, connections))


def api_request(n: int):
    k = n % 3
    path = (f"/v1/orders/{n % 9 + 1}" if k == 0 else
            f"/v1/users/{n % 1000 + 1}" if k == 1 else f"/v1/search?q=item{n % 50}")
    return "GET", path, {"X-User-Id": f"u{n % 500}"}, None


def load(url: str, duration: float, connections: int, tool: str) -> dict:
    if tool == "wrk":
        return run_wrk(url, API_LUA, duration, connections)
    return run_httpx(url, api_request, duration, connections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", default="1,8", help="comma-separated connection counts")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--raw-topic", default="bench.logs.raw")
    parser.add_argument("--tool", choices=["wrk", "httpx"],
                        default="wrk" if shutil.which("wrk") else "httpx")
    args = parser.parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    env = {"LAE_RAW_TOPIC": args.raw_topic}
    print(f"load tool: {args.tool}; {args.duration:g} s per run, {args.rounds} rounds, "
          f"modes alternate null/kafka", flush=True)
    results: dict[tuple[str, int], list[dict]] = {}
    with kafka_running([args.raw_topic]):
        for rnd in range(args.rounds):
            for emitter in ("null", "kafka"):
                with api_server(emitter, env) as server:
                    url = server.url
                    load(url, args.warmup, max(concurrencies), args.tool)
                    for c in concurrencies:
                        cpu, loop_cpu = server.cpu_seconds(), server.cpu_seconds(True)
                        r = load(url, args.duration, c, args.tool)
                        # CPU per request is robust to other load on the machine, unlike latency.
                        r["cpu_us"] = (server.cpu_seconds() - cpu) / r["requests"] * 1e6
                        r["loop_us"] = (server.cpu_seconds(True) - loop_cpu) / r["requests"] * 1e6
                        results.setdefault((emitter, c), []).append(r)
                        print(f"round {rnd + 1} {emitter:5} c={c:<3} {r['rps']:8.0f} req/s  "
                              f"p50 {r['p50_ms']:7.3f} ms  p99 {r['p99_ms']:7.3f} ms  "
                              f"CPU {r['cpu_us']:4.0f} us/req (loop {r['loop_us']:4.0f})  "
                              f"errors {r['errors']}",
                              flush=True)
                    stats = httpx.get(url + "/metrics").json()["emitter"]
                    print(f"        emitter stats: {stats}", flush=True)
    print("\nsummary (median over rounds)")
    print(f"{'c':>4} {'mode':6} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'CPU us/req':>11} "
          f"{'loop us/req':>12}")
    for c in concurrencies:
        med = {}
        for emitter in ("null", "kafka"):
            runs = results[(emitter, c)]
            med[emitter] = {k: statistics.median(r[k] for r in runs)
                            for k in ("rps", "p50_ms", "p99_ms", "cpu_us", "loop_us")}
            m = med[emitter]
            print(f"{c:>4} {emitter:6} {m['rps']:9.0f} {m['p50_ms']:9.3f} {m['p99_ms']:9.3f} "
                  f"{m['cpu_us']:11.0f} {m['loop_us']:12.0f}")
        k, n = med["kafka"], med["null"]
        print(f"{c:>4} {'added':6} {k['rps'] - n['rps']:9.0f} {k['p50_ms'] - n['p50_ms']:9.3f} "
              f"{k['p99_ms'] - n['p99_ms']:9.3f} {k['cpu_us'] - n['cpu_us']:11.0f} "
              f"{k['loop_us'] - n['loop_us']:12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
