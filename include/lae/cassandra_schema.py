"""Versioned CQL migrations: ``include/lae/cql/V<NNN>__<name>.cql`` applied in order, once.

Each applied file is recorded in ``<keyspace>.schema_migrations`` with its checksum. Running
``migrate`` again applies only what is new; an applied file whose text changed is refused
(edit history by adding V<NNN+1>, never by rewriting), so every environment ends up with the
same schema. Files may use ``{{keyspace}}`` and ``{{replication_factor}}``; the checksum is
taken over the file as written, so changing the settings does not count as an edit.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cassandra.cluster import Session

from lae.config import Settings, get_settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("cql")
_FILE_NAME = re.compile(r"^V(\d+)__(\w+)\.cql$")
# Keyspace names are interpolated into CQL, so they must be plain identifiers.
_KEYSPACE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
# Schema changes wait for agreement; on a busy 2-core node that can exceed the 10 s default.
_DDL_TIMEOUT = 60.0


class MigrationError(RuntimeError):
    """The migration files or the recorded history are inconsistent; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    text: str

    @property
    def label(self) -> str:
        """``V001``: what schema_migrations.version holds."""
        return f"V{self.version:03d}"

    @property
    def checksum(self) -> str:
        # Line endings normalized so a checkout with CRLF does not look like an edit.
        return hashlib.sha256(self.text.replace("\r\n", "\n").encode()).hexdigest()

    def statements(self, keyspace: str, replication_factor: int) -> list[str]:
        return split_statements(render(self.text, keyspace, replication_factor))


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files in version order; a stray or duplicate-version ``.cql`` is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.cql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named V<number>__<name>.cql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} already used by {found[version].path.name}"
            )
        found[version] = Migration(version, match.group(2), path, path.read_text())
    return [found[v] for v in sorted(found)]


def check_keyspace(keyspace: str) -> str:
    if not _KEYSPACE.match(keyspace):
        raise MigrationError(f"keyspace {keyspace!r} is not a plain CQL identifier")
    return keyspace


def render(text: str, keyspace: str, replication_factor: int) -> str:
    check_keyspace(keyspace)
    if replication_factor < 1:
        raise MigrationError(f"replication factor must be >= 1, got {replication_factor}")
    out = text.replace("{{keyspace}}", keyspace).replace(
        "{{replication_factor}}", str(int(replication_factor))
    )
    leftover = re.search(r"\{\{\s*\w*\s*\}\}", out)
    if leftover:
        raise MigrationError(f"unknown placeholder {leftover.group(0)}")
    return out


def split_statements(cql: str) -> list[str]:
    """Split a CQL script on ``;``, dropping ``--``, ``//`` and ``/* */`` comments.

    Quoted strings ('...', "...", $$...$$) are kept intact, so a ``;`` or ``--`` inside one
    does not split or truncate a statement.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(cql)
    while i < n:
        two = cql[i:i + 2]
        ch = cql[i]
        if two in ("--", "//"):
            end = cql.find("\n", i)
            i = n if end < 0 else end
        elif two == "/*":
            end = cql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif two == "$$" or ch in "'\"":
            quote = "$$" if two == "$$" else ch
            end = cql.find(quote, i + len(quote))
            # A doubled '' inside a string is an escaped quote: keep scanning past it.
            while quote in "'\"" and 0 <= end < n - 1 and cql[end + 1] == quote:
                end = cql.find(quote, end + 2)
            stop = n if end < 0 else end + len(quote)
            buf.append(cql[i:stop])
            i = stop
        elif ch == ";":
            statements.append("".join(buf))
            buf = []
            i += 1
        else:
            buf.append(ch)
            i += 1
    statements.append("".join(buf))
    return [s.strip() for s in statements if s.strip()]


def pending(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """Migrations not yet applied; ``applied`` maps version label -> recorded checksum."""
    for m in migrations:
        recorded = applied.get(m.label)
        if recorded is not None and recorded != m.checksum:
            raise MigrationError(
                f"{m.path.name} was changed after it was applied (checksum {recorded[:12]} "
                f"recorded, {m.checksum[:12]} now); add a new V-file instead of editing it"
            )
    known = {m.label for m in migrations}
    for label in sorted(set(applied) - known):
        log.warning("schema_migrations lists %s, which has no file here (newer code?)", label)
    return [m for m in migrations if m.label not in applied]


def applied_versions(session: Session, keyspace: str) -> dict[str, str]:
    exists = session.execute(
        "SELECT table_name FROM system_schema.tables "
        "WHERE keyspace_name = %s AND table_name = 'schema_migrations'",
        (keyspace,),
    ).one()
    if exists is None:
        return {}
    # S608: the keyspace is a checked identifier (check_keyspace), not user input.
    rows = session.execute(
        f"SELECT version, checksum FROM {check_keyspace(keyspace)}.schema_migrations"  # noqa: S608
    )
    return {r.version: r.checksum for r in rows}


def migrate(
    target: Session | Settings | None = None,
    settings: Settings | None = None,
    directory: Path = MIGRATIONS_DIR,
) -> list[str]:
    """Apply pending migrations; returns the labels applied now (empty when up to date).

    ``target`` is an open Session (left open) or Settings (a session is opened and closed
    here). Keyspace and replication factor come from ``settings`` (or the target Settings).
    """
    if isinstance(target, Settings):
        settings = settings or target
    settings = settings or get_settings()
    if isinstance(target, Session):
        return _migrate(target, settings, directory)
    from lae.cassandra import connect

    session = connect(settings)
    try:
        return _migrate(session, settings, directory)
    finally:
        session.cluster.shutdown()


def _migrate(session: Session, settings: Settings, directory: Path) -> list[str]:
    keyspace, rf = check_keyspace(settings.keyspace), settings.cassandra_replication_factor
    todo = pending(discover(directory), applied_versions(session, keyspace))
    done: list[str] = []
    for m in todo:
        log.info("applying %s to keyspace %s", m.path.name, keyspace)
        for statement in m.statements(keyspace, rf):
            session.execute(statement, timeout=_DDL_TIMEOUT)
        # Created after the first file ran, because that file creates the keyspace itself.
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations ("
            "version text PRIMARY KEY, name text, checksum text, applied_at timestamp)",
            timeout=_DDL_TIMEOUT,
        )
        # IF NOT EXISTS: when two runners race, the first record (and its applied_at) stays.
        session.execute(
            f"INSERT INTO {keyspace}.schema_migrations "  # noqa: S608 - checked identifier
            "(version, name, checksum, applied_at) VALUES (%s, %s, %s, %s) IF NOT EXISTS",
            (m.label, m.name, m.checksum, datetime.now(UTC)),
        )
        done.append(m.label)
    return done


if __name__ == "__main__":  # python -m lae.cassandra_schema: apply pending migrations
    logging.basicConfig(level=logging.INFO)
    print("applied:", migrate() or "nothing, up to date")
