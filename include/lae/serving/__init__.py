"""The serving layer (issue 7): batch before W, realtime from W, one answer.

- ``lae.serving.merge``: the merge rule as one pure function (``merge``), used by all below.
- ``lae.serving.store``: prepared-statement reads/writes of the view tables in Cassandra.
- ``lae.serving.query``: the read-time merge of one service over a time range (and the API's
  day-by-day answer, published days before W from ``lae.serving.cache``).
- ``lae.serving.series``: merged rows → one point per bucket (percentiles, unique users).
- ``lae.serving.reconcile``: the ``reconcile_views`` DAG's work — materialize ``serving_*``,
  measure drift (explained by late events or not), alert, expire realtime rows below W.
- ``lae.serving.audit``: hourly totals of the query API against a ground truth.
- ``lae.serving.api``: the query API and dashboard (``lae serve``; also the Airflow plugin).

cassandra-driver and FastAPI are imported by the submodules that need them only, so
``lae.serving.merge`` stays importable anywhere.
"""

from lae.serving.merge import BATCH, REALTIME, Merged, ViewRow, merge

__all__ = ["BATCH", "REALTIME", "Merged", "ViewRow", "merge"]
