"""Migration discovery, ordering, templating, splitting and checksum rules (no Cassandra)."""

from __future__ import annotations

import pytest

from lae.cassandra_schema import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    discover,
    pending,
    render,
    split_statements,
)

DESIGN_TABLES = {
    "batch_metrics_minute", "batch_metrics_hour", "batch_published", "batch_watermark",
    "rt_metrics_minute", "rt_metrics_hour", "serving_metrics_minute", "serving_metrics_hour",
    "stream_heartbeat", "view_drift",
}


def _write(directory, name, text="SELECT 1;"):
    (directory / name).write_text(text)


def test_discover_orders_by_number_not_by_name(tmp_path):
    for name in ("V10__ten.cql", "V2__two.cql", "V001__one.cql"):
        _write(tmp_path, name)
    found = discover(tmp_path)
    assert [m.version for m in found] == [1, 2, 10]
    assert [m.label for m in found] == ["V001", "V002", "V010"]
    assert found[0].name == "one"


def test_discover_ignores_other_extensions_but_rejects_misnamed_cql(tmp_path):
    _write(tmp_path, "V001__ok.cql")
    _write(tmp_path, "README.md", "notes")
    assert len(discover(tmp_path)) == 1
    _write(tmp_path, "002_missing_prefix.cql")
    with pytest.raises(MigrationError, match="named V<number>__<name>.cql"):
        discover(tmp_path)


def test_discover_rejects_duplicate_versions(tmp_path):
    _write(tmp_path, "V001__a.cql")
    _write(tmp_path, "V1__b.cql")
    with pytest.raises(MigrationError, match="already used"):
        discover(tmp_path)


def test_checksum_tracks_text_but_not_line_endings(tmp_path):
    a = Migration(1, "a", tmp_path / "V001__a.cql", "CREATE TABLE t (k int PRIMARY KEY);\n")
    crlf = Migration(1, "a", a.path, a.text.replace("\n", "\r\n"))
    edited = Migration(1, "a", a.path, a.text.replace("int", "text"))
    assert a.checksum == crlf.checksum
    assert a.checksum != edited.checksum


def test_pending_skips_applied_and_refuses_edited_history(tmp_path):
    one = Migration(1, "a", tmp_path / "V001__a.cql", "SELECT 1;")
    two = Migration(2, "b", tmp_path / "V002__b.cql", "SELECT 2;")
    assert pending([one, two], {}) == [one, two]
    assert pending([one, two], {"V001": one.checksum}) == [two]
    assert pending([one, two], {"V001": one.checksum, "V002": two.checksum}) == []
    with pytest.raises(MigrationError, match="changed after it was applied"):
        pending([one, two], {"V001": "0" * 64})


def test_pending_tolerates_versions_recorded_by_newer_code(tmp_path):
    one = Migration(1, "a", tmp_path / "V001__a.cql", "SELECT 1;")
    assert pending([one], {"V001": one.checksum, "V099": "x"}) == []


def test_render_fills_placeholders_and_guards_identifiers():
    text = "CREATE KEYSPACE {{keyspace}} WITH r = {'replication_factor': {{replication_factor}}};"
    assert render(text, "lae_test", 3) == (
        "CREATE KEYSPACE lae_test WITH r = {'replication_factor': 3};"
    )
    with pytest.raises(MigrationError, match="identifier"):
        render(text, "lae; DROP KEYSPACE x", 1)
    with pytest.raises(MigrationError, match="replication factor"):
        render(text, "lae", 0)
    with pytest.raises(MigrationError, match="unknown placeholder"):
        render("{{nope}}", "lae", 1)


def test_split_statements_drops_comments_and_keeps_quoted_semicolons():
    cql = """
    -- a comment; with a semicolon
    CREATE TABLE a (k text PRIMARY KEY); // trailing comment
    /* block; comment */
    INSERT INTO a (k) VALUES ('x;y -- not a comment');
    INSERT INTO a (k) VALUES ('it''s; fine');
    CREATE FUNCTION f() RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return 1; $$
    """
    assert split_statements(cql) == [
        "CREATE TABLE a (k text PRIMARY KEY)",
        "INSERT INTO a (k) VALUES ('x;y -- not a comment')",
        "INSERT INTO a (k) VALUES ('it''s; fine')",
        "CREATE FUNCTION f() RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java "
        "AS $$ return 1; $$",
    ]


def test_shipped_migrations_define_the_design_tables():
    migrations = discover(MIGRATIONS_DIR)
    assert migrations[0].label == "V001"
    statements = [s for m in migrations for s in m.statements("lae", 1)]
    assert statements[0].startswith("CREATE KEYSPACE IF NOT EXISTS lae")
    assert "'replication_factor': 1}" in statements[0]
    created = {
        s.split()[5].removeprefix("lae.")
        for s in statements
        if s.startswith("CREATE TABLE IF NOT EXISTS")
    }
    assert DESIGN_TABLES <= created
    # Re-runnable after a half-applied failure.
    assert all(" IF NOT EXISTS " in s for s in statements)
