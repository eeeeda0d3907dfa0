"""Producer throughput: the Python path (generator -> LogProducer) against Kafka's own Java
ProducerPerformance, same broker, same acks and compression, in the same run.

    .venv/bin/python bench/bench_producer.py                  # compare, 3 rounds each
    .venv/bin/python bench/bench_producer.py --sweep          # compression / linger / batch grid
    .venv/bin/python bench/bench_producer.py --profile        # cProfile of the Python path
    .venv/bin/python bench/bench_producer.py --poll-compare   # confluent: poll thread vs inline

The headline row uses the default client (LAE_KAFKA_CLIENT, else lae.kafka.DEFAULT_CLIENT);
both LogProducer backends are measured every round, next to bare confluent-kafka (no
LogProducer around it) and Java.

Uses the broker at LAE_KAFKA_PORT (starts the local one if it is not up, and stops it again).
Rounds alternate Python and Java so that load from anything else on the machine hits both;
the medians are compared. Java gets the generator's own JSON payloads (--payload-file), so
both compress the same data; it sends them unkeyed (ProducerPerformance has no keys) while
Python keys by service as the pipeline does.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from lae.config import get_settings
from lae.generate import generate
from lae.generator.clock import HistoryClock
from lae.generator.model import Mix, TrafficModel
from lae.kafka import (
    CLIENTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LINGER_MS,
    LogProducer,
    TopicSpec,
    ensure_topics,
    kafka_client,
)

DAY = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))
JAVA_RESULT = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


def payload_sample(n: int) -> list[bytes]:
    model = TrafficModel(99, mix=Mix(0.0, 0.0, 0.0))
    clock = HistoryClock(*DAY, n, 99)
    return list(model.draw(clock.positions(0, n), clock.start_ms).payloads)


def python_run(settings, topic: str, events: int, client: str | None = None,
               producer_class=LogProducer, **options) -> tuple[float, float, float]:
    """(records/s, MB/s, CPU µs/record) of generator + LogProducer until all are acknowledged.
    CPU time counts every thread of this process (the producer's own threads too)."""
    producer = producer_class(settings, topic=topic, client_id="lae-bench", client=client,
                              **options)
    try:
        cpu = time.process_time()
        started = time.perf_counter()
        summary = generate(seed=7, count=events, history=DAY, mix=Mix(0.0, 0.0, 0.0),
                           producer=producer, stream=None)
        stats = producer.flush()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        producer.close()
    if not stats.delivered == stats.sent == events:
        raise RuntimeError(f"not every record was delivered: {stats}")
    return events / seconds, summary.payload_bytes / seconds / 1e6, cpu / events * 1e6


def python_send_only(settings, topic: str, payloads: list[bytes], events: int,
                     client: str | None = None, **options):
    """records/s of LogProducer alone on pre-built payloads (separates generation cost)."""
    keys = [b"search", b"catalog", b"auth", b"profile", b"checkout", b"payments"]
    producer = LogProducer(settings, topic=topic, client_id="lae-bench", client=client,
                           **options)
    try:
        send = producer.send
        n = len(payloads)
        started = time.perf_counter()
        for i in range(events):
            send(payloads[i % n], keys[i % 6])
        producer.flush()
        return events / (time.perf_counter() - started)
    finally:
        producer.close()


def confluent_send_only(settings, topic: str, payloads: list[bytes], events: int,
                        compression: str | None, linger_ms: int, batch_size: int) -> float:
    """records/s of bare confluent-kafka (librdkafka) on the same payloads and settings, no
    LogProducer around it: the floor of what the confluent backend costs."""
    from confluent_kafka import Producer

    keys = [b"search", b"catalog", b"auth", b"profile", b"checkout", b"payments"]
    failed = []
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True, "compression.type": compression or "none",
                         "linger.ms": linger_ms, "batch.size": batch_size,
                         "partitioner": "murmur2_random"})  # Java's partitioner, as kafka-python

    def on_delivery(err, _msg):
        if err is not None:
            failed.append(err)

    n = len(payloads)
    started = time.perf_counter()
    for i in range(events):
        while True:
            try:
                producer.produce(topic, payloads[i % n], keys[i % 6], on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: serve callbacks, then retry
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60) or failed:
        raise RuntimeError(f"confluent-kafka did not deliver everything: {failed[:3]}")
    return events / (time.perf_counter() - started)


def poll_thread_class():
    """The confluent backend with a thread blocked in poll() serving every delivery report,
    instead of poll(0) after each produce plus an idle poller (what ConfluentLogProducer does)."""
    from lae.kafka_confluent import ConfluentLogProducer

    class PollThreadLogProducer(ConfluentLogProducer):
        _poll_after_send = False

        def _poll_loop(self) -> None:
            while not self._closed.is_set():
                self._producer.poll(0.2)

    return PollThreadLogProducer


def poll_compare(settings, args, options) -> None:
    variants = {"poll(0) per send": LogProducer, "poll thread": poll_thread_class()}
    results: dict[str, list] = {name: [] for name in variants}
    for round_ in range(1, args.rounds + 1):
        for name, cls in variants.items():
            topic = new_topic(settings, args.partitions)
            try:
                results[name].append(python_run(settings, topic, args.events, "confluent",
                                                producer_class=cls, **options))
            finally:
                delete_topics(settings, [topic])
            rps, _, cpu = results[name][-1]
            print(f"round {round_}: {name:<17} {rps:>9,.0f} rec/s {cpu:5.1f} CPU µs/rec",
                  flush=True)
    print(f"\nmedian of {args.rounds}, generator -> confluent LogProducer:")
    for name, runs in results.items():
        print(f"  {name:<17}: {statistics.median(r[0] for r in runs):>9,.0f} records/s "
              f"{statistics.median(r[2] for r in runs):5.1f} CPU µs/record")


def java_run(settings, topic: str, events: int, payload_file: Path | None, record_size: int,
             compression: str, linger_ms: int, batch_size: int) -> tuple[float, float, float]:
    """(records/s, MB/s, CPU µs/record) as ProducerPerformance reports them; CPU time is the
    JVM's whole life (start-up and JIT included), so it overstates Java's per-record cost."""
    jars = settings.jars_dir / "kafka"
    argv = ["java", "-Xmx512m", "-cp", f"{jars}/*", "org.apache.kafka.tools.ProducerPerformance",
            "--topic", topic, "--num-records", str(events), "--throughput", "-1"]
    if payload_file:
        argv += ["--payload-file", str(payload_file), "--payload-delimiter", "\n"]
    else:
        argv += ["--record-size", str(record_size)]
    argv += ["--producer-props", f"bootstrap.servers={settings.kafka_bootstrap}", "acks=all",
             "enable.idempotence=true", f"compression.type={compression or 'none'}",
             f"linger.ms={linger_ms}", f"batch.size={batch_size}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600,  # noqa: S603
                         check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    match = JAVA_RESULT.findall(out)
    if not match:
        raise RuntimeError(f"no result line in ProducerPerformance output:\n{out}")
    sent, rps, mbps = match[-1]
    return float(rps), float(mbps), cpu / int(sent) * 1e6


def new_topic(settings, partitions: int) -> str:
    topic = f"lae.bench.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, specs=[TopicSpec(topic, partitions, 1, {"retention.ms": "600000"})])
    return topic


def delete_topics(settings, topics: list[str]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--compression", default="zstd")
    parser.add_argument("--linger-ms", type=int, default=DEFAULT_LINGER_MS)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--sweep", action="store_true", help="grid of producer settings")
    parser.add_argument("--profile", action="store_true", help="cProfile the Python path")
    parser.add_argument("--poll-compare", action="store_true",
                        help="confluent backend: poll(0) per send vs a poll thread")
    parser.add_argument("--random-java-payload", action="store_true",
                        help="Java sends --record-size random records instead of JSON payloads")
    args = parser.parse_args(argv)

    settings = get_settings()
    from lae.stack.manager import get_service

    kafka = get_service("kafka", settings)
    started_here = kafka.start()
    kafka.wait_healthy()
    topics: list[str] = []
    try:
        payloads = payload_sample(10_000)
        mean_size = round(statistics.mean(map(len, payloads)))
        print(f"broker {settings.kafka_bootstrap}; events of {mean_size} bytes on average; "
              f"acks=all, idempotent; {args.partitions} partitions")
        comp = None if args.compression == "none" else args.compression
        options = {"compression_type": comp, "linger_ms": args.linger_ms,
                   "batch_size": args.batch_size}

        if args.profile:
            topic = new_topic(settings, args.partitions)
            topics.append(topic)
            profiler = cProfile.Profile()
            profiler.runcall(python_run, settings, topic, args.events, **options)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return 0

        if args.poll_compare:
            poll_compare(settings, args, options)
            return 0

        if args.sweep:
            grid = [(c, 20, 256 * 1024) for c in ("zstd", "gzip", None)]
            grid += [("zstd", linger, batch) for linger, batch in
                     ((0, 16 * 1024), (5, 64 * 1024), (20, 64 * 1024), (50, 256 * 1024),
                      (20, 1024 * 1024), (100, 1024 * 1024))]
            print(f"{'compression':>11} {'linger':>6} {'batch':>8} {'send-only/s':>12} "
                  f"{'gen+send/s':>11}")
            for c, linger, batch in grid:
                topic = new_topic(settings, args.partitions)
                topics.append(topic)
                opts = {"compression_type": c, "linger_ms": linger, "batch_size": batch}
                only = python_send_only(settings, topic, payloads, args.events, **opts)
                full, _, _ = python_run(settings, topic, args.events, **opts)
                print(f"{c or 'none':>11} {linger:>6} {batch:>8} {only:>12,.0f} {full:>11,.0f}",
                      flush=True)
            return 0

        payload_file = None
        tmp = tempfile.TemporaryDirectory()
        if not args.random_java_payload:
            payload_file = Path(tmp.name) / "payloads.txt"
            payload_file.write_bytes(b"\n".join(payloads))
        default = kafka_client()
        gen: dict[str, list] = {c: [] for c in CLIENTS}
        only: dict[str, list] = {c: [] for c in CLIENTS}
        java, rdkafka = [], []
        for round_ in range(1, args.rounds + 1):
            topic = new_topic(settings, args.partitions)
            topics.append(topic)
            for client in CLIENTS:
                gen[client].append(python_run(settings, topic, args.events, client, **options))
                only[client].append(python_send_only(settings, topic, payloads, args.events,
                                                     client, **options))
            rdkafka.append(confluent_send_only(settings, topic, payloads, args.events, comp,
                                               args.linger_ms, args.batch_size))
            java.append(java_run(settings, topic, args.events, payload_file, mean_size,
                                 args.compression, args.linger_ms, args.batch_size))
            parts = [f"generator -> {c} {gen[c][-1][0]:,.0f} rec/s "
                     f"({gen[c][-1][2]:.1f} CPU µs/rec), {c} only {only[c][-1]:,.0f}"
                     for c in CLIENTS]
            print(f"round {round_}: " + "; ".join(parts) +
                  f"; bare confluent-kafka {rdkafka[-1]:,.0f}; java {java[-1][0]:,.0f} rec/s "
                  f"({java[-1][2]:.1f} CPU µs/rec)", flush=True)
        tmp.cleanup()

        def medians(runs):
            return tuple(statistics.median(x) for x in zip(*runs, strict=True))

        java_rps, java_mbps, java_cpu = medians(java)
        py_rps, py_mbps, py_cpu = medians(gen[default])
        print(f"\nmedian of {args.rounds}: compression={args.compression} "
              f"linger.ms={args.linger_ms} batch.size={args.batch_size}; "
              f"default client: {default}")
        print(f"  python (generator -> LogProducer)    : {py_rps:>10,.0f} records/s "
              f"{py_mbps:6.1f} MB/s {py_cpu:6.1f} CPU µs/record  [{default}]")
        for client in CLIENTS:
            rps, mbps, cpu = medians(gen[client])
            print(f"  generator -> LogProducer[{client:<12}]: {rps:>10,.0f} records/s "
                  f"{mbps:6.1f} MB/s {cpu:6.1f} CPU µs/record")
        for client in CLIENTS:
            print(f"  LogProducer[{client:<12}] only       : "
                  f"{statistics.median(only[client]):>10,.0f} records/s")
        print(f"  bare confluent-kafka (send only)     : {statistics.median(rdkafka):>10,.0f}"
              " records/s")
        print(f"  java ProducerPerformance             : {java_rps:>10,.0f} records/s "
              f"{java_mbps:6.1f} MB/s {java_cpu:6.1f} CPU µs/record")
        print(f"  python / java records/s              : {py_rps / java_rps:10.0%}  "
              f"[{default}; goal >= 30%]")
        for client in CLIENTS:
            ratio = medians(gen[client])[0] / java_rps
            print(f"  generator -> {client:<12} / java     : {ratio:10.0%}")
        print(f"  bare confluent-kafka / java          : "
              f"{statistics.median(rdkafka) / java_rps:10.0%}")
        print(f"  java / python CPU per record         : {java_cpu / py_cpu:10.0%}  [{default}]")
        return 0
    finally:
        try:
            if topics:
                delete_topics(settings, topics)
        finally:
            if started_here:
                kafka.down()


if __name__ == "__main__":
    sys.exit(main())
