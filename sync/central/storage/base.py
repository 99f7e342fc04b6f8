"""What every part of the central storage stands on: the engine, the schema brought up to date at
start (Alembic, `sync.central.migrations`), write transactions, retries on a lost race, the meta
table, and one compiled INSERT path for many rows."""

import threading
import time
from contextlib import contextmanager, nullcontext

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.dml import Insert

from kiosk.clock import HybridClock
from kiosk.trust import keys
from sync.central import migrations
from sync.central.storage.projection import LostRace
from sync.central.storage.tables import NAMED_PARAM, make_engine, meta, origin_keys, transient

_ARRAY_TYPE = {"BigInteger": "bigint", "Integer": "bigint", "Float": "float8"}  # else text: assigned to its column
STARTUP_LOCK = 21_0001  # the advisory lock a PostgreSQL server's processes take to start one at a time


class Statements:
    """Compiled INSERTs for many rows on one database kind: what the projection and the change log write with."""

    def __init__(self, dialect):
        self.dialect = dialect.name
        self._sql_dialect = dialect
        self._compiled: dict = {}

    def insert(self, table):
        """The dialect's INSERT that knows ON CONFLICT."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def among(self, column, values):
        """`column IN values`; on PostgreSQL `= ANY(one array)`, whose text (and so its parse) is
        the same for any number of values."""
        if self.dialect == "postgresql":
            return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
        return column.in_(list(values))

    def _executemany(self, conn, key: str, build, rows: list[dict]) -> int | None:
        """Runs one statement for many rows of the same keys, compiled once per Storage; returns
        how many rows it changed (None when the driver does not say).

        The statement `build()` makes is compiled for this database the first time; later calls
        hand the rows straight to the driver, which skips SQLAlchemy's per-row parameter
        processing. On PostgreSQL an INSERT takes all its rows as one array per column
        (`INSERT … SELECT * FROM unnest(…)`): a statement per row costs the server a parse, a
        plan and a round of the pipeline each; the rows must then be distinct in their conflict
        key. SQLite takes executemany. The bench's bulk-INSERT ceiling uses it too.
        """
        if not rows:
            return 0
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._compile(build(), list(rows[0]))
        sql, order, arrays = found
        if arrays:
            return conn.exec_driver_sql(sql, tuple([row[k] for row in rows] for k in order)).rowcount
        done = conn.exec_driver_sql(sql, [tuple([row[k] for k in order]) for row in rows]).rowcount
        return done if done is not None and done >= 0 else None

    def _compile(self, statement, keys: list[str]) -> tuple[str, tuple, bool]:
        """(sql, parameter order, whether it takes one array per column) of a statement."""
        compiled = statement.compile(dialect=self._sql_dialect, column_keys=keys)
        sql, order = compiled.string, compiled.positiontup
        if order is None:  # named parameters (psycopg): made positional, tuples are cheaper than dicts
            order = NAMED_PARAM.findall(sql)
            sql = NAMED_PARAM.sub("%s", sql)
        start = sql.find(" VALUES (")
        if self.dialect != "postgresql" or not isinstance(statement, Insert) or start < 0:
            return sql, tuple(order), False
        depth, end = 0, start + len(" VALUES ")
        for end in range(end, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        table = statement.table
        arrays = ", ".join(f"%b::{_ARRAY_TYPE.get(type(table.c[k].type).__name__, 'text')}[]" for k in keys)
        return (f"INSERT INTO {table.name} ({', '.join(keys)}) SELECT * FROM unnest({arrays})" + sql[end + 1:],
                tuple(keys), True)

    def bulk_insert(self, conn, table, rows: list[dict]) -> None:
        """A plain bulk INSERT of rows into a table, the way the push path writes its rows."""
        self._executemany(conn, f"insert:{table.name}:{id(table)}", table.insert, rows)


class Database(Statements):
    """The engine and the write discipline shared by accounts, devices, the change log and the read model."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        super().__init__(self.engine.dialect)
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        with self.write() as conn:  # one process at a time brings the schema up and names the server
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({STARTUP_LOCK})")
            migrations.upgrade(conn)
            self.server_id = self._ensure_server_id(conn)
        self._clock = HybridClock(self.server_id)
        self._clock_lock = threading.Lock()

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

    def _ensure_server_id(self, conn) -> str:
        """The server's origin id, derived from its signing key (a server made before keys gets a
        new id: its old changes stay under the old one)."""
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

    def meta_once(self, key: str, make) -> str:
        """The meta value of `key`, made by `make()` by the first process that asks (every process
        of the server then reads the same one: the cookie key)."""
        with self.write() as conn:
            conn.execute(self.insert(meta).values(key=key, value=make()).on_conflict_do_nothing(index_elements=["key"]))
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def _retrying(self, work, attempts: int = 5):
        """Runs `work(conn)` in a transaction, again on a lost race (new origin, deadlock, busy)."""
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError, LostRace) as exc:
                if attempt == attempts - 1 or not (isinstance(exc, LostRace) or transient(exc)):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def get_meta(self, key: str):
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(self.insert(meta).values(key=key, value=value)
                         .on_conflict_do_update(index_elements=["key"], set_={"value": value}))
