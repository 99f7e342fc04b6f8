"""A fresh kiosk database built from a backup's rows: what restore puts in place.

A backup file is SQL someone else may have written: a trigger in it stayed live after a restore
and later promoted a staff account to coordinator. So restore never puts the file itself in
place. Its triggers and views go first (the file is brought to the current schema by the
migrations, and nothing of its own may run meanwhile); then a new, empty database is made by the
migrations, and the rows of every table and column that database has are copied into it.
Whatever else the file held - a trigger, a view, a table or column or index the kiosk does not
know - is left behind and named, so the coordinator and the log can say what was dropped.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kiosk.store.db import connect, migrate

_OWN = "_sqlite_migrations"  # the fresh database's own record of its migrations


def rebuild(source: Path, target: Path) -> tuple[str, ...]:
    """Builds `target` (a new file) from the rows of the backup copy `source`, which it alters;
    returns what was dropped, as "kind name" (e.g. "trigger promote", "column participants.x")."""
    dropped = _drop_code(source)
    old = connect(source)
    try:
        migrate(old)  # an older release's backup: its rows in today's tables
    finally:
        old.close()
    fresh = connect(target)
    try:
        migrate(fresh)
    finally:
        fresh.close()
    return tuple(dropped + _copy_rows(source, target))


def _drop_code(path: Path) -> list[str]:
    """Drops the file's triggers and views (before any migration writes to it); their names."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        found = conn.execute("select type, name from sqlite_master where type in ('trigger', 'view')"
                             " order by type desc, name").fetchall()
        for kind, name in found:
            conn.execute(f"drop {kind} if exists {_quoted(name)}")
    finally:
        conn.close()
    return [f"{kind} {name}" for kind, name in found]


def _copy_rows(source: Path, target: Path) -> list[str]:
    """Copies the rows of every table and column `target` has from `source`, in one transaction
    (foreign keys are checked by the kiosk that wrote them); names what `source` had besides."""
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("attach database ? as old", [str(source)])
        conn.execute("begin")
        dropped = []
        for table in _tables(conn, "main"):
            have = _columns(conn, "old", table)
            if have is None or table == _OWN:
                continue
            columns = ", ".join(_quoted(c) for c in _columns(conn, "main", table) if c in have)
            conn.execute(f"insert into main.{_quoted(table)} ({columns}) select {columns} from old.{_quoted(table)}")
            dropped += [f"column {table}.{c}" for c in have if c not in _columns(conn, "main", table)]
        dropped += [f"table {t}" for t in _tables(conn, "old") if t not in _tables(conn, "main")]
        dropped += [f"index {i}" for i in _indexes(conn, "old") - _indexes(conn, "main")]
        conn.execute("commit")
        conn.execute("detach database old")
        conn.execute("pragma journal_mode=DELETE")  # one self-contained file, renamed into place next
    finally:
        conn.close()
    return dropped


def _tables(conn, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(f"select name from {schema}.sqlite_master where type = 'table'"
                                       " and name not like 'sqlite_%' order by name")]


def _columns(conn, schema: str, table: str) -> list[str] | None:
    found = [r[1] for r in conn.execute(f"pragma {schema}.table_xinfo({_quoted(table)})")]
    return found or None


def _indexes(conn, schema: str) -> set[str]:
    """Indexes made by a statement (not the ones SQLite makes for keys)."""
    return {r[0] for r in conn.execute(f"select name from {schema}.sqlite_master where type = 'index'"
                                       " and sql is not null")}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
