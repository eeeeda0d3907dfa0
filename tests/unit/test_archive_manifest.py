"""Manifest content: per-partition ranges, files, counts and events per event date."""

from __future__ import annotations

from lae.archive.manifest import build_manifest


def _result(partition, start, end, dates, run_id="run-1", quarantined=0):
    valid = sum(dates.values())
    files = [{"key": f"master/{partition}/{d}", "rows": n, "bytes": 100 * n, "date": d}
             for d, n in dates.items()]
    qfiles = [{"key": f"quarantine/{partition}", "rows": quarantined, "bytes": 7,
               "reasons": {"invalid_json": quarantined}}] if quarantined else []
    return {"run_id": run_id, "topic": "logs.raw", "partition": partition, "start": start,
            "end": end, "valid": valid, "quarantined": quarantined, "last_offset": end - 1,
            "files": files, "quarantine_files": qfiles, "dates": dates,
            "quarantine_reasons": {"invalid_json": quarantined} if quarantined else {}}


def test_manifest_adds_up():
    results = [_result(1, 0, 12, {"2026-11-25": 9, "2026-11-24": 1}, quarantined=2),
               _result(0, 5, 9, {"2026-11-25": 4})]
    m = build_manifest("run-1", results)
    assert [p["partition"] for p in m["partitions"]] == [0, 1]
    assert m["dates"] == {"2026-11-24": 1, "2026-11-25": 13}
    assert m["totals"] == {"valid": 14, "quarantined": 2, "files": 3, "quarantine_files": 1,
                           "bytes": 1407}
    assert m["quarantine_reasons"] == {"invalid_json": 2}
    assert all("recovered_from" not in p for p in m["partitions"])


def test_ranges_of_a_crashed_run_are_marked_recovered():
    m = build_manifest("run-2", [_result(0, 0, 5, {"2026-11-25": 5}, run_id="run-1")])
    assert m["partitions"][0]["recovered_from"] == "run-1"


def test_same_results_same_document_whatever_the_order():
    a = [_result(1, 0, 3, {"d": 3}), _result(0, 0, 2, {"d": 2})]
    assert build_manifest("r", a) == build_manifest("r", list(reversed(a)))
