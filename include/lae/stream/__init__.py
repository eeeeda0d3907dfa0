"""The speed layer (DESIGN.md §1, §4–5): a Spark Structured Streaming job from ``logs.raw`` to
the ``rt_`` tables, and what keeps it alive.

- ``transforms``: parse/validate (lae.schema.spark), watermark + de-duplication, the views of
  ``lae.views`` (the batch job's functions), DLQ and late-event frames — pure DataFrame code.
- ``sinks``: the ``foreachBatch`` upserts (idempotent on replay); ``progress``: a progress
  report → heartbeat; ``job``: the two queries and the driver's monitor loop; ``rollup``: the
  hour rows, rolled up from the rt minute rows with ``lae.views.metrics_hour``.
- ``lease`` / ``process`` / ``supervisor``: one instance at a time (Cassandra lease), the
  detached local process, the supervision pass of the ``streaming_supervisor`` DAG, and the
  operator's start/stop (``streaming_control`` DAG, ``lae stream start|stop|status``).
- ``store``: the tables. Readers (serving layer, dashboards) call
  ``store.read_heartbeats(session, keyspace)`` (per query: batch id, last progress, offsets,
  lag and lag per partition, watermark, processing time), ``store.heartbeat_age(...)``,
  ``store.late_events(session, keyspace, service, day)`` (valid events the realtime views
  did not count because they arrived behind the watermark), and ``supervisor.status(...)``.

Importing this package or ``store``/``supervisor`` needs no JVM.
"""
