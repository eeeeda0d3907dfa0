"""Soak with chaos (issue 9, item 5): steady traffic through the pipeline while faults hit it.

    env $(cat bench/soak.env) .venv/bin/python bench/soak.py                    # 30 min, 2,000/s
    env $(cat bench/soak.env) .venv/bin/python bench/soak.py --minutes 6 --rate 500   # quick

What runs, on a stack of its own (bench/soak.env: state dir .lae/soak, ports of their own):
- Kafka as a 3-broker KRaft cluster (``lae stack up --kafka-brokers 3``; replication 3,
  min.insync.replicas 2), Cassandra, the S3 endpoint;
- traffic: ``lae.generate`` at ``--rate`` events/s with a live clock (duplicates and malformed
  messages in the usual shares, no late ones: late data has its own tests), ground truth kept;
- the speed layer under the supervisor's code (``lae.stream.supervisor.supervise`` every 20 s,
  what the ``streaming_supervisor`` DAG runs);
- archive runs back to back (``python -m lae.archive``, the code the ``kafka_to_s3_archive``
  tasks run).
Airflow itself is left out: on 2 cores its scheduler and task processes would take the CPU the
pipeline needs, and the faults hit the pipeline's own processes, which are the same code.

Faults, at seeded random times within the middle of the run:
- SIGKILL of an archive run that is reading (its lease then expires by its TTL);
- SIGKILL of the streaming driver and its JVM (the next supervision pass restarts it);
- SIGKILL of the Kafka broker leading most partitions, restarted 60 s later.

Checked at the end (traffic stopped, stream caught up, archive drained): the master dataset
holds every acknowledged message exactly as often as it was sent (none lost, none doubled);
the query API's hourly totals equal the ground truth; resident memory of every process
(sampled every 10 s, first fifth of the run vs last fifth); consumer lag over time. The figures
go to stdout and, as one JSON line, to ``$LAE_RELIABILITY_REPORT`` when set (the reliability
page is rendered from those lines by bench/reliability/render.py). Exit status 1 when events
were lost, doubled or served wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.integration.faults: the fault tools the tests use

from tests.integration.faults import kill9, master_event_ids  # noqa: E402


class Run:
    """Shared state of the soak's threads."""

    def __init__(self):
        self.stop = threading.Event()  # traffic over: no more archive runs or faults
        self.done = threading.Event()  # caught up and drained: supervision and sampling end
        self.faults: list[dict] = []
        self.samples: list[dict] = []
        self.archive_exits: Counter = Counter()
        self.kill_archive = threading.Event()
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def fault(self, kind: str, **details) -> None:
        entry = {"at_s": round(time.monotonic() - self.t0), "fault": kind, **details}
        with self.lock:
            self.faults.append(entry)
        print(f"[soak] t+{entry['at_s']}s fault: {kind} {details}", flush=True)


def archive_loop(run: Run, pause_s: float = 5.0) -> None:
    """Archive runs back to back; one is killed while reading when ``kill_archive`` is set."""
    while not run.stop.is_set():
        proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "lae.archive", "--lease-ttl", "60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if run.kill_archive.is_set():
            time.sleep(3)  # past planning and the lease: the run is reading its range
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                run.kill_archive.clear()
                run.fault("archive_run_sigkill", pid=proc.pid)
        run.archive_exits[proc.wait()] += 1
        run.stop.wait(pause_s)


def drain_archive(timeout_s: float = 900) -> int:
    """Archive until a run finds nothing new; returns the runs that archived something.

    Runs that meet the killed run's lease (until its 60 s TTL ends) fail and are retried."""
    from lae.archive.run import RunOptions, run_archive
    from lae.config import get_settings

    deadline, runs = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        try:
            totals = run_archive(get_settings(), RunOptions(
                run_id=f"soak-drain-{runs}-{int(time.time())}"))["totals"]
        except Exception as exc:  # noqa: BLE001 - a held lease or a slow broker: retry
            print(f"[soak] drain run failed ({exc}); retrying in 10 s", flush=True)
            time.sleep(10)
            continue
        if totals["valid"] + totals["quarantined"] == 0:
            return runs
        runs += 1
    raise SystemExit("the archive did not drain in time")


def supervise_loop(run: Run, settings, every_s: float = 20.0) -> None:
    from lae.cassandra import connect
    from lae.stream.supervisor import supervise

    session = connect(settings)
    try:
        while not run.done.is_set():
            try:
                action = supervise(session, settings, master="local[2]")["action"]
                if action not in ("running", "left_stopped"):
                    print(f"[soak] supervisor: {action}", flush=True)
            except Exception as exc:  # noqa: BLE001 - e.g. Cassandra busy: next pass
                print(f"[soak] supervision pass failed: {exc}", flush=True)
            run.done.wait(every_s)
    finally:
        session.cluster.shutdown()


def _rss_mb(pid: int | None, children: bool = False) -> float | None:
    import psutil

    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)] if children else [proc]
        return round(sum(p.memory_info().rss for p in procs) / 2**20, 1)
    except psutil.Error:
        return None


def sample_loop(run: Run, settings, kafka, every_s: float = 10.0) -> None:
    """RSS of every process and the stream's consumer lag, every ``every_s``."""
    from lae.cassandra import connect
    from lae.stack.manager import get_service
    from lae.stream import process, supervisor

    others = {name: get_service(name, settings) for name in ("cassandra", "s3")}
    session = connect(settings)
    try:
        while not run.done.is_set():
            sample = {"t_s": round(time.monotonic() - run.t0)}
            for node in kafka.nodes:
                sample[f"kafka-{node.node_id}"] = _rss_mb(node.process.pid())
            for name, service in others.items():
                sample[name] = _rss_mb(service.process.pid())
            record = process.read_pid(settings, "speed_views")
            sample["stream-driver+jvm"] = _rss_mb(record and record.pid, children=True)
            try:
                sample["lag"] = supervisor.status(session, settings).lag
            except Exception:  # noqa: BLE001 - a sample without lag, not a dead soak
                sample["lag"] = None
            with run.lock:
                run.samples.append(sample)
            run.done.wait(every_s)
    finally:
        session.cluster.shutdown()


def chaos(run: Run, settings, kafka, seconds: float, seed: int) -> None:
    """Each fault once, at a random time between 15% and 75% of the traffic window."""
    from lae.stream import process

    rng = random.Random(seed)  # noqa: S311 - fault timing, not security
    plan = sorted((rng.uniform(0.15, 0.75) * seconds, kind)
                  for kind in ("archive", "driver", "broker"))
    for at, kind in plan:
        if run.stop.wait(max(0.0, run.t0 + at - time.monotonic())):
            return
        if kind == "archive":
            run.kill_archive.set()  # the archive loop kills its next run while it reads
        elif kind == "driver":
            record = process.read_pid(settings, "speed_views")
            if record is None or not process.is_alive(record):
                run.fault("driver_sigkill_skipped", reason="no live driver at that moment")
                continue
            process.kill(record)
            run.fault("stream_driver_sigkill", pid=record.pid)
        else:
            leaders = Counter(p.leader for p in _partitions(settings))
            victim = next(n for n in kafka.nodes if n.node_id == leaders.most_common(1)[0][0])
            kill9(victim)
            run.fault("kafka_broker_sigkill", broker=victim.node_id,
                      leader_of=leaders[victim.node_id])
            if not run.stop.wait(60):
                victim.start()
                victim.wait_healthy()
                run.fault("kafka_broker_restarted", broker=victim.node_id)


def _partitions(settings):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topic = admin.list_topics(settings.raw_topic, timeout=15).topics[settings.raw_topic]
    return list(topic.partitions.values())


def expected_copies(truth) -> Counter:
    """event_id → messages Kafka acknowledged for it that the archive must keep (valid,
    duplicate and late kinds: the master dataset keeps every copy; malformed ones go to
    quarantine and have no valid event_id)."""
    cols = truth.select(["kind", "event_id", "error"]).to_pydict()
    return Counter(e for k, e, err in zip(cols["kind"], cols["event_id"], cols["error"],
                                          strict=True)
                   if k in ("valid", "late", "duplicate") and not err)


def stop_stream(settings) -> None:
    """The soak's streaming job ends with the soak (its desired state is left as it is, so the
    next soak's supervision starts it again)."""
    from lae.stream import process

    record = process.read_pid(settings, "speed_views")
    if record is not None and process.is_alive(record):
        process.terminate(record)


def memory_by_window(samples: list[dict], window_s: int = 300) -> dict[str, list[float]]:
    """process → median RSS MB per ``window_s`` of the run, in order: flat windows after the
    first ones mean bounded memory (a JVM's RSS climbs until its heap reaches -Xmx; a process
    the chaos killed starts again from its start-up size)."""
    out: dict[str, dict[int, list[float]]] = {}
    for sample in samples:
        for name, value in sample.items():
            if name not in ("t_s", "lag") and value:
                out.setdefault(name, {}).setdefault(sample["t_s"] // window_s, []).append(value)
    return {name: [round(statistics.median(w[k]), 1) for k in sorted(w)]
            for name, w in out.items()}


def memory_growth(samples: list[dict]) -> dict[str, tuple[float, float]]:
    """process → (median RSS MB of the first fifth, of the last fifth) of the samples."""
    n = max(1, len(samples) // 5)
    out = {}
    for name in samples[0]:
        if name in ("t_s", "lag"):
            continue
        first = [s[name] for s in samples[:n] if s.get(name)]
        last = [s[name] for s in samples[-n:] if s.get(name)]
        if first and last:
            out[name] = (statistics.median(first), statistics.median(last))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=2000.0, help="events/s")
    p.add_argument("--seed", type=int, default=9)
    args = p.parse_args()
    for noisy in ("kafka", "cassandra"):  # connection chatter every sampling pass
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from lae.config import get_settings
    from lae.demo import wait_stream_caught_up, wait_stream_running
    from lae.generate import generate
    from lae.generator.model import Mix
    from lae.generator.truth import read_truth
    from lae.s3 import s3_client
    from lae.serving.audit import audit_via_api, truth_hourly
    from lae.stack.manager import get_service

    settings = get_settings()
    if settings.kafka_brokers < 3:
        raise SystemExit("the soak needs LAE_KAFKA_BROKERS=3 (see bench/soak.env)")
    if settings.state_dir == (ROOT / ".lae").resolve():
        raise SystemExit("run the soak on its own stack: env $(cat bench/soak.env) ...")
    from lae.stack.airflow import venv_bin

    up = subprocess.run([str(venv_bin() / "lae"), "stack", "up", "--kafka-brokers", "3",  # noqa: S603 - our own CLI
                         "s3", "kafka", "cassandra"], check=False)
    if up.returncode:
        raise SystemExit("the soak's stack did not come up")
    settings = get_settings()
    kafka = get_service("kafka", settings)
    run = Run()
    seconds = args.minutes * 60
    started_at = datetime.now(UTC)
    threads = [threading.Thread(target=f, args=a, daemon=True, name=f.__name__) for f, a in (
        (supervise_loop, (run, settings)), (sample_loop, (run, settings, kafka)))]
    for t in threads:
        t.start()
    print(wait_stream_running(settings, since=started_at, timeout=900), flush=True)

    truth_path = settings.state_dir / f"soak-truth-{started_at:%Y%m%dT%H%M%SZ}.parquet"
    run.t0 = time.monotonic()
    traffic_start = datetime.now(UTC)
    more = [threading.Thread(target=archive_loop, args=(run,), daemon=True),
            threading.Thread(target=chaos, args=(run, settings, kafka, seconds, args.seed),
                             daemon=True)]
    for t in more:
        t.start()
    summary = generate(seed=args.seed, rate=args.rate, duration=seconds, settings=settings,
                       mix=Mix(late=0.0), truth_path=truth_path, stream=sys.stdout,
                       progress_interval=60)
    traffic_end = datetime.now(UTC)
    print(f"[soak] traffic done: {summary.line()}", flush=True)
    more[1].join(timeout=120)  # a broker restart in progress finishes first
    run.stop.set()
    more[0].join(timeout=600)
    caught_up = wait_stream_caught_up(settings, timeout=1800)
    drain_runs = drain_archive()
    run.done.set()
    for t in threads:
        t.join(timeout=60)
    stop_stream(settings)  # after the supervision loop ended, so nothing restarts it

    truth = read_truth(truth_path)
    want = expected_copies(truth)
    got = master_event_ids(s3_client(settings), settings.bucket)
    lost = sum((want - got).values())
    doubled = sum((got - want).values())
    hour = timedelta(hours=1)
    start = traffic_start.replace(minute=0, second=0, microsecond=0)
    end = traffic_end.replace(minute=0, second=0, microsecond=0) + hour
    report = audit_via_api(settings, truth_hourly(truth), start, end)
    growth = memory_growth(run.samples)
    windows = memory_by_window(run.samples)
    lags = [s["lag"] for s in run.samples if s.get("lag") is not None]

    print(f"\n[soak] {args.minutes:g} min at {args.rate:,.0f} events/s; load average at the "
          f"end {os.getloadavg()[0]:.1f}; {caught_up}; drain runs {drain_runs}")
    for fault in run.faults:
        print(f"  fault at t+{fault['at_s']}s: {fault['fault']}")
    print(f"  archive runs by exit code: {dict(run.archive_exits)}")
    print(f"  sent {summary.sent:,} (failed {summary.failed}); messages to keep "
          f"{sum(want.values()):,}; in the master dataset {sum(got.values()):,}; lost {lost}; "
          f"doubled {doubled}")
    print(f"  served vs truth: {len(report.hours)} service-hours, "
          f"{'ALL EXACT' if report.ok else 'PROBLEMS'}")
    if not report.ok:
        print(report.text())
    print("  resident memory MB (first fifth → last fifth of the run; median per 5 min):")
    for name, (first, last) in growth.items():
        print(f"    {name:<20} {first:8.1f} → {last:8.1f}   {windows.get(name)}")
    by_minute: dict[int, int] = {}
    for sample in run.samples:
        if sample.get("lag") is not None:
            minute = sample["t_s"] // 60
            by_minute[minute] = max(by_minute.get(minute, 0), sample["lag"])
    print(f"  consumer lag (messages behind the topic's end): max {max(lags, default=None)}, "
          f"after catching up {lags[-1] if lags else None}; max per minute of the run "
          f"{[by_minute[m] for m in sorted(by_minute)]}")

    out = os.environ.get("LAE_RELIABILITY_REPORT")
    if out:
        load1, load5, _ = os.getloadavg()
        line = {"scenario": "soak_with_chaos", "test": "bench/soak.py",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "loadavg_1m": round(load1, 2), "loadavg_5m": round(load5, 2),
                "load": f"{args.minutes:g} min at {args.rate:,.0f} events/s",
                "fault": "; ".join(f"{f['fault']} at t+{f['at_s']}s" for f in run.faults),
                "events_in": summary.sent, "kept_messages": sum(want.values()),
                "archived_rows": sum(got.values()), "lost": lost, "duplicated": doubled,
                "served_exact": report.ok, "lag_max": max(lags, default=None),
                "lag_last": lags[-1] if lags else None,
                "rss_mb_first_last": {k: list(v) for k, v in growth.items()},
                "rss_mb_per_5min": windows}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
    return 0 if lost == 0 and doubled == 0 and report.ok and summary.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
