"""The one definition of an LAE event (schema v1, DESIGN §3) and everything derived from it.

- ``fields``: the fields as data (``FIELDS``), limits and the reason vocabulary;
- ``event``: ``validate(raw) -> Event | Rejection``, ``to_json_bytes(event)``;
- ``combined_log``: ``parse_combined(line, service, host)`` for Apache/Nginx combined lines;
- ``arrow`` / ``spark``: column schemas and Spark validation expressions (imported lazily).

Decisions recorded here because every layer inherits them: unknown fields are rejected
(``unknown_field``); JSON null equals an absent field; duplicate keys, NaN/Infinity literals,
a BOM, lone surrogate escapes and numbers over 1000 characters are ``invalid_json``; ``method``
is one of ``HTTP_METHODS`` in upper case; ``event_id`` is lower-cased and ``ts`` normalized to
UTC (microseconds); ``latency_ms`` is always a float, ``-0.0`` becomes ``0.0``.
"""

from lae.schema.arrow import KAFKA_COLUMNS, archive_arrow_schema, arrow_schema
from lae.schema.combined_log import COMBINED_LOG_NAMESPACE, RouteRule, parse_combined
from lae.schema.event import (
    Event,
    Rejection,
    event_from_dict,
    format_ts,
    to_dict,
    to_json_bytes,
    validate,
)
from lae.schema.fields import (
    FIELD_NAMES,
    FIELDS,
    HTTP_METHODS,
    MAX_EVENT_BYTES,
    SCHEMA_VERSION,
    Field,
    Kind,
)
from lae.schema.spark import archive_spark_schema, spark_schema, spark_validate

__all__ = [
    "COMBINED_LOG_NAMESPACE",
    "FIELDS",
    "FIELD_NAMES",
    "HTTP_METHODS",
    "KAFKA_COLUMNS",
    "MAX_EVENT_BYTES",
    "SCHEMA_VERSION",
    "Event",
    "Field",
    "Kind",
    "Rejection",
    "RouteRule",
    "archive_arrow_schema",
    "archive_spark_schema",
    "arrow_schema",
    "event_from_dict",
    "format_ts",
    "parse_combined",
    "spark_schema",
    "spark_validate",
    "to_dict",
    "to_json_bytes",
    "validate",
]
