"""The kiosk's sync bookkeeping, in its own SQLite file beside the kiosk database (DATA_DIR/sync.db):
remotes we sync with and their secrets, acknowledged vectors, sync runs, and — when this kiosk
serves its peers — the devices paired with it, pairing codes and seen nonces.

Each call opens a short connection, so threads and processes can share the file safely.

A limit (`programs`) is a JSON list of program ids, or null for no limit: the central server's
for this kiosk (given at enrolment), a pairing code's for the laptop that pairs with it, and the
one a paired laptop says central gave it.
"""

import contextlib
import json
import sqlite3
import time
import uuid
from datetime import timedelta
from pathlib import Path

from kiosk.clock import iso, now_utc
from sync import auth
from sync.protocol import SyncError

FILE = "sync.db"
SCHEMA = """
create table if not exists remotes (
    url text primary key, kind text not null, device_id text not null, secret text not null,
    server_id text, programs text, enrolled_at text not null
);
create table if not exists acks (
    url text not null, program_id text not null, vector text not null, at text not null,
    primary key (url, program_id)
);
create table if not exists runs (
    id integer primary key, url text not null, started_at text not null, finished_at text,
    ok integer, pushed integer, pulled integer, reason text, error text, clock_offset_s real
);
create table if not exists clients (
    device_id text primary key, name text, secret text not null, enrolled_at text not null,
    revoked_at text, last_seen_at text, clock_offset_s real
);
create table if not exists pair_codes (
    code_hash text primary key, expires_at text not null, used_at text, used_by text
);
create table if not exists client_origins (
    origin text not null, device_id text not null, primary key (origin, device_id)
);
create table if not exists nonces (
    device_id text not null, nonce text not null, seen_at real not null, primary key (device_id, nonce)
);
"""


class SyncState:
    """Sync bookkeeping of one kiosk data folder."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / FILE
        with self._connect() as conn:
            conn.executescript(SCHEMA)
            _add_columns(conn, {"pair_codes": ("programs",), "clients": ("programs", "declared")})

    @contextlib.contextmanager
    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self):
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.execute("COMMIT")

    # --- remotes we sync with ------------------------------------------------------------------

    def save_remote(self, url: str, kind: str, device_id: str, secret: str, server_id=None, programs=None) -> None:
        with self._write() as conn:
            conn.execute("insert or replace into remotes values (?, ?, ?, ?, ?, ?, ?)",
                         [url, kind, device_id, secret, server_id, json.dumps(programs), iso(now_utc())])

    def remote(self, url: str | None = None) -> dict | None:
        """A remote by URL, or without a URL the central server (the first enrolled one)."""
        with self._connect() as conn:
            if url:
                row = conn.execute("select * from remotes where url = ?", [normal_url(url)]).fetchone()
            else:
                row = conn.execute("select * from remotes where kind = 'central' order by enrolled_at").fetchone()
        return dict(row) if row else None

    def remotes(self) -> list[dict]:
        with self._connect() as conn:
            return [dict(r) for r in conn.execute("select * from remotes order by enrolled_at")]

    def acked(self, url: str, program_id: str) -> dict[str, int]:
        """The vector a remote last acknowledged for a program."""
        with self._connect() as conn:
            row = conn.execute("select vector from acks where url = ? and program_id = ?", [url, program_id]).fetchone()
        return json.loads(row[0]) if row else {}

    def acks(self, program_id: str) -> list[dict]:
        """Each remote's last acknowledgement for a program: url, kind, vector and when."""
        with self._connect() as conn:
            rows = conn.execute("select a.url, r.kind, a.vector, a.at from acks a join remotes r on r.url = a.url"
                                " where a.program_id = ? order by a.at", [program_id]).fetchall()
        return [{"url": r["url"], "kind": r["kind"], "vector": json.loads(r["vector"]), "at": r["at"]} for r in rows]

    def set_acked(self, url: str, program_id: str, vector: dict) -> None:
        with self._write() as conn:
            conn.execute("insert or replace into acks values (?, ?, ?, ?)",
                         [url, program_id, json.dumps(vector), iso(now_utc())])

    def start_run(self, url: str) -> int:
        with self._write() as conn:
            return conn.execute("insert into runs (url, started_at) values (?, ?)", [url, iso(now_utc())]).lastrowid

    def finish_run(self, run_id: int, ok: bool, pushed=0, pulled=0, reason=None, error=None, offset=None) -> None:
        with self._write() as conn:
            conn.execute("update runs set finished_at = ?, ok = ?, pushed = ?, pulled = ?, reason = ?, error = ?,"
                         " clock_offset_s = ? where id = ?",
                         [iso(now_utc()), int(ok), pushed, pulled, reason, error, offset, run_id])

    def last_run(self, url: str | None = None, ok: bool | None = None) -> dict | None:
        clauses, args = [], []
        if url:
            clauses.append("url = ?")
            args.append(url)
        if ok is not None:
            clauses.append("ok = ?")
            args.append(int(ok))
        where = f"where finished_at is not null {'and ' + ' and '.join(clauses) if clauses else ''}"
        with self._connect() as conn:
            row = conn.execute(f"select * from runs {where} order by id desc limit 1", args).fetchone()
        return dict(row) if row else None

    # --- serving peers --------------------------------------------------------------------------

    def create_pair_code(self, hours: float = 12, programs: list[str] | None = None) -> str:
        """A one-time code another kiosk uses to pair with this one (`kiosk enrol URL CODE`);
        the laptop that pairs with it gets only `programs` (default: any this one may share)."""
        code = auth.new_code()
        with self._write() as conn:
            conn.execute("insert into pair_codes (code_hash, expires_at, programs) values (?, ?, ?)",
                         [auth.hash_code(code), iso(now_utc() + timedelta(hours=hours)),
                          json.dumps(sorted(programs)) if programs else None])
        return code

    def pair(self, code: str, name: str | None) -> tuple[str, str]:
        """Exchanges a pairing code for a new device id (chosen here, never by the client) and its
        secret; raises SyncError("bad_code")."""
        device_id, now = str(uuid.uuid4()), iso(now_utc())
        with self._write() as conn:
            row = conn.execute("select * from pair_codes where code_hash = ?", [auth.hash_code(code)]).fetchone()
            if row is None or row["used_at"] or row["expires_at"] < now:
                raise SyncError("bad_code", "this pairing code is unknown, used or expired")
            conn.execute("update pair_codes set used_at = ?, used_by = ? where code_hash = ?",
                         [now, device_id, row["code_hash"]])
            secret = auth.new_secret()
            conn.execute("insert into clients (device_id, name, secret, enrolled_at, programs) values (?, ?, ?, ?, ?)",
                         [device_id, name if isinstance(name, str) else None, secret, now, row["programs"]])
        return device_id, secret

    def client(self, device_id: str):
        """(secret, revoked) of a paired device, or None."""
        with self._connect() as conn:
            row = conn.execute("select secret, revoked_at from clients where device_id = ?", [device_id]).fetchone()
        return (row[0], bool(row[1])) if row else None

    def central_limit(self) -> list[str] | None:
        """The programs the central server enrolled this kiosk for, or None for any."""
        found = self.remote()
        return json.loads(found["programs"]) if found and found["programs"] else None

    def client_limits(self, device_id: str) -> tuple[list[str] | None, list[str] | None]:
        """(the pairing code's limit, the limit the device says central gave it) of a paired device."""
        with self._connect() as conn:
            row = conn.execute("select programs, declared from clients where device_id = ?", [device_id]).fetchone()
        return tuple(json.loads(v) if v else None for v in (row or (None, None)))

    def declare_limit(self, device_id: str, programs: list[str] | None) -> None:
        with self._write() as conn:
            conn.execute("update clients set declared = ? where device_id = ?",
                         [json.dumps(sorted(programs)) if programs is not None else None, device_id])

    def revoke_client(self, device_id: str) -> bool:
        with self._write() as conn:
            return bool(conn.execute("update clients set revoked_at = ? where device_id = ?",
                                     [iso(now_utc()), device_id]).rowcount)

    def remember_nonce(self, device_id: str, nonce: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("insert or ignore into nonces values (?, ?, ?)", [device_id, nonce, time.time()])
            return cursor.rowcount == 1

    def client_contact(self, device_id: str, offset: float, origin: str | None = None) -> None:
        """Notes a paired device's hello: when, its clock offset, and the origin it says it writes as."""
        with self._write() as conn:
            conn.execute("update clients set last_seen_at = ?, clock_offset_s = ? where device_id = ?",
                         [iso(now_utc()), round(offset, 3), device_id])
            if origin:
                conn.execute("insert or ignore into client_origins values (?, ?)", [origin, device_id])

    def revoke_clients_writing_as(self, origins) -> int:
        """Unpairs every paired device that said it writes as one of `origins` (revoked on central)."""
        wanted = sorted(set(origins))
        if not wanted:
            return 0
        with self._write() as conn:
            return conn.execute(
                "update clients set revoked_at = ? where revoked_at is null and device_id in (select device_id"
                f" from client_origins where origin in ({', '.join('?' * len(wanted))}))",
                [iso(now_utc()), *wanted]).rowcount


def _add_columns(conn, wanted: dict[str, tuple[str, ...]]) -> None:
    """Columns added after a sync.db was made (nullable text)."""
    for table, columns in wanted.items():
        have = {r[1] for r in conn.execute(f"pragma table_info({table})")}
        for column in columns:
            if column not in have:
                try:
                    conn.execute(f"alter table {table} add column {column} text")
                except sqlite3.OperationalError:  # another process added it first
                    pass


def within(*limits) -> set[str] | None:
    """The programs every limit allows (None for a limit of any); None if none limits anything."""
    found = None
    for limit in limits:
        if limit is not None:
            found = set(limit) if found is None else found & set(limit)
    return found


def normal_url(url: str) -> str:
    """One spelling per server: no trailing slash."""
    return url.rstrip("/")
