"""The batch layer's recompute (issue 5): one UTC day of the master dataset → exact views.

- ``lae.batch.compute``: read a day (s3a://…/master/logs/v1/date=D/), de-duplicate by
  ``event_id`` (first copy by Kafka topic, partition, offset), compute lae.views' minute and
  hour rows — pure DataFrame functions.
- ``lae.batch.store``: the Cassandra side — write under a new ``batch_id``, verify, publish
  with one pointer upsert, advance the watermark W, drop superseded batches; and the reader
  ``read_published_minutes``.
- ``lae.batch.job``: ``recompute(spark, settings, day)``, the whole job.
- ``lae.batch.checks``: what the DAG checks around the job (archive completeness, counts of
  the published day against the master dataset read independently with pyarrow).

Cassandra writes go through cassandra-driver from ``foreachPartition``: the Spark Cassandra
Connector's newest release (3.5.1 on Maven Central, 2026-11-26) targets Spark 3.5 only.
pyspark and cassandra are imported lazily where possible so that the DAG files that import
this package stay cheap to parse.
"""

from lae.batch.store import VIEW, read_published_minutes

__all__ = ["VIEW", "read_published_minutes"]
