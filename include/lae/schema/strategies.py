"""Hypothesis strategies for valid events, generated from ``FIELDS``.

For tests only: imports hypothesis, a dev dependency. Other layers' tests can reuse them.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st

from lae.schema.event import Event
from lae.schema.fields import FIELDS, TS_MAX, TS_MIN, Field, Kind


def _strategy(fd: Field) -> st.SearchStrategy:
    if fd.kind is Kind.UUID:
        return st.uuids().map(str)
    if fd.kind is Kind.TIMESTAMP:
        return st.datetimes(
            min_value=TS_MIN.replace(tzinfo=None),
            max_value=(TS_MAX - timedelta(microseconds=1)).replace(tzinfo=None),
            timezones=st.just(TS_MIN.tzinfo),
        )
    if fd.kind is Kind.ENUM:
        return st.sampled_from(fd.choices)
    if fd.kind is Kind.INT:
        return st.integers(min_value=int(fd.minimum), max_value=int(fd.maximum))
    if fd.kind is Kind.NUMBER:
        return st.floats(
            min_value=fd.minimum, max_value=fd.maximum, allow_nan=False, allow_infinity=False
        ).map(lambda x: x + 0.0)
    if fd.kind is Kind.IP:
        return st.ip_addresses().map(str)
    if fd.kind is Kind.VERSION:
        return st.just(1)
    text = st.from_regex(fd.pattern, fullmatch=True) if fd.pattern else st.text()
    return text.filter(lambda s: fd.min_len <= len(s) <= (fd.max_len or len(s)))


def valid_events() -> st.SearchStrategy[Event]:
    """Every Event that validate() accepts, in its normalized form."""
    parts = {
        fd.name: _strategy(fd)
        if fd.required or fd.kind is Kind.VERSION
        else st.none() | _strategy(fd)
        for fd in FIELDS
    }
    return st.builds(Event, **parts)
