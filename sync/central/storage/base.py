"""What every part of the central storage stands on: the engine, the schema brought up to date at
start (Alembic, `sync.central.migrations`), write transactions, retries on a lost race, the meta
table; its statements for many rows come from `statements`."""

import threading
import time
from contextlib import contextmanager, nullcontext

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from kiosk.clock import HybridClock
from kiosk.trust import keys
from sync.central import migrations
from sync.central.storage.projection import LostRace
from sync.central.storage.statements import Statements
from sync.central.storage.tables import make_engine, meta, origin_keys, transient

STARTUP_LOCK = 21_0001  # the advisory lock a PostgreSQL server's processes take to start one at a time


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
