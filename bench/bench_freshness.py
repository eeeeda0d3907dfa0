"""Speed-layer freshness: event produced → its minute row in Cassandra reflects it.

    env $(cat env-file) .venv/bin/python bench/bench_freshness.py --rates 1000 5000 --duration 600

Starts the streaming job (``lae.stream.supervisor.start``, detached, ``local[2]`` by default)
on a fresh topic and keyspace of its own, then for each rate sends generated traffic
(``lae.generator.TrafficModel``, live event times, no late/duplicate/malformed messages) for
``--duration`` seconds and measures:

- freshness per event: the first poll of ``rt_metrics_minute`` at which the event's row
  (service, minute, path, status class) counts at least as many requests as had been produced
  for that row up to and including the event, minus the event's production time (the moment
  ``send`` returned). Rows are polled every ``--poll`` seconds, so the figure is an upper bound
  by at most one poll interval plus the read time;
- baseline in the same run: the time for the same messages to reach a plain Kafka consumer
  (record CreateTime → receipt), the floor any Kafka-fed layer pays;
- consumer lag every 10 s (Kafka's end offsets minus the minute query's processed offsets, as
  the supervisor computes it), the trigger interval, CPU% and RSS of
  the job's processes (driver + JVM, psutil), and the load average (other work on the machine);
- where a micro-batch's time goes: the job writes every progress report it reads
  (``LAE_STREAM_PROGRESS_LOG``); per query, the medians of ``durationMs`` parts and of the
  state operators' update/removal/commit times over the measured window, and the hour rollup's
  pass time (its heartbeat).

``--env KEY=VALUE`` passes settings to the job (e.g. ``LAE_STREAM_SHUFFLE_PARTITIONS=4``) for
A/B runs; compare runs only when taken back to back (note the load average).

Events of the first ``--warmup`` seconds of each rate are excluded from the percentiles (the
queries' first micro-batches compile their plans); their count is printed.

Needs Kafka, S3 and Cassandra running (``lae stack up kafka s3 cassandra``); leave Airflow
down, its scheduler would share the two cores with the measured job.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from unittest import mock


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Produced:
    """Per view row: production times of its events, in production order."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[tuple, list[float]] = defaultdict(list)

    def add_many(self, keys: list[tuple], t: float) -> None:
        with self.lock:
            for key in keys:
                self.times[key].append(t)


def produce(cfg, rate: float, duration: float, produced: Produced, seed: int) -> int:
    """Send ``rate`` events/s for ``duration`` s in 100 ms ticks; returns the number sent."""
    import numpy as np

    from lae.generator.model import Mix, TrafficModel
    from lae.kafka import LogProducer

    model = TrafficModel(seed, mix=Mix(late=0.0, duplicate=0.0, malformed=0.0))
    tick = 0.1
    sent = 0
    with LogProducer(cfg, topic=cfg.raw_topic) as producer:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            due = int(rate * min(elapsed + tick, duration)) - sent
            if due > 0:
                now_ms = int(time.time() * 1000)
                chunk = model.draw(np.full(due, now_ms, dtype=np.int64))
                f = chunk.fields
                minutes = (chunk.ts_ms // 60000 * 60).tolist()
                keys = [(svc, datetime.fromtimestamp(m, UTC), path, f"{st // 100}xx")
                        for svc, m, path, st in zip(f["service"], minutes, f["path"],
                                                    f["status"], strict=True)]
                for key, payload in zip(chunk.keys, chunk.payloads, strict=True):
                    producer.send(payload, key=key)
                # One production time per 100 ms tick: the tick's events leave together.
                produced.add_many(keys, time.time())
                sent += due
            time.sleep(max(0.0, tick - (time.monotonic() - start - elapsed)))
        producer.flush(timeout=60)
    return sent


def poll_rows(cfg, session, produced: Produced, stop: threading.Event, poll_s: float,
              fresh: list[tuple[float, float]]) -> None:
    """Poll recent minute rows; per newly reflected event, (production time, freshness)."""
    from lae.generator import catalog

    services = [s.name for s in catalog.SERVICES]
    stmt = session.prepare(
        f"SELECT minute, path, status_class, requests FROM {cfg.keyspace}.rt_metrics_minute "  # noqa: S608
        "WHERE service = ? AND day = ? AND minute >= ?")
    seen: dict[tuple, int] = defaultdict(int)
    # Rows counted before this rate started (the warm-up burst, an earlier rate's minute):
    # the first poll, taken before the first event of this rate is sent, is the baseline.
    base: dict[tuple, int] | None = None
    while not stop.is_set():
        now = time.time()
        since = datetime.fromtimestamp((int(now) // 60 - 2) * 60, UTC)
        futures = [(s, session.execute_async(stmt, (s, since.date(), since))) for s in services]
        try:
            rows = [(s, r) for s, fut in futures for r in fut.result()]
        except Exception as exc:  # a slow node: skip this poll (freshness only gets worse)
            print(f"poll failed: {exc!r}", flush=True)
            continue
        seen_at = time.time()
        if base is None:
            base = {(s, r.minute.replace(tzinfo=UTC), r.path, r.status_class): r.requests
                    for s, r in rows}
            continue
        with produced.lock:
            for service, r in rows:
                key = (service, r.minute.replace(tzinfo=UTC), r.path, r.status_class)
                times = produced.times.get(key, [])
                upto = min(r.requests - base.get(key, 0), len(times))
                for k in range(seen[key], upto):
                    fresh.append((times[k], seen_at - times[k]))
                seen[key] = max(seen[key], upto)
        time.sleep(max(0.0, poll_s - (time.time() - now)))


def baseline_consumer(cfg, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    """A plain consumer of the same topic: (CreateTime, receipt - CreateTime) per message.

    librdkafka (confluent-kafka), not kafka-python: at 5,000 messages/s kafka-python's pure
    Python decoding took a third of a core from the two the measured job runs on."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": cfg.kafka_bootstrap,
                         "group.id": f"bench-floor-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "latest", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 50})
    consumer.subscribe([cfg.raw_topic])
    try:
        while not stop.is_set():
            # poll, not consume(n): consume waits out its timeout unless n messages came.
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                now = time.time()
                created = msg.timestamp()[1] / 1000
                out.append((created, now - created))
    finally:
        consumer.close()


def sample_job(cfg, session, stop: threading.Event, samples: list[dict]) -> None:
    """Every 2 s: CPU% and RSS of the job's processes, the minute query's lag (every 10 s),
    the load average."""
    import psutil

    from lae.kafka import topic_end_offsets
    from lae.stream import process, store
    from lae.stream.job import query_names
    from lae.stream.progress import behind

    name, hour = query_names()["minute"], query_names()["hour"]
    procs: dict[int, psutil.Process] = {}
    while not stop.wait(2.0):
        record = process.read_pid(cfg, store.JOB)
        members = process.group_members(record) if record else []
        cpu = rss = cpu_s = 0.0
        for p in members:
            proc = procs.setdefault(p.pid, p)
            try:
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu_s += times.user + times.system
            except psutil.Error:
                continue
        try:
            hbs = store.read_heartbeats(session, cfg.keyspace)
        except Exception:
            hbs = {}
        hb = hbs.get(name, {})
        done = sum(sum(parts.values()) for parts in (hb.get("offsets") or {}).values())
        # What the supervisor alerts on: Kafka's end offsets now minus where the last
        # micro-batch ended. (The heartbeat's own ``lag`` is measured when a micro-batch is
        # planned, so it reads 0 while slow micro-batches fall behind.)
        # Every 5th sample only (what lag_series prints): each call opens a Kafka client,
        # work taken from the cores the measured job runs on.
        lag = None
        if hb and len(samples) % 5 == 0:
            try:
                lag = behind(hb.get("offsets"), cfg.raw_topic,
                             topic_end_offsets(cfg, cfg.raw_topic))
            except Exception:  # noqa: BLE001 - a missed sample, not a failed run
                lag = None
        samples.append({"t": time.time(), "cpu": cpu, "cpu_s": cpu_s, "done": done,
                        "rss_mb": rss / 2**20,
                        "lag": lag, "batch_ms": hb.get("processing_ms"),
                        "hour_ms": hbs.get(hour, {}).get("processing_ms"),
                        "load1": os.getloadavg()[0]})


DURATIONS = ("triggerExecution", "latestOffset", "queryPlanning", "getBatch", "walCommit",
             "addBatch", "commitOffsets")
STATE_TIMES = ("allUpdatesTimeMs", "allRemovalsTimeMs", "commitTimeMs")


def progress_breakdown(path: str, since: float, until: float) -> dict:
    """Per query: micro-batches started in [since, until] and the medians of their timings."""
    from lae.stream.progress import parse_time

    by_query: dict[str, list[dict]] = defaultdict(list)
    try:
        lines = open(path).read().splitlines()  # noqa: SIM115 - the job appends to it
    except FileNotFoundError:
        return {}
    for line in lines:
        try:
            report = json.loads(line)
        except ValueError:
            continue  # the job may be writing the last line
        started = parse_time(report.get("timestamp"))
        if started is not None and since <= started.timestamp() <= until:
            by_query[report.get("name") or "?"].append(report)
    out = {}
    for name, reports in by_query.items():
        def median(values):
            values = [v for v in values if v is not None]
            return statistics.median(values) if values else None
        summary = {"batches": len(reports),
                   "rows_median": median([r.get("numInputRows") for r in reports])}
        for part in DURATIONS:
            summary[f"{part}_ms"] = median([(r.get("durationMs") or {}).get(part)
                                            for r in reports])
        for i, op in enumerate(reports[-1].get("stateOperators", [])):
            key = f"op{i}_{op.get('operatorName', '?')}"
            ops = [r["stateOperators"][i] for r in reports
                   if len(r.get("stateOperators", [])) > i]
            summary[key] = {t: median([o.get(t) for o in ops]) for t in STATE_TIMES}
            summary[key]["rows_total_max"] = max(o.get("numRowsTotal") or 0 for o in ops)
        out[name] = summary
    return out


def wait_ready(cfg, session, timeout_s: float) -> float:
    """Until every query finished a micro-batch with data: a warm-up burst is sent first, so
    plan compilation and the first state-store versions are not measured as freshness."""
    from lae.stream import store
    from lae.stream.job import query_names

    start = time.monotonic()
    produce(cfg, 1000, 1, Produced(), seed=99)
    names = list(query_names().values())
    while time.monotonic() - start < timeout_s:
        try:
            hbs = store.read_heartbeats(session, cfg.keyspace)
        except Exception:
            hbs = {}
        if all((hbs.get(n) or {}).get("input_rows") is not None for n in names):
            return time.monotonic() - start
        time.sleep(1)
    raise TimeoutError("the streaming job did not process its warm-up burst within the timeout")


def by_window(fresh: list[tuple[float, float]], t0: float, cutoff: float,
              window: float) -> list[dict]:
    """Freshness p50/p99 of the events produced in each ``window`` seconds after the warm-up:
    the state a query keeps grows until its watermark starts evicting, so the late windows
    of a long run show the steady state the whole-run percentiles blur."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, f in fresh:
        if t >= cutoff:
            buckets[int((t - t0) // window)].append(f)
    return [{"from_s": round(k * window), "events": len(v),
             "p50_s": round(_percentile(v, 50), 2), "p99_s": round(_percentile(v, 99), 2)}
            for k, v in sorted(buckets.items())]


def run_rate(cfg, session, rate: float, duration: float, warmup: float, poll: float,
             seed: int, progress_log: str, window: float = 300) -> dict:
    produced, fresh, floor, samples = Produced(), [], [], []
    stop = threading.Event()
    threads = [
        threading.Thread(target=poll_rows, args=(cfg, session, produced, stop, poll, fresh)),
        threading.Thread(target=baseline_consumer, args=(cfg, stop, floor)),
        threading.Thread(target=sample_job, args=(cfg, session, stop, samples)),
    ]
    for t in threads:
        t.start()
    time.sleep(3)  # the consumer joins its group and the poller takes its baseline
    t0 = time.time()
    sent = produce(cfg, rate, duration, produced, seed)
    sent_seconds = time.time() - t0
    # Let the tail drain: until every event is reflected or 120 s pass.
    deadline = time.monotonic() + 120
    while len(fresh) < sent and time.monotonic() < deadline:
        time.sleep(1)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    cutoff = t0 + warmup
    breakdown = progress_breakdown(progress_log, cutoff, t0 + sent_seconds)
    measured = [f for t, f in fresh if t >= cutoff]
    floor_measured = [f for t, f in floor if t >= cutoff]
    half = len(samples) // 2
    # CPU seconds the job spent per 1,000 events its minute query got through: robust to other
    # work on the machine, which stretches every time above but not this (much).
    counted = [s for s in samples if s["t"] >= cutoff and s["done"]]
    cpu_per_1k = None
    if len(counted) >= 2 and counted[-1]["done"] > counted[0]["done"]:
        cpu_per_1k = round((counted[-1]["cpu_s"] - counted[0]["cpu_s"]) * 1000
                           / (counted[-1]["done"] - counted[0]["done"]), 3)
    lags = [s["lag"] for s in samples if s["lag"] is not None]
    first = [s["lag"] for s in samples[:half] if s["lag"] is not None]
    second = [s["lag"] for s in samples[half:] if s["lag"] is not None]
    return {
        "rate": rate, "sent": sent, "achieved_rate": round(sent / sent_seconds),
        "reflected": len(fresh), "warmup_excluded": len(fresh) - len(measured),
        "fresh_p50_s": round(_percentile(measured, 50), 2),
        "fresh_p99_s": round(_percentile(measured, 99), 2),
        "fresh_max_s": round(max(measured, default=float("nan")), 2),
        "fresh_by_window": by_window(fresh, t0, cutoff, window),
        "floor_p50_s": round(_percentile(floor_measured, 50), 3),
        "floor_p99_s": round(_percentile(floor_measured, 99), 3),
        "floor_messages": len(floor),
        "lag_max": max(lags, default=None),
        "lag_mean_first_half": round(statistics.mean(first), 1) if first else None,
        "lag_mean_second_half": round(statistics.mean(second), 1) if second else None,
        "lag_series": [(round(s["t"] - t0), s["lag"]) for s in samples][::5],
        "cpu_pct_mean": round(statistics.mean(s["cpu"] for s in samples), 1) if samples else None,
        "rss_mb_max": round(max((s["rss_mb"] for s in samples), default=0)),
        "cpu_s_per_1k_events": cpu_per_1k,
        "batch_ms_median": statistics.median([s["batch_ms"] for s in samples
                                              if s["batch_ms"] is not None] or [float("nan")]),
        "load1_mean": round(statistics.mean(s["load1"] for s in samples), 1) if samples else None,
        "hour_rollup_ms_median": statistics.median([s["hour_ms"] for s in samples
                                                    if s.get("hour_ms") is not None]
                                                   or [float("nan")]),
        "progress": breakdown,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 5000])
    parser.add_argument("--duration", type=float, default=600, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=30)
    parser.add_argument("--trigger", default="1 second", help="the minute view's trigger")
    parser.add_argument("--rollup-trigger", default="10 seconds",
                        help="the hour view's and the intake query's trigger")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--max-offsets", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=300,
                        help="seconds per freshness window (p50/p99 per window as well)")
    parser.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra environment of the job (settings, PYSPARK_SUBMIT_ARGS)")
    args = parser.parse_args(argv)

    from lae.cassandra import connect
    from lae.cassandra_schema import migrate
    from lae.config import Settings
    from lae.kafka import TopicSpec, ensure_topics
    from lae.stream import process, store, supervisor

    suffix = uuid.uuid4().hex[:8]
    state_dir = f"/tmp/lae-bench-freshness-{suffix}"  # noqa: S108 - scratch for one run
    env = {"LAE_KEYSPACE": "lae_bench_fresh", "LAE_RAW_TOPIC": f"lae.bench.fresh.{suffix}",
           "LAE_DLQ_TOPIC": f"lae.bench.fresh.dlq.{suffix}", "LAE_STATE_DIR": state_dir,
           "LAE_STREAM_CHECKPOINT": f"{state_dir}/checkpoint",
           "LAE_STREAM_STARTING_OFFSETS": "earliest", "LAE_STREAM_TRIGGER": args.trigger,
           "LAE_STREAM_ROLLUP_TRIGGER": args.rollup_trigger,
           "LAE_STREAM_SHUFFLE_PARTITIONS": "2", "LAE_STREAM_LEASE_TTL_S": "180",
           "LAE_STREAM_MAX_OFFSETS_PER_TRIGGER": str(args.max_offsets),
           "LAE_STREAM_PROGRESS_LOG": f"{state_dir}/progress.jsonl"}
    env.update(item.split("=", 1) for item in args.env)
    with mock.patch.dict(os.environ, env):
        cfg = Settings.from_env()
    session = connect(cfg)
    session.execute(f"DROP KEYSPACE IF EXISTS {cfg.keyspace}", timeout=120)
    migrate(session, cfg)
    ensure_topics(cfg, specs=[TopicSpec(cfg.raw_topic, cfg.raw_partitions, 1, {}),
                              TopicSpec(cfg.dlq_topic, 1, 1, {})])
    results = []
    try:
        started = supervisor.start(session, cfg, by="bench", master=args.master,
                                   alert=lambda *a, **k: None, extra_env=env)
        print(f"job: {started['action']} pid {started.get('pid')}", flush=True)
        print(f"job warm after {wait_ready(cfg, session, 1800):.0f}s", flush=True)
        for i, rate in enumerate(args.rates):
            result = run_rate(cfg, session, rate, args.duration, args.warmup, args.poll, 100 + i,
                              env["LAE_STREAM_PROGRESS_LOG"], args.window)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        supervisor.stop(session, cfg, by="bench", reason="bench done", timeout_s=60)
        record = process.read_pid(cfg, store.JOB)
        if record is not None:
            process.kill(record)
        session.execute(f"DROP KEYSPACE IF EXISTS {cfg.keyspace}", timeout=120)
        session.cluster.shutdown()
        # The state store (hundreds of MB at 5,000 events/s); the job's log stays.
        shutil.rmtree(f"{state_dir}/checkpoint", ignore_errors=True)
    print(f"\ntrigger={args.trigger} rollup_trigger={args.rollup_trigger} master={args.master} "
          f"duration={args.duration:.0f}s/rate "
          f"poll={args.poll}s partitions={cfg.raw_partitions} env={args.env}")
    print(f"{'rate':>6} {'sent/s':>7} {'p50 s':>6} {'p99 s':>6} {'floor p50':>9} "
          f"{'floor p99':>9} {'lag max':>8} {'lag 1st/2nd half':>18} {'cpu%':>5} {'cpu s/1k':>8} "
          f"{'rss MB':>6} {'load1':>5}")
    for r in results:
        print(f"{r['rate']:>6.0f} {r['achieved_rate']:>7} {r['fresh_p50_s']:>6} "
              f"{r['fresh_p99_s']:>6} {r['floor_p50_s']:>9} {r['floor_p99_s']:>9} "
              f"{r['lag_max']!s:>8} "
              f"{r['lag_mean_first_half']!s:>8}/{r['lag_mean_second_half']!s:<9} "
              f"{r['cpu_pct_mean']!s:>5} {r['cpu_s_per_1k_events']!s:>8} {r['rss_mb_max']:>6} "
              f"{r['load1_mean']!s:>5}")
    for r in results:
        windows = "  ".join(f"{w['from_s']}s: {w['p50_s']}/{w['p99_s']}"
                            for w in r["fresh_by_window"])
        print(f"{r['rate']:>6.0f} p50/p99 per {args.window:.0f}s window: {windows}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
