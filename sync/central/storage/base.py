"""What every part of the central storage stands on: the engine, write transactions, retries on a
lost race, the meta table, and one compiled INSERT path for many rows."""

import threading
import time
from contextlib import contextmanager, nullcontext

from sqlalchemy import bindparam, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from kiosk.clock import HybridClock
from kiosk.trust import keys
from sync.central.storage.tables import (
    NAMED_PARAM,
    attendance,
    changes,
    fields,
    make_engine,
    meta,
    metadata,
    origin_keys,
    owners,
    scans,
    transient,
)

SIGNATURES = ("signatures", "checked-per-run")  # the meta row of a change log that keeps only checked ones


class Database:
    """The engine and the write discipline shared by accounts, devices, the change log and the read model."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        self._rekey_read_tables()
        fill_owners = "owners" not in inspect(self.engine).get_table_names()
        metadata.create_all(self.engine)
        self._add_missing_columns()
        if fill_owners:
            self._fill_owners()
        self.server_id = self._ensure_server_id()
        self._keep_checked_signatures()
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

    def _add_missing_columns(self) -> None:
        """Columns added to tables after a database was made (nullable, so ADD COLUMN suffices)."""
        found = inspect(self.engine)
        with self.write() as conn:
            for table in metadata.sorted_tables:
                have = {c["name"] for c in found.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in have:
                        kind = column.type.compile(dialect=self.engine.dialect)
                        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")

    def _fill_owners(self) -> None:
        """A database made before `owners` existed: every row id it holds, with its program."""
        with self.write() as conn:
            conn.execute(owners.insert().from_select(
                ["entity_id", "program_id"],
                select(fields.c.entity_id, func.min(fields.c.program_id)).group_by(fields.c.entity_id)))

    def _keep_checked_signatures(self) -> None:
        """A change log made before signatures were checked per run holds every signature
        a pusher sent, checked or not. Once, each origin's history is checked as one run - at its
        checkpoints and its end (`keys.vouching`) - and every other signature is dropped, so none
        that nobody checked is ever handed on (a bad one at a checkpoint is dropped too)."""
        with self.write() as conn:
            if conn.execute(select(meta.c.value).where(meta.c.key == SIGNATURES[0])).scalar() == SIGNATURES[1]:
                return
            public = dict(conn.execute(select(origin_keys.c.origin, origin_keys.c.public_key)).all())
            for program_id, origin in conn.execute(select(changes.c.program_id, changes.c.origin).distinct()).all():
                where = (changes.c.program_id == program_id, changes.c.origin == origin)
                rows = conn.execute(select(changes.c.seq, changes.c.entity, changes.c.entity_id, changes.c.op,
                                           changes.c.payload, changes.c.hlc, changes.c.sig)
                                    .where(*where).order_by(changes.c.seq)).mappings().all()
                kept = _checked_signatures(program_id, origin, rows, public.get(origin))
                conn.execute(update(changes).where(*where, changes.c.sig.is_not(None)).values(sig=None))
                if kept:
                    conn.execute(update(changes).where(*where, changes.c.seq == bindparam("at"))
                                 .values(sig=bindparam("kept")), kept)
            conn.execute(self.insert(meta).values(key=SIGNATURES[0], value=SIGNATURES[1])
                         .on_conflict_do_update(index_elements=["key"], set_={"value": SIGNATURES[1]}))

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
        """The server's origin id, derived from its signing key (a server made before keys gets a
        new id: its old changes stay under the old one)."""
        with self.write() as conn:
            found = dict(conn.execute(select(meta.c.key, meta.c.value)
                                      .where(meta.c.key.in_(["server_id", "server_key"]))).all())
            if found.get("server_key") and keys.origin_of(keys.public_hex(found["server_key"])) == found.get("server_id"):
                self.signer = keys.Signer(found["server_key"])
                return found["server_id"]
            server_id, private = keys.new_origin()
            for key, value in (("server_id", server_id), ("server_key", private)):
                conn.execute(self.insert(meta).values(key=key, value=value)
                             .on_conflict_do_update(index_elements=["key"], set_={"value": value}))
            self.signer = keys.Signer(private)
            conn.execute(self.insert(origin_keys).values(origin=server_id, public_key=self.signer.public_key)
                         .on_conflict_do_nothing(index_elements=["origin"]))
            return server_id

    def _retrying(self, work, attempts: int = 5):
        """Runs `work(conn)` in a transaction, again on a lost race (new origin, deadlock, busy)."""
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError) as exc:
                if attempt == attempts - 1 or not transient(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def get_meta(self, key: str):
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(self.insert(meta).values(key=key, value=value)
                         .on_conflict_do_update(index_elements=["key"], set_={"value": value}))

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
                order = NAMED_PARAM.findall(sql)
                sql = NAMED_PARAM.sub("%s", sql)
            found = self._compiled[key] = (sql, tuple(order))
        sql, order = found
        conn.exec_driver_sql(sql, [tuple([row[k] for k in order]) for row in rows])

    def bulk_insert(self, conn, table, rows: list[dict]) -> None:
        """A plain bulk INSERT of rows into a table, the way the push path writes its rows."""
        self._executemany(conn, f"insert:{table.name}:{id(table)}", table.insert, rows)



def _checked_signatures(program_id: str, origin: str, rows, public_key: str | None) -> list[dict]:
    """The signatures of one origin's stored history (rows in seq order) that check at its
    checkpoints and its end, as {"at": seq, "kept": sig}."""
    history = [{"program_id": program_id, "origin": origin, "seq": r["seq"], "entity": r["entity"],
                "id": r["entity_id"], "op": r["op"], "hlc": r["hlc"]} for r in rows]
    chain, kept = None, []
    for change, row, check in zip(history, rows, keys.vouching(history)):
        chain = keys.next_chain(chain, change, row["payload"])
        if check and public_key and keys.verify(public_key, chain, row["sig"]):
            kept.append({"at": row["seq"], "kept": row["sig"]})
    return kept
