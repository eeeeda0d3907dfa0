"""POST /v1/logs throughput: batches of 500 valid events into the real Kafka.

The app runs under uvicorn (one process) with the real Kafka sink; `wrk` (Debian package)
posts one fixed JSON-array body of 500 valid events over and over (so the same event_ids are
re-sent: duplicates that the batch layer de-duplicates; throughput is what is measured here).
Without wrk, a concurrent httpx client does the same. For scale, the same run also measures
the endpoint with a null sink (parse + validate, no Kafka), so the Kafka share is visible.

    .venv/bin/python bench/bench_ingest.py [--duration 15] [--connections 8] [--batch 500]

Records go to --raw-topic (default bench.logs.raw), not the pipeline's logs.raw.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import uuid
from datetime import UTC, datetime

import httpx
from bench_api_logging import api_server, kafka_running, run_httpx, run_wrk

TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local benchmark server


def batch_body(size: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    events = [{"event_id": str(uuid.uuid4()), "ts": now, "service": f"shop-{i % 4}",
               "host": f"web-{i % 3}", "method": "GET", "path": "/v1/orders/{id}",
               "status": 200 if i % 20 else 503, "latency_ms": 1.5 + i % 40, "bytes": 512 + i,
               "user_id": f"u{i % 97}", "ip": "10.0.0.7", "user_agent": "bench/1.0"}
              for i in range(size)]
    return json.dumps(events).encode()


def wrk_script(body: bytes) -> str:
    return (f'wrk.method = "POST"\n'
            f'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n'
            f"wrk.body = [==[{body.decode()}]==]\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500, help="events per request")
    parser.add_argument("--raw-topic", default="bench.logs.raw")
    parser.add_argument("--tool", choices=["wrk", "httpx"],
                        default="wrk" if shutil.which("wrk") else "httpx")
    args = parser.parse_args(argv)
    body = batch_body(args.batch)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    env = {"LAE_RAW_TOPIC": args.raw_topic, "LAE_INGEST_TOKEN": TOKEN}
    print(f"load tool: {args.tool}; {args.connections} connections, {args.duration:g} s, "
          f"{args.batch} events ({len(body) / 1024:.0f} KiB) per request", flush=True)
    with kafka_running([args.raw_topic]):
        for sink in ("kafka", "null", "kafka"):
            with api_server("null", env, ["--ingest-sink", sink]) as server:
                check = httpx.post(server.url + "/v1/logs", content=body, headers=headers,
                                   timeout=30)
                if check.status_code != 202 or check.json()["accepted"] != args.batch:
                    raise RuntimeError(f"the body is not accepted whole: {check.text}")
                cpu = server.cpu_seconds()
                if args.tool == "wrk":
                    r = run_wrk(server.url + "/v1/logs", wrk_script(body), args.duration,
                                args.connections, threads=2)
                else:
                    r = run_httpx(server.url, lambda n: ("POST", "/v1/logs", headers, body),
                                  args.duration, args.connections)
                cpu_ms = (server.cpu_seconds() - cpu) / max(r["requests"], 1) * 1e3
                ingest = httpx.get(server.url + "/metrics").json()["ingest"]
                print(f"sink {sink:5} {r['rps']:7.1f} req/s  {r['rps'] * args.batch:9.0f} "
                      f"events/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                      f"server CPU {cpu_ms:5.1f} ms/req  non-2xx {r['non2xx']}  "
                      f"errors {r['errors']}  server counts {ingest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
