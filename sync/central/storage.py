"""The central server's storage through SQLAlchemy Core: one SQL path for SQLite and PostgreSQL.

The central server is a replica of every device's change log (`changes`, `vectors`) plus read
tables kept up to date from it for the dashboards:

* `fields`   - one row per (entity, id, field) holding the winning value by HLC
  (per-field last-writer-wins, as on a kiosk); a delete is the field `_deleted`;
* `scans`    - every scan event, once (union by id), with the pushing device's clock offset;
* `attendance` - one row per (participant, session) with a successful check-in.

Writes use `INSERT … ON CONFLICT … DO UPDATE … WHERE`, which reads the same on both databases;
each batch is deduplicated first because PostgreSQL refuses to touch a row twice in a statement.
"""

import hmac
import json
import re
import threading
import time
import uuid
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from sqlalchemy import (BigInteger, Column, Float, Index, MetaData, String, Table, Text,
                        and_, create_engine, delete, event, func, inspect, or_, select, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.auth import _USERNAME as USERNAME, AuthError
from kiosk.changes import ChangeError, validate
from kiosk.clock import HybridClock, iso, now_utc
from sync import auth
from sync.protocol import SKEW_FLAG_SECONDS, SyncError, same_change

# Fields kept current in `fields` for the dashboards; the full rows live in the change log.
# The reports (kiosk.reports, fed by sync.central.reports) read names, positions and areas too;
# national-ID hashes and phones are never materialized.
MATERIALIZED = {
    "programs": {"title", "organizer", "fiscal_year", "signing_key", "certificate_rule", "allowance_rate"},
    "sites": {"name", "kind"},
    "cohorts": {"number", "title", "site_id", "starts_on", "ends_on"},
    "sessions": {"cohort_id", "day", "slot", "site_id", "opens_at", "closes_at", "title"},
    "targets": {"cohort_id", "role", "area_code", "area_name", "expected"},
    "participants": {"cohort_id", "role", "status", "province_code", "district_code", "subdistrict_code",
                     "title", "first_name", "last_name", "position", "organization"},
    "badges": {"participant_id", "revoked_at"},
    "progress_entries": {"cohort_id", "period", "problems", "obstacles", "written_by", "written_at"},
}
_DUMMY_HASH = generate_password_hash("timing-equaliser")
_NAMED_PARAM = re.compile(r"%\((\w+)\)s")
HLC = String(64).with_variant(String(64, collation="C"), "postgresql")
NONCE_DAYS = 30

metadata = MetaData()
meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
devices = Table(
    "devices", metadata,
    Column("id", String(64), primary_key=True), Column("name", Text), Column("secret", String(64), nullable=False),
    Column("programs", Text), Column("enrolled_at", String(32), nullable=False), Column("revoked_at", String(32)),
    Column("last_seen_at", String(32)), Column("last_sync_at", String(32)), Column("clock_offset_s", Float),
    Column("pushed", BigInteger, nullable=False, default=0), Column("pulled", BigInteger, nullable=False, default=0),
)
device_origins = Table(
    "device_origins", metadata,
    Column("origin", String(64), primary_key=True), Column("device_id", String(64), nullable=False),
)
users = Table(
    "central_users", metadata,
    Column("id", String(64), primary_key=True), Column("username", String(40), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False), Column("created_at", String(32), nullable=False),
)
enrol_codes = Table(
    "enrol_codes", metadata,
    Column("code_hash", String(64), primary_key=True), Column("name", Text), Column("programs", Text),
    Column("created_at", String(32), nullable=False), Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32)), Column("used_by", String(64)),
)
nonces = Table(
    "nonces", metadata,
    Column("device_id", String(64), primary_key=True), Column("nonce", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False), Index("nonces_seen", "seen_at"),
)
changes = Table(
    "changes", metadata,
    Column("program_id", String(64), primary_key=True), Column("origin", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entity", String(32), nullable=False), Column("entity_id", String(64), nullable=False),
    Column("op", String(8), nullable=False), Column("payload", Text, nullable=False), Column("hlc", HLC, nullable=False),
    Column("received_at", String(32), nullable=False), Column("received_from", String(80)),
    Index("changes_hlc", "program_id", "hlc"),
)
vectors = Table(
    "vectors", metadata,
    Column("program_id", String(64), primary_key=True), Column("origin", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)
# The read tables are keyed by program first, so the key serves the per-program reads and no
# second index has to be kept up to date on every push.
fields = Table(
    "fields", metadata,
    Column("program_id", String(64), primary_key=True), Column("entity", String(32), primary_key=True),
    Column("entity_id", String(64), primary_key=True), Column("field", String(40), primary_key=True),
    Column("value", Text), Column("hlc", HLC, nullable=False),
)
scans = Table(
    "scans", metadata,
    Column("program_id", String(64), primary_key=True), Column("id", String(64), primary_key=True),
    Column("participant_id", String(64)), Column("session_id", String(64)), Column("result", String(32)),
    Column("direction", String(8)), Column("device_id", String(64)), Column("at", String(40)),
    Column("origin", String(64), nullable=False), Column("received_from", String(80)),
    Column("clock_offset_s", Float), Column("via", String(8)),
)
attendance = Table(
    "attendance", metadata,
    Column("program_id", String(64), primary_key=True), Column("participant_id", String(64), primary_key=True),
    Column("session_id", String(64), primary_key=True), Column("first_at", String(40), nullable=False),
    Column("first_scan_id", String(64), nullable=False),
)


def make_engine(url: str):
    """An engine for the URL; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=16)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # a writer takes the lock at BEGIN instead of failing to upgrade a read transaction;
            # readers (WAL) neither wait for writers nor hold them up
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writes") else "BEGIN")
        return engine
    return create_engine(url, pool_size=16, max_overflow=8, pool_pre_ping=True)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_encode_str = json.encoder.encode_basestring  # what _ENCODER does to a str, without its set-up


def _dump(value) -> str:
    """Canonical JSON text: sorted keys, compact, UTF-8 kept (the same bytes for the same value)."""
    return _encode_str(value) if type(value) is str else _ENCODER.encode(value)


class Storage:
    """The central server's data: devices and enrolment, the change log, and the read tables."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        self._rekey_read_tables()
        metadata.create_all(self.engine)
        self._add_columns()
        self.server_id = self._ensure_server_id()
        self._clock = HybridClock(self.server_id)
        self._clock_lock = threading.Lock()
        self._compiled: dict = {}

    def _rekey_read_tables(self) -> None:
        """Moves read tables made before they were keyed by program first into the new shape."""
        found = inspect(self.engine)
        names = set(found.get_table_names())
        old = [t for t in (fields, scans, attendance) if t.name in names
               and found.get_pk_constraint(t.name)["constrained_columns"][0] != "program_id"]
        if not old:
            return
        with self.write() as conn:
            for table in old:
                for index in found.get_indexes(table.name):
                    conn.exec_driver_sql(f"DROP INDEX {index['name']}")
                conn.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {table.name}_old")
                table.create(conn)
                columns = ", ".join(c.name for c in table.columns)
                conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {table.name}_old")
                conn.exec_driver_sql(f"DROP TABLE {table.name}_old")

    def _add_columns(self) -> None:
        """Columns added to read tables after they were first made (scans.via: paper check-ins)."""
        have = {c["name"] for c in inspect(self.engine).get_columns("scans")}
        if "via" not in have:
            with self.write() as conn:
                conn.exec_driver_sql("ALTER TABLE scans ADD COLUMN via VARCHAR(8)")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self):
        """A write transaction. On SQLite the threads of this process queue on a lock first: the
        database takes one writer at a time, and SQLite's own busy wait sleeps in steps of up to
        100 ms, leaving the lock idle while writers sleep (other processes still get that wait)."""
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(writes=True)
            with conn.begin():
                yield conn

    def insert(self, table):
        """The dialect's INSERT that knows ON CONFLICT."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def _ensure_server_id(self) -> str:
        with self.write() as conn:
            conn.execute(self.insert(meta).values(key="server_id", value=str(uuid.uuid4()))
                         .on_conflict_do_nothing(index_elements=["key"]))
            return conn.execute(select(meta.c.value).where(meta.c.key == "server_id")).scalar_one()

    def _retrying(self, work, attempts: int = 5):
        """Runs `work(conn)` in a transaction, again on a lost race (new origin, deadlock, busy)."""
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError) as exc:
                if attempt == attempts - 1 or not _transient(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))

    # --- meta -------------------------------------------------------------------------------

    def get_meta(self, key: str):
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(self.insert(meta).values(key=key, value=value)
                         .on_conflict_do_update(index_elements=["key"], set_={"value": value}))

    # --- coordinators' accounts ---------------------------------------------------------------

    def add_user(self, username: str, password: str, conn=None) -> str:
        """A coordinator account on the central server; the password kept as a salted scrypt hash.

        Raises kiosk.auth.AuthError (bad_username, weak_password, duplicate_user), as on a kiosk.
        """
        _check_account(username, password)
        user_id = str(uuid.uuid4())
        row = dict(id=user_id, username=username, created_at=iso(now_utc()),
                   password_hash=generate_password_hash(password))
        try:
            if conn is not None:
                conn.execute(users.insert().values(**row))
            else:
                with self.write() as own:
                    own.execute(users.insert().values(**row))
        except IntegrityError:
            raise AuthError("duplicate_user", f"user {username} already exists") from None
        return user_id

    def authenticate(self, username: str, password: str) -> dict | None:
        """The user if the password is right, else None (the same work either way)."""
        with self.engine.connect() as conn:
            user = conn.execute(select(users).where(users.c.username == (username or ""))).mappings().first()
        ok = check_password_hash(user["password_hash"] if user else _DUMMY_HASH, password or "")
        return dict(user) if user and ok else None

    def user(self, user_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.id, users.c.username).where(users.c.id == user_id)).mappings().first()
        return dict(row) if row else None

    def has_users(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(users.c.id).limit(1)).first() is not None

    def setup_code(self) -> str | None:
        """A fresh one-time code that creates the first coordinator (the previous one stops
        working); None once an account exists. Only its hash is stored."""
        if self.has_users():
            return None
        code = auth.new_code()
        self.set_meta("setup_code_hash", auth.hash_code(code))
        return code

    def create_first_user(self, code: str, username: str, password: str) -> str:
        """Uses the set-up code, once, to create the first coordinator."""
        if self.has_users():
            raise AuthError("setup_done", "a coordinator already exists")
        expected = self.get_meta("setup_code_hash") or ""
        if not expected or not hmac.compare_digest(expected, auth.hash_code(code or "")):
            raise AuthError("bad_setup_code", "wrong set-up code")
        _check_account(username, password)  # a typo in the form does not spend the code
        with self.write() as conn:  # spent in the transaction that creates the account
            spent = conn.execute(delete(meta).where(meta.c.key == "setup_code_hash", meta.c.value == expected)
                                 .returning(meta.c.key)).first()
            if spent is None:
                raise AuthError("bad_setup_code", "wrong set-up code")
            return self.add_user(username, password, conn)

    # --- enrolment and authentication -----------------------------------------------------------

    def create_enrol_code(self, name: str | None = None, programs: list[str] | None = None,
                          hours: float = 24) -> str:
        """A one-time enrolment code, valid for `hours`; optionally limited to some programs."""
        code, now = auth.new_code(), now_utc()
        with self.write() as conn:
            conn.execute(enrol_codes.insert().values(
                code_hash=auth.hash_code(code), name=name, programs=_dump(programs) if programs else None,
                created_at=iso(now), expires_at=iso(now + timedelta(hours=hours))))
        return code

    def enrol(self, code: str, device_id: str, name: str | None = None) -> dict:
        """Exchanges a one-time code for a device secret; raises SyncError("bad_code")."""
        if not isinstance(device_id, str) or not 8 <= len(device_id) <= 64:
            raise SyncError("bad_request", "enrolment needs a device id")
        if device_id == self.server_id:
            raise SyncError("origin_mismatch", "a device cannot take the server's id")

        def work(conn):
            now = iso(now_utc())
            row = conn.execute(select(enrol_codes).where(enrol_codes.c.code_hash == auth.hash_code(code))
                               .with_for_update()).mappings().first()
            if row is None or row["used_at"] or row["expires_at"] < now:
                raise SyncError("bad_code", "this enrolment code is unknown, used or expired")
            conn.execute(update(enrol_codes).where(enrol_codes.c.code_hash == row["code_hash"])
                         .values(used_at=now, used_by=device_id))
            secret = auth.new_secret()
            values = dict(name=name or row["name"], secret=secret, programs=row["programs"],
                          enrolled_at=now, revoked_at=None)
            conn.execute(self.insert(devices).values(id=device_id, pushed=0, pulled=0, **values)
                         .on_conflict_do_update(index_elements=["id"], set_=values))
            conn.execute(self.insert(device_origins).values(origin=device_id, device_id=device_id)
                         .on_conflict_do_nothing(index_elements=["origin"]))
            return {"device_id": device_id, "secret": secret, "server_id": self.server_id,
                    "programs": json.loads(row["programs"]) if row["programs"] else None}
        return self._retrying(work)

    def revoke(self, device_id: str) -> bool:
        """Revokes a device: its signed requests are refused from now on."""
        with self.write() as conn:
            done = conn.execute(update(devices).where(devices.c.id == device_id)
                                .values(revoked_at=iso(now_utc())).returning(devices.c.id)).first()
        return done is not None

    def lookup(self, device_id: str):
        """(secret, revoked) of a device, or None: what `auth.verify` needs."""
        with self.engine.connect() as conn:
            row = conn.execute(select(devices.c.secret, devices.c.revoked_at)
                               .where(devices.c.id == device_id)).first()
        return (row[0], bool(row[1])) if row else None

    def remember_nonce(self, device_id: str, nonce: str) -> bool:
        """Stores a request nonce; False if this device used it before (a replay)."""
        with self.write() as conn:
            inserted = conn.execute(self.insert(nonces).values(device_id=device_id, nonce=nonce, seen_at=time.time())
                                    .on_conflict_do_nothing().returning(nonces.c.nonce)).first()
        return inserted is not None

    def prune_nonces(self) -> None:
        with self.write() as conn:
            conn.execute(delete(nonces).where(nonces.c.seen_at < time.time() - NONCE_DAYS * 86400))

    def device_programs(self, device_id: str) -> list[str] | None:
        """The programs a device may sync, or None for any."""
        with self.engine.connect() as conn:
            text = conn.execute(select(devices.c.programs).where(devices.c.id == device_id)).scalar()
        return json.loads(text) if text else None

    def check_program(self, device_id: str | None, program_id: str) -> None:
        allowed = self.device_programs(device_id) if device_id else None
        if allowed is not None and program_id not in allowed:
            raise SyncError("wrong_program", f"this device is not enrolled for program {program_id}")

    def record_contact(self, device_id: str, offset: float, origin: str | None = None,
                       synced: bool = False, pushed: int = 0, pulled: int = 0) -> None:
        """Notes a device's request: when, its clock offset, the origin it now writes as."""
        now = iso(now_utc())
        values = {"last_seen_at": now, "clock_offset_s": round(offset, 3),
                  "pushed": devices.c.pushed + pushed, "pulled": devices.c.pulled + pulled}
        if synced:
            values["last_sync_at"] = now
        with self.write() as conn:
            conn.execute(update(devices).where(devices.c.id == device_id).values(**values))
            if origin and origin != self.server_id:
                conn.execute(self.insert(device_origins).values(origin=origin, device_id=device_id)
                             .on_conflict_do_nothing(index_elements=["origin"]))

    def clock_offset(self, device_id: str) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(select(devices.c.clock_offset_s).where(devices.c.id == device_id)).scalar()

    # --- the change log ---------------------------------------------------------------------

    def vector(self, program_id: str, conn=None) -> dict[str, int]:
        """The central replica's version vector for a program."""
        query = select(vectors.c.origin, vectors.c.seq).where(vectors.c.program_id == program_id)
        if conn is not None:
            return dict(conn.execute(query).all())
        with self.engine.connect() as own:
            return dict(own.execute(query).all())

    def programs(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(vectors.c.program_id).distinct())]

    def push(self, program_id: str, batch: list[dict], pusher: str | None = None,
             source: str | None = None, before_commit=None, offset: float | None = None,
             nonce: str | None = None) -> dict[str, int]:
        """Applies a batch whole, in one transaction with its vector advance; returns the new vector.

        Changes already held are skipped if identical and refused ("origin_mismatch") if not; a
        change past the next expected seq of its origin refuses the batch ("seq_gap"). With a
        `nonce` (a signed request of `pusher`), the same transaction stores the nonce (a replay is
        refused) and checks the device is neither revoked nor outside its programs; a refused
        batch still leaves its nonce stored.
        """
        try:
            self._check_changes(program_id, batch, pusher)
            return self._retrying(lambda conn: self._apply(conn, program_id, batch, pusher, source, offset,
                                                           before_commit, nonce))
        except SyncError as exc:
            if nonce is not None and exc.reason != "replayed" and not self.remember_nonce(pusher, nonce):
                raise SyncError("replayed", "this request was already received") from None
            raise

    def _check_changes(self, program_id: str, batch: list[dict], pusher: str | None) -> None:
        for change in batch:
            try:
                validate(change)
            except ChangeError as exc:
                raise SyncError(exc.reason, str(exc)) from None
            if change["program_id"] != program_id:
                raise SyncError("wrong_program", "a change of another program in this batch")
            if change["origin"] == self.server_id and pusher is not None:
                raise SyncError("origin_mismatch", "a device cannot send changes in the server's name")

    def push_many(self, batches: list[tuple[str, list[dict]]], source: str) -> None:
        """Applies several batches (a USB bundle) in one transaction: all or nothing."""
        for program_id, batch in batches:
            self._check_changes(program_id, batch, None)

        def work(conn):
            for program_id, batch in batches:
                self._apply(conn, program_id, batch, None, source, None)
        self._retrying(work)

    def _apply(self, conn, program_id, batch, pusher, source, offset, before_commit=None,
               nonce=None) -> dict[str, int]:
        if nonce is not None:
            self._take_nonce(conn, pusher, nonce)
        if pusher:
            self._check_device(conn, pusher, program_id)
        by_origin: dict[str, list[dict]] = {}
        for change in batch:
            by_origin.setdefault(change["origin"], []).append(change)
        have = dict(conn.execute(
            select(vectors.c.origin, vectors.c.seq).where(vectors.c.program_id == program_id,
                                                          vectors.c.origin.in_(list(by_origin)))
            .with_for_update()).all())
        fresh, held = [], []
        for origin, group in by_origin.items():
            group.sort(key=_seq)
            new, old = _split_origin(origin, group, have.get(origin, 0))
            fresh += new
            held += old
        self._check_held(conn, program_id, held)
        if fresh:
            self._store(conn, program_id, fresh, pusher, source, offset)
        if pusher:
            now = iso(now_utc())
            conn.execute(update(devices).where(devices.c.id == pusher).values(
                last_seen_at=now, last_sync_at=now, pushed=devices.c.pushed + len(batch),
                **({"clock_offset_s": round(offset, 3)} if offset is not None else {})))
        if before_commit:
            before_commit()
        return self.vector(program_id, conn)

    def _take_nonce(self, conn, device_id: str, nonce: str) -> None:
        """Stores a request's nonce inside its transaction; refuses a replay."""
        inserted = conn.execute(self.insert(nonces).values(device_id=device_id, nonce=nonce, seen_at=time.time())
                                .on_conflict_do_nothing().returning(nonces.c.nonce)).first()
        if inserted is None:
            raise SyncError("replayed", "this request was already received")

    def _check_device(self, conn, device_id: str, program_id: str) -> None:
        """The pushing device is enrolled, not revoked, and allowed this program."""
        row = conn.execute(select(devices.c.revoked_at, devices.c.programs).where(devices.c.id == device_id)).first()
        if row is None:
            raise SyncError("unenrolled", f"device {device_id} is not enrolled here")
        if row[0]:
            raise SyncError("revoked_device", f"device {device_id} has been revoked")
        if row[1] and program_id not in json.loads(row[1]):
            raise SyncError("wrong_program", f"this device is not enrolled for program {program_id}")

    def _check_held(self, conn, program_id: str, held: list[dict]) -> None:
        """Changes we already hold must match: nobody rewrites an origin's history.

        One range query per origin loads the stored rows of the batch's (origin, seq) span.
        """
        if not held:
            return
        spans: dict[str, list[int]] = {}
        for change in held:
            span = spans.setdefault(change["origin"], [change["seq"], change["seq"]])
            span[0], span[1] = min(span[0], change["seq"]), max(span[1], change["seq"])
        stored = {}
        for origin, (low, high) in spans.items():
            rows = conn.execute(select(changes).where(
                changes.c.program_id == program_id, changes.c.origin == origin,
                changes.c.seq >= low, changes.c.seq <= high)).mappings()
            stored.update({(r["origin"], r["seq"]): r for r in rows})
        for change in held:
            row = stored.get((change["origin"], change["seq"]))
            if row is None or not _same_as_row(change, row):
                raise SyncError("origin_mismatch",
                                f"change {change['seq']} of {change['origin']} differs from the one already received")

    def _executemany(self, conn, key: str, build, rows: list[dict]) -> None:
        """Runs one INSERT statement for many rows of the same keys, compiled once per Storage.

        The statement `build()` makes is compiled for this database the first time; later calls
        hand the rows straight to the driver's executemany (psycopg pipelines it), which skips
        SQLAlchemy's per-row parameter processing. The bench's bulk-INSERT ceiling uses it too.
        """
        if not rows:
            return
        found = self._compiled.get(key)
        if found is None:
            compiled = build().compile(dialect=self.engine.dialect, column_keys=list(rows[0]))
            sql, order = compiled.string, compiled.positiontup
            if order is None:  # named parameters (psycopg): made positional, tuples are cheaper than dicts
                order = _NAMED_PARAM.findall(sql)
                sql = _NAMED_PARAM.sub("%s", sql)
            found = self._compiled[key] = (sql, tuple(order))
        sql, order = found
        conn.exec_driver_sql(sql, [tuple([row[k] for k in order]) for row in rows])

    def bulk_insert(self, conn, table, rows: list[dict]) -> None:
        """A plain bulk INSERT of rows into a table, the way the push path writes its rows."""
        self._executemany(conn, f"insert:{table.name}:{id(table)}", table.insert, rows)

    def _store(self, conn, program_id, fresh, pusher, source, offset) -> None:
        now = iso(now_utc())
        sender = source or pusher
        self._executemany(conn, "changes", changes.insert, [
            {"program_id": program_id, "origin": c["origin"], "seq": c["seq"], "entity": c["entity"],
             "entity_id": c["id"], "op": c["op"], "payload": _dump(c["payload"]), "hlc": c["hlc"],
             "received_at": now, "received_from": sender} for c in fresh])
        tops: dict[str, int] = {}
        for c in fresh:
            tops[c["origin"]] = max(tops.get(c["origin"], 0), c["seq"])

        def vector_upsert():
            stmt = self.insert(vectors)
            return stmt.on_conflict_do_update(index_elements=["program_id", "origin"], set_={"seq": stmt.excluded.seq},
                                              where=stmt.excluded.seq > vectors.c.seq)
        self._executemany(conn, "vectors", vector_upsert,
                          [{"program_id": program_id, "origin": o, "seq": s} for o, s in sorted(tops.items())])
        own = self._origins_of(conn, pusher) if pusher else set()
        self._materialize(conn, program_id, fresh, pusher or source, own, offset)

    def _origins_of(self, conn, device_id: str) -> set[str]:
        return {r[0] for r in conn.execute(select(device_origins.c.origin).where(device_origins.c.device_id == device_id))}

    def _materialize(self, conn, program_id, fresh, received_from, own_origins, offset) -> None:
        scan_rows, field_rows, firsts = {}, {}, {}
        for c in fresh:
            entity = c["entity"]
            if entity == "scans":
                if c["op"] == "upsert":
                    scan_rows[c["id"]] = _scan_row(c, received_from, offset if c["origin"] in own_origins else None)
                continue
            values = {"_deleted": True} if c["op"] == "delete" else c["payload"]
            kept = MATERIALIZED.get(entity, ())
            hlc = c["hlc"]
            for name, value in values.items():
                if name not in kept and name != "_deleted":
                    continue
                key = (entity, c["id"], name)
                if key not in field_rows or hlc > field_rows[key]["hlc"]:
                    field_rows[key] = {"entity": entity, "entity_id": c["id"], "field": name,
                                       "program_id": program_id, "value": _dump(value), "hlc": hlc}
        for row in scan_rows.values():
            if row["result"] == "checked_in" and (row["direction"] or "in") == "in" and row["participant_id"]:
                key = (row["participant_id"], row["session_id"])
                if key not in firsts or (row["at"], row["id"]) < (firsts[key]["first_at"], firsts[key]["first_scan_id"]):
                    firsts[key] = {"participant_id": key[0], "session_id": key[1], "program_id": program_id,
                                   "first_at": row["at"], "first_scan_id": row["id"]}
        self._upsert_fields(conn, [field_rows[k] for k in sorted(field_rows)])
        self._executemany(conn, "scans",
                          lambda: self.insert(scans).on_conflict_do_nothing(index_elements=["program_id", "id"]),
                          [scan_rows[k] for k in sorted(scan_rows)])

        def attendance_upsert():
            stmt = self.insert(attendance)
            return stmt.on_conflict_do_update(
                index_elements=["program_id", "participant_id", "session_id"],
                set_={"first_at": stmt.excluded.first_at, "first_scan_id": stmt.excluded.first_scan_id},
                where=stmt.excluded.first_at < attendance.c.first_at)
        self._executemany(conn, "attendance", attendance_upsert, [firsts[k] for k in sorted(firsts)])

    def _upsert_fields(self, conn, rows: list[dict]) -> None:
        def build():
            stmt = self.insert(fields)
            return stmt.on_conflict_do_update(
                index_elements=["program_id", "entity", "entity_id", "field"],
                set_={"value": stmt.excluded.value, "hlc": stmt.excluded.hlc},
                where=stmt.excluded.hlc > fields.c.hlc)
        self._executemany(conn, "fields", build, rows)

    def pull(self, program_id: str, theirs: dict[str, int], limit: int = 500) -> tuple[list[dict], bool]:
        """The changes a replica with vector `theirs` lacks, in HLC (causal) order; and whether more wait."""
        mine = self.vector(program_id)
        wanted = [(o, theirs.get(o, 0)) for o, s in mine.items() if s > theirs.get(o, 0)]
        if not wanted:
            return [], False
        clause = or_(*[and_(changes.c.origin == o, changes.c.seq > s) for o, s in wanted])
        query = (select(changes).where(changes.c.program_id == program_id, clause)
                 .order_by(changes.c.hlc, changes.c.origin, changes.c.seq).limit(limit + 1))
        with self.engine.connect() as conn:
            rows = [_change_from_row(r) for r in conn.execute(query).mappings()]
        return rows[:limit], len(rows) > limit

    # --- the central server as a device of its own -----------------------------------------------

    def originate(self, program_id: str, entity: str, entity_id: str, fields_: dict, op: str = "upsert") -> dict:
        """Writes a change in the central server's own name (roster updates made centrally)."""
        def work(conn):
            seq = self.vector(program_id, conn).get(self.server_id, 0) + 1
            latest = conn.execute(select(func.max(changes.c.hlc)).where(changes.c.program_id == program_id)).scalar()
            with self._clock_lock:
                if latest:
                    self._clock.observe(latest)
                stamp = self._clock.tick()
            base = dict(conn.execute(select(fields.c.field, fields.c.hlc).where(
                fields.c.program_id == program_id, fields.c.entity == entity, fields.c.entity_id == entity_id,
                fields.c.field.in_(list(fields_)))).all())
            payload = {**fields_, "_base": base} if base and entity != "scans" else dict(fields_)
            change = {"program_id": program_id, "origin": self.server_id, "seq": seq, "entity": entity,
                      "id": entity_id, "op": op, "payload": payload, "hlc": stamp}
            validate(change)
            self._store(conn, program_id, [change], None, "central", None)
            return change
        return self._retrying(work)

    # --- read side for dashboards and checks ---------------------------------------------------

    def entity_rows(self, program_id: str, entity: str) -> dict[str, dict]:
        """The current rows of an entity on central (deleted ones left out): id -> fields."""
        query = select(fields.c.entity_id, fields.c.field, fields.c.value).where(
            fields.c.program_id == program_id, fields.c.entity == entity)
        rows: dict[str, dict] = {}
        with self.engine.connect() as conn:
            for entity_id, name, value in conn.execute(query):
                rows.setdefault(entity_id, {})[name] = json.loads(value)
        return {k: v for k, v in rows.items() if not v.get("_deleted")}

    def program_key(self, program_id: str) -> str | None:
        return self.entity_rows(program_id, "programs").get(program_id, {}).get("signing_key")

    def scan_ids(self, program_id: str | None = None) -> list[str]:
        query = select(scans.c.id)
        if program_id:
            query = query.where(scans.c.program_id == program_id)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def attendance_count(self, program_id: str | None = None) -> int:
        query = select(func.count()).select_from(attendance)
        if program_id:
            query = query.where(attendance.c.program_id == program_id)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def attendance_by_session(self, program_id: str) -> dict[str, int]:
        query = (select(attendance.c.session_id, func.count()).where(attendance.c.program_id == program_id)
                 .group_by(attendance.c.session_id))
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def attendance_rows(self, program_id: str) -> list[dict]:
        """Every attendance of a program with how its first check-in came ("door" or "paper")."""
        query = (select(attendance.c.participant_id, attendance.c.session_id, attendance.c.first_at,
                        func.coalesce(scans.c.via, "door").label("via"))
                 .select_from(attendance.outerjoin(scans, and_(scans.c.program_id == attendance.c.program_id,
                                                               scans.c.id == attendance.c.first_scan_id)))
                 .where(attendance.c.program_id == program_id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def change_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(changes)).scalar_one()

    def device_list(self) -> list[dict]:
        flagged = (select(scans.c.received_from, func.count().label("n"))
                   .where(func.abs(scans.c.clock_offset_s) > SKEW_FLAG_SECONDS).group_by(scans.c.received_from))
        with self.engine.connect() as conn:
            counts = dict(conn.execute(flagged).all())
            rows = [dict(r) for r in conn.execute(select(devices).order_by(devices.c.enrolled_at)).mappings()]
        for row in rows:
            row.pop("secret")
            row["skewed"] = row["clock_offset_s"] is not None and abs(row["clock_offset_s"]) > SKEW_FLAG_SECONDS
            row["flagged_scans"] = counts.get(row["id"], 0)
        return rows

    def flagged_scans(self, program_id: str | None = None) -> list[dict]:
        """Scans uploaded by a device whose clock was off by more than 10 minutes."""
        query = select(scans).where(func.abs(scans.c.clock_offset_s) > SKEW_FLAG_SECONDS)
        if program_id:
            query = query.where(scans.c.program_id == program_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(scans.c.at)).mappings()]


def _split_origin(origin: str, group: list[dict], have: int) -> tuple[list[dict], list[dict]]:
    """One origin's changes of a batch cut into new ones (gap-free after `have`) and held ones."""
    new, held, expected = [], [], have + 1
    for change in group:
        if change["seq"] <= have:
            held.append(change)
        elif change["seq"] == expected:
            new.append(change)
            expected += 1
        elif change["seq"] < expected:
            if not same_change(change, new[change["seq"] - have - 1]):
                raise SyncError("origin_mismatch", f"two different changes {change['seq']} of {origin}")
        else:
            raise SyncError("seq_gap", f"change {change['seq']} from {origin} follows {expected - 1}")
    return new, held


def _check_account(username: str, password: str) -> None:
    """The same rules as a kiosk's accounts."""
    if not USERNAME.match(username or ""):
        raise AuthError("bad_username", "user name: 2–40 letters, digits, . _ -")
    if len(password or "") < 8:
        raise AuthError("weak_password", "password needs at least 8 characters")


def _seq(change: dict) -> int:
    return change["seq"]


def _same_as_row(change: dict, row) -> bool:
    """A change equals the stored row: compared as canonical text first, parsed only if it differs."""
    if (change["entity"], change["id"], change["op"], change["hlc"]) != (
            row["entity"], row["entity_id"], row["op"], row["hlc"]):
        return False
    return _dump(change["payload"]) == row["payload"] or change["payload"] == json.loads(row["payload"])


def _scan_row(change: dict, received_from, offset) -> dict:
    p = change["payload"]
    return {"id": change["id"], "program_id": change["program_id"], "participant_id": p.get("participant_id"),
            "session_id": p.get("session_id"), "result": p.get("result"), "direction": p.get("direction") or "in",
            "device_id": p.get("device_id"), "at": p.get("at"), "origin": change["origin"],
            "received_from": received_from, "clock_offset_s": offset, "via": p.get("via")}


def _change_from_row(row) -> dict:
    return {"program_id": row["program_id"], "origin": row["origin"], "seq": row["seq"], "entity": row["entity"],
            "id": row["entity_id"], "op": row["op"], "payload": json.loads(row["payload"]), "hlc": row["hlc"]}


def _transient(exc: DBAPIError) -> bool:
    """A lost race worth one more try: unique violation on a new origin, deadlock, busy SQLite."""
    text = str(exc.orig).lower()
    return isinstance(exc, IntegrityError) or any(
        word in text for word in ("deadlock", "locked", "busy", "serializ", "could not obtain lock"))
