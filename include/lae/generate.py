"""`lae generate`: send synthetic API access logs to Kafka and record a ground truth.

Deterministic by seed: the same seed, count and time range produce the same messages (in
live mode only the event times differ, as they follow the wall clock). Examples::

    lae generate --count 100000 --start 2026-11-25 --days 1     # yesterday, as fast as possible
    lae generate --rate 500 --duration 600                      # live traffic for ten minutes
    lae generate --count 50000 --dry-run --truth /tmp/t.parquet # no Kafka, ground truth only

The ground-truth Parquet file has one row per message sent (see ``lae.generator.truth``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from lae.config import Settings
    from lae.kafka import LogProducer

CHUNK_SIZE = 4096


@dataclass
class Summary:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)
    topic: str | None = None
    truth_path: Path | None = None
    last_error: str | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        kinds = " ".join(f"{k}={v}" for k, v in self.kinds.items())
        return (f"sent={self.sent} delivered={self.delivered} failed={self.failed} "
                f"in {self.seconds:.1f}s ({self.rate:,.0f}/s, "
                f"{self.payload_bytes / max(self.seconds, 1e-9) / 1e6:.1f} MB/s) [{kinds}]")


class _Progress:
    def __init__(self, interval: float, stream: TextIO | None):
        self.interval = interval
        self.stream = stream
        self.start = self.last = time.monotonic()
        self.last_sent = 0

    def maybe(self, sent: int, producer: LogProducer | None, force: bool = False) -> None:
        now = time.monotonic()
        if self.stream is None or (not force and now - self.last < self.interval):
            return
        if force and sent == self.last_sent and sent:
            return  # the last line already said it
        rate = (sent - self.last_sent) / max(now - self.last, 1e-9)
        avg = sent / max(now - self.start, 1e-9)
        extra = ""
        if producer is not None:
            s = producer.stats()
            extra = (f" delivered={s.delivered} failed={s.failed} "
                     f"buffered={s.buffered_bytes / 1e6:.1f}MB")
            if s.last_error:
                extra += f" last_error={s.last_error!r}"
        print(f"[generate] sent={sent}{extra} rate={rate:,.0f}/s avg={avg:,.0f}/s",
              file=self.stream, flush=True)
        self.last, self.last_sent = now, sent


def generate(
    *,
    seed: int = 1,
    count: int | None = None,
    duration: float | None = None,
    rate: float = 0.0,
    history: tuple[datetime, datetime] | None = None,
    users: int = 10_000,
    mix=None,
    topic: str | None = None,
    truth_path: str | Path | None = None,
    producer: LogProducer | None = None,
    settings: Settings | None = None,
    dry_run: bool = False,
    producer_options: dict | None = None,
    progress_interval: float = 5.0,
    stream: TextIO | None | str = "stderr",
    chunk_size: int = CHUNK_SIZE,
) -> Summary:
    """Generate and send; returns the summary. Delivery failures are counted in the summary
    and the ground truth, not raised (the CLI turns them into a non-zero exit); synchronous
    send errors (e.g. ``BufferFullError``) propagate after the ground truth is written."""
    import numpy as np

    from lae.generator.clock import HistoryClock, LiveClock
    from lae.generator.model import KINDS, Mix, TrafficModel
    from lae.generator.truth import GroundTruthWriter, chunk_table

    if rate < 0:
        raise ValueError("rate must be >= 0")
    if count is None and duration is not None and rate > 0:
        count = int(rate * duration)
    if history is not None:
        if count is None:
            raise ValueError("a history run needs --count (or --rate with --duration)")
        clock = HistoryClock(history[0], history[1], count, seed)
    else:
        clock = LiveClock(rate)
        if count is None and duration is None:
            raise ValueError("give --count or --duration")
    deadline = time.monotonic() + duration if duration and count is None else None

    model = TrafficModel(seed, users=users, mix=mix or Mix())
    own_producer = producer is None and not dry_run
    if own_producer:
        from lae.kafka import LogProducer

        producer = LogProducer(settings, topic=topic, **(producer_options or {}))
    if producer is not None:
        topic = topic or producer.topic
    writer = GroundTruthWriter(truth_path) if truth_path else None
    summary = Summary(topic=None if dry_run else topic,
                      truth_path=Path(truth_path) if truth_path else None)
    kind_counts = np.zeros(len(KINDS), dtype=np.int64)
    progress = _Progress(progress_interval, sys.stderr if stream == "stderr" else stream)
    pending: deque = deque()  # (chunk, first_seq, rows, futures) awaiting delivery outcomes

    def drain(everything: bool) -> None:
        while pending:
            chunk, first, rows, futures = pending[0]
            if not everything and futures is not None and not all(f.is_done for f in futures):
                return
            pending.popleft()
            if futures is not None:
                for f in futures:
                    if f.is_done and f.exception is None:
                        summary.delivered += 1
                    else:
                        summary.failed += 1
                        if f.is_done:
                            summary.last_error = f"{type(f.exception).__name__}: {f.exception}"
            if writer is not None:
                writer.write(chunk_table(chunk, first, rows, topic, futures))

    send = producer.send if producer is not None else None
    interval = 1.0 / rate if rate > 0 else 0.0
    # Pacing and clock checks cost a syscall; do them about 200 times a second at most.
    check_every = max(1, int(rate // 200)) if rate > 0 else 1024
    started = time.monotonic()
    seq = 0
    stopped = False
    try:
        while not stopped and (count is None or seq < count):
            n = chunk_size if count is None else min(chunk_size, count - seq)
            chunk = model.draw(clock.positions(seq, n), clock.start_ms)
            futures: list | None = None if send is None else []
            rows = 0
            try:
                if send is None:
                    rows = n
                else:
                    append = futures.append
                    for key, value in zip(chunk.keys, chunk.payloads, strict=True):
                        i = seq + rows
                        if i % check_every == 0:
                            now = time.monotonic()
                            if deadline is not None and now >= deadline:
                                stopped = True
                                break
                            if interval:
                                delay = started + i * interval - now
                                if delay > 0:
                                    time.sleep(delay)
                            progress.maybe(i, producer)
                        append(send(value, key))
                        rows += 1
            finally:
                pending.append((chunk, seq, rows, futures))
                kind_counts += np.bincount(chunk.kind[:rows], minlength=len(KINDS))
                summary.payload_bytes += sum(map(len, chunk.payloads[:rows]))
                seq += rows
            if send is None and deadline is not None and time.monotonic() >= deadline:
                stopped = True
            drain(everything=False)
            progress.maybe(seq, producer)
        if producer is not None:
            producer.flush(raise_on_failure=False)
    finally:
        summary.sent = seq
        summary.seconds = time.monotonic() - started
        summary.kinds = dict(zip(KINDS, kind_counts.tolist(), strict=True))
        try:
            drain(everything=True)
        finally:
            if writer is not None:
                writer.close()
            if own_producer:
                producer.close(raise_on_failure=False)
    if dry_run:
        summary.delivered = 0
    progress.maybe(seq, producer, force=True)
    return summary


# -- command line ----------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to send")
    what.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    what.add_argument("--count", type=int, help="messages to send")
    what.add_argument("--duration", type=float, help="seconds to run (with --rate: count)")
    what.add_argument("--rate", type=float, default=0.0,
                      help="messages per second; 0 = as fast as possible (default)")
    what.add_argument("--users", type=int, default=10_000, help="signed-in user pool size")
    what.add_argument("--late", type=float, default=0.02, help="share of late events")
    what.add_argument("--duplicates", type=float, default=0.01,
                      help="share of re-sent messages (same event_id)")
    what.add_argument("--malformed", type=float, default=0.005,
                      help="share of messages that must be rejected")
    what.add_argument("--late-min", type=float, default=120.0,
                      help="least lateness in seconds (default 120)")
    what.add_argument("--late-max", type=float, default=6 * 3600.0,
                      help="most lateness in seconds (default 6 h)")
    when = parser.add_argument_group("event time (default: now, live)")
    when.add_argument("--start", help="history start date/time (UTC unless zoned)")
    when.add_argument("--days", type=float, help="history length in days (with --start)")
    when.add_argument("--from", dest="from_", metavar="FROM", help="history start")
    when.add_argument("--to", help="history end (exclusive)")
    where = parser.add_argument_group("where to")
    where.add_argument("--topic", help="Kafka topic (default: LAE_RAW_TOPIC)")
    where.add_argument("--truth", type=Path,
                       help="ground-truth Parquet path (default: <state dir>/generate/...)")
    where.add_argument("--no-truth", action="store_true", help="do not write a ground truth")
    where.add_argument("--dry-run", action="store_true", help="do not send; ground truth only")
    where.add_argument("--progress", type=float, default=5.0,
                       help="seconds between progress lines on stderr (default 5)")
    tune = parser.add_argument_group("producer")
    tune.add_argument("--linger-ms", type=int)
    tune.add_argument("--batch-size", type=int)
    tune.add_argument("--compression", choices=["zstd", "gzip", "lz4", "snappy", "none"])
    tune.add_argument("--max-block-ms", type=int)
    tune.add_argument("--delivery-timeout-ms", type=int)


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from lae.config import get_settings
    from lae.generator.clock import history_range
    from lae.generator.model import Mix
    from lae.kafka import DeliveryError

    settings = settings or get_settings()
    try:
        history = history_range(args.start, args.days, args.from_, args.to)
        mix = Mix(late=args.late, duplicate=args.duplicates, malformed=args.malformed,
                  late_min_s=args.late_min, late_max_s=args.late_max)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    truth = None
    if not args.no_truth:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        default = settings.state_dir / "generate" / f"truth-{stamp}-seed{args.seed}.parquet"
        truth = args.truth or default
    options = {name: value for name, value in (
        ("linger_ms", args.linger_ms), ("batch_size", args.batch_size),
        ("max_block_ms", args.max_block_ms), ("delivery_timeout_ms", args.delivery_timeout_ms),
    ) if value is not None}
    if args.compression:
        options["compression_type"] = None if args.compression == "none" else args.compression
    try:
        summary = generate(seed=args.seed, count=args.count, duration=args.duration,
                           rate=args.rate, history=history, users=args.users, mix=mix,
                           topic=args.topic, truth_path=truth, settings=settings,
                           dry_run=args.dry_run, producer_options=options,
                           progress_interval=args.progress)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DeliveryError as exc:  # e.g. the buffer stayed full: the broker is gone
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.line())
    if summary.truth_path:
        print(f"ground truth: {summary.truth_path}")
    if summary.failed:
        print(f"error: {summary.failed} message(s) were not delivered; last error: "
              f"{summary.last_error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lae generate", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
