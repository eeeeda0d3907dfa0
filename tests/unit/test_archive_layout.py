"""Object keys of the archive: pure functions of coordinates and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from lae.archive.layout import (
    file_name,
    hour_bucket,
    manifest_key,
    master_key,
    parse_file_name,
    pending_key,
    quarantine_date,
    quarantine_key,
)


def test_master_key_matches_the_contract():
    key = master_key("logs.raw", 3, 7, 1234, "2026-11-25", "05")
    assert key == ("master/logs/v1/date=2026-11-25/hour=05/"
                   "logs.raw+3+00000000000000000007-00000000000000001234.parquet")


def test_zero_padding_makes_lexicographic_order_offset_order():
    names = [file_name("t", 0, a, a + 1) for a in (9, 10, 99, 100, 2**62)]
    assert sorted(names) == names


def test_round_trip_and_inclusive_offsets():
    assert parse_file_name(master_key("logs.raw", 5, 10, 10, "2026-01-01", "00")) == (
        "logs.raw", 5, 10, 10)
    with pytest.raises(ValueError):
        file_name("t", 0, 5, 4)


def test_hour_bucket_is_utc():
    cet = timezone(timedelta(hours=1))
    assert hour_bucket(datetime(2026, 11, 26, 0, 30, tzinfo=cet)) == ("2026-11-25", "23")
    assert hour_bucket(datetime(2026, 11, 25, 9, 0, tzinfo=UTC)) == ("2026-11-25", "09")


def test_quarantine_is_filed_by_arrival_date():
    ms = int(datetime(2026, 11, 25, 23, 59, tzinfo=UTC).timestamp() * 1000)
    assert quarantine_date(ms) == "2026-11-25"
    assert quarantine_date(None) == quarantine_date(-1) == "unknown"
    assert quarantine_key("t", 1, 2, 3, "2026-11-25").startswith(
        "quarantine/logs/v1/date=2026-11-25/t+1+")


def test_manifest_and_pending_keys():
    assert manifest_key("scheduled__2026-11-25T00:15:00+00:00") == (
        "manifests/archive/scheduled__2026-11-25T00_15_00+00_00.json")
    assert pending_key("t", 2, 0, 100).endswith(
        "t+2+00000000000000000000-00000000000000000100.json")
