"""The kiosk's SQLite database: connections, migrations, transactions, device identity."""

import contextlib
import functools
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no writer process, so no file lock either
    fcntl = None

import sqlite_utils

from kiosk import keys, schema
from kiosk.ops import disk
from kiosk.paths import make_private

DB_NAME = "kiosk.db"
DEVICE_FILE = "device_id"


WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Pages of WAL after which a committing connection checkpoints (SQLite's default), or 0 once
# `start_checkpointer` has handed checkpoints to a thread of their own (kiosk serve).
_autocheckpoint = 1000


def connect(path: str | Path) -> sqlite_utils.Database:
    """Opens the database in WAL mode with foreign keys on; statements autocommit unless in `transaction`."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    if _autocheckpoint != 1000:
        conn.execute(f"PRAGMA wal_autocheckpoint={int(_autocheckpoint)}")
    # FULL: every commit is fsynced before the writer answers, so a check-in the door was told is
    # saved survives a power cut too (NORMAL survives kill -9 but may lose the last commits on power
    # loss). Measured on this laptop class: +1.8 ms per commit, shared by a whole group commit.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # A WAL once grown (a roster import in one transaction) is cut back when it starts over.
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    conn.execute("PRAGMA busy_timeout=30000")
    return sqlite_utils.Database(conn)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database, *, room_checked: bool = False):
    """One write transaction; nested calls become savepoints through `db.atomic()`.

    The outer transaction starts with BEGIN IMMEDIATE so two writers queue on the lock instead
    of failing when a read transaction tries to upgrade. It is refused (KioskError "disk_full")
    when the disk is nearly full, before anything is written (`room_checked`: the caller has
    just asked). While it lasts, `held_facts(db)` keeps what the transaction read and wrote.
    """
    if db.conn.in_transaction:
        try:
            with db.atomic():
                yield db
        except BaseException:
            forget_facts(db)  # the savepoint's writes are undone: so is what was kept of them
            raise
        return
    if not room_checked:
        disk.ensure_room(database_path(db) or ".")
    db.execute("BEGIN IMMEDIATE")
    db._kiosk_facts = {}
    try:
        yield db
    except BaseException:
        db._kiosk_facts = None
        db.conn.rollback()
        raise
    db._kiosk_facts = None
    db.execute("COMMIT")


def held_facts(db: sqlite_utils.Database) -> dict | None:
    """What the current write transaction on `db` has read or written, for it to ask only once;
    None outside one.

    While a transaction holds SQLite's write lock no other connection can commit, so a value read
    in it changes only by the transaction's own writes, which keep it up to date (the device id,
    an origin's last change). A rolled-back savepoint forgets everything (`forget_facts`).
    """
    facts = getattr(db, "_kiosk_facts", None)
    return facts if facts is not None and db.conn.in_transaction else None


def remembered(db: sqlite_utils.Database, key, compute):
    """`compute()`, asked once per write transaction on `db` (`held_facts`); outside one, every time."""
    facts = held_facts(db)
    if facts is None:
        return compute()
    if key not in facts:
        facts[key] = compute()
    return facts[key]


def forget_facts(db: sqlite_utils.Database) -> None:
    """Drops what the current transaction kept: some of its writes were undone."""
    if getattr(db, "_kiosk_facts", None):
        db._kiosk_facts = {}


@functools.lru_cache(maxsize=64)
def _real_path(path: str) -> str:
    return os.path.realpath(path)


class _Answer:
    """A job's result, handed from the writer to the request waiting for it: a lock released once
    (a Future's condition cost three times as much per job)."""

    __slots__ = ("_ready", "_value", "_error")

    def __init__(self):
        self._ready = threading.Lock()
        self._ready.acquire()
        self._value = self._error = None

    def set_result(self, value) -> None:
        self._value = value
        self._ready.release()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._ready.release()

    def result(self):
        self._ready.acquire()
        if self._error is not None:
            raise self._error
        return self._value


class Job:
    """A write job that can cross to the door's writer process: `func(db, *args)`, with `func` a
    module-level function and `args` plain data (both pickled)."""

    __slots__ = ("func", "args")

    def __init__(self, func, args: tuple = ()):
        self.func, self.args = func, args

    def __call__(self, db):
        return self.func(db, *self.args)

    def __reduce__(self):
        return Job, (self.func, self.args)


class WriteLock:
    """One database file's write lock: a mutex for this process's threads and, once `shared`
    (the door's writer process runs), an exclusive `flock` on FILE-lock for the other process.

    A waiter on either wakes the moment the holder lets go, where SQLite's busy handler would
    poll with growing sleeps. A process that does not take it (the CLI beside the server) is
    still kept out by SQLite's own lock, as before.
    """

    def __init__(self, path: str):
        self.path = path + "-lock"
        self._mutex = threading.Lock()
        self._fd: int | None = None

    def share(self) -> None:
        """From now on also lock the file, for another process (the writer process) to see."""
        with self._mutex:  # not while a thread of ours holds the lock without the file's
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self, blocking: bool = True) -> bool:
        if not self._mutex.acquire(blocking):
            return False
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BaseException:
                self._mutex.release()
                if blocking:
                    raise
                return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def __enter__(self) -> "WriteLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class GroupCommitter:
    """One writer thread per database that commits the jobs queued meanwhile in one transaction.

    Request threads that each took the write lock in turn spent most of their time handing the
    lock and Python's GIL to one another; here they wait on a future while one thread writes.
    A job that raises leaves the others' writes alone (`_commit`). A job's answer is given only
    after the commit, so an answered request is on disk; a job may run twice, so it writes only
    to the database. The thread ends after a minute without work and is started again by the
    next job.
    """

    MAX_BATCH = 64
    IDLE_SECONDS = 60.0
    _all: dict[str, "GroupCommitter"] = {}
    _lock = threading.Lock()

    def __init__(self, path: str):
        self.path = path
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="kiosk-writer", daemon=True).start()

    _write_locks: dict[str, "WriteLock"] = {}
    # The door's writer process of a database, by real path, once it answers (kiosk.writer).
    processes: dict[str, object] = {}

    @classmethod
    def run(cls, path: str | Path, job, db: sqlite_utils.Database | None = None):
        """Runs `job(db)` in a write transaction on the database at `path`; returns (or raises) its result.

        Under `kiosk serve` a `Job` goes to the door's writer process (kiosk.writer), which batches
        what arrives together; a lone scan there waits about 0.1 ms more, and eight scanners get
        the other core. Otherwise, with `db` given and no other write under way, the job runs at
        once on that connection (a lone scan should not wait for a thread switch), or else it
        joins the writer thread's next batch. If the process is gone, the writer thread takes over.
        """
        process = cls.processes.get(_real_path(str(path))) if cls.processes else None
        sent = process is not None and isinstance(job, Job)
        if sent:
            answered, value = process.run(job)  # the process asks for room once a batch
            if answered:
                return value
        # Asked here, by the request's thread, so that the writer thread's batch spends no system
        # call on it (a let-go of the GIL that every request thread waits behind).
        disk.ensure_room(path)
        if not sent and db is not None:
            lock = cls._write_lock(str(path))
            if lock.acquire(blocking=False):
                try:
                    with transaction(db, room_checked=True):
                        return job(db)
                finally:
                    lock.release()
        done = _Answer()
        with cls._lock:  # so that an idle writer cannot leave between lookup and put
            writer = cls._all.get(str(path)) or cls._all.setdefault(str(path), cls(str(path)))
            writer._jobs.put((job, done))
        return done.result()

    @classmethod
    def _write_lock(cls, path: str) -> "WriteLock":
        key = _real_path(path)  # the app's configured path and SQLite's own may be spelt differently
        with cls._lock:
            found = cls._write_locks.get(key)
            if found is None:
                found = cls._write_locks[key] = WriteLock(key)
            return found

    @classmethod
    def write_lock(cls, db: sqlite_utils.Database) -> "WriteLock":
        """The lock every writer of `db`'s file takes in this process (and, under `kiosk serve`,
        the door's writer process too), batches of the writer thread included.

        Left to SQLite, a waiting writer polls with sleeps of up to 100 ms (its busy handler),
        which at the door turns a 1 ms check-in into a 250 ms one whenever two writes meet; a
        mutex hands over the moment the writer before is done.
        """
        return cls._write_lock(database_path(db))

    def _run(self) -> None:
        db = connect(self.path)
        lock = self._write_lock(self.path)
        try:
            while (batch := self._next_batch()) is not None:
                with lock:
                    self._commit(db, batch)
        finally:
            db.close()

    def _next_batch(self) -> list | None:
        """The jobs waiting now (at least one), or None when the writer has been idle long enough."""
        try:
            batch = [self._jobs.get(timeout=self.IDLE_SECONDS)]
        except queue.Empty:
            with self._lock:
                if self._jobs.empty():
                    del self._all[self.path]
                    return None
            batch = []
        while len(batch) < self.MAX_BATCH:
            try:
                batch.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        return batch

    @classmethod
    def _commit(cls, db, batch, room_checked: bool = True) -> None:
        """The batch in one transaction; if a job raises, each job again in a transaction of its own.

        A job that fails is rare (the door stores a refused scan and answers it, it does not
        raise), so jobs run without a savepoint each, which would cost two statements, and so
        two waits for the GIL, per job. With `room_checked` false the batch asks for disk room
        first (the door's writer process, one question a batch); refused, each job asks again
        on its own and is refused.
        """
        try:
            with transaction(db, room_checked=room_checked):
                answers = [(done, job(db)) for job, done in batch]
        except Exception:
            for job, done in batch:
                cls._alone(db, job, done)
            return
        for done, value in answers:
            done.set_result(value)

    @staticmethod
    def _alone(db, job, done) -> None:
        try:
            with transaction(db):
                value = job(db)
        except Exception as exc:  # the job's own failure (or the commit's): its writes are undone
            done.set_exception(exc)
        else:
            done.set_result(value)


class Checkpointer:
    """A daemon thread of `kiosk serve` that copies the WAL into the database every `interval` seconds.

    Left to SQLite, the commit that crosses 1,000 WAL pages copies them itself, with the write
    lock held and two more fsyncs: every few hundred check-ins, one batch and all the scans
    queued behind it waited 10-20 ms longer (the door's p99). A PASSIVE checkpoint here makes no
    writer or reader wait, and it changes nothing about when a commit is durable: that is the WAL's
    fsync at COMMIT (synchronous=FULL), as before.

    Under a steady stream of check-ins the WAL was never started over (`checkpoint`): it grew by
    about 5 MB a second (148 MB after a minute of the benchmark), every commit extending the file.
    """

    RESTART_FRAMES = 1000  # 4 MB of WAL: a second or two of a busy door
    RESTART_TRIES = 4

    def __init__(self, path: str | Path, interval: float = 1.0):
        self.path, self.interval = str(path), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kiosk-checkpoint", daemon=True)

    def start(self) -> "Checkpointer":
        global _autocheckpoint
        _autocheckpoint = 0  # connections opened from now on leave checkpoints to this thread
        self._thread.start()
        return self

    def stop(self) -> None:
        global _autocheckpoint
        _autocheckpoint = 1000
        self._stop.set()
        self._thread.join(10)

    def checkpoint(self, db) -> bool:
        """Copies the WAL into the database; True if the WAL then starts over.

        The copy runs beside the door. Only a WAL of RESTART_FRAMES or more is then started over,
        holding the in-process write lock: SQLite restarts a WAL only when no reader still reads
        an older part of it, and a door thread waiting for the GIL in the middle of a read
        holds its part for milliseconds, so each try gives such readers a moment to end.
        """
        _, frames, _ = db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < self.RESTART_FRAMES:
            return False
        with GroupCommitter._write_lock(self.path):
            for _ in range(self.RESTART_TRIES):
                busy, _, _ = db.conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                if not busy:
                    return True
                time.sleep(0.0005)
        return False

    def _loop(self) -> None:
        import logging

        db = connect(self.path)
        db.conn.execute("PRAGMA busy_timeout=0")  # a RESTART that would wait for readers gives up at once
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(db)
                except sqlite3.Error:
                    logging.getLogger("kiosk.db").warning("checkpoint failed", exc_info=True)
        finally:
            db.close()


def database_path(db: sqlite_utils.Database) -> str:
    """The file of `db`'s main database, as SQLite names it (asked once per connection)."""
    path = getattr(db, "_kiosk_path", None)
    if path is None:
        path = db._kiosk_path = db.execute("PRAGMA database_list").fetchone()[2]
    return path


def migrate(db: sqlite_utils.Database) -> None:
    """Applies every pending migration."""
    schema.migrations.apply(db)


def open_data_dir(data_dir: Path) -> sqlite_utils.Database:
    """Opens (creating if needed) the database of a data folder, migrated, with a checked device id."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    db = connect(Path(data_dir) / DB_NAME)
    migrate(db)
    ensure_device_id(db, Path(data_dir))
    make_private(data_dir)  # the database and its WAL files too, now that they exist
    return db


def device_id(db: sqlite_utils.Database) -> str:
    """This database's device id (asked once per write transaction)."""
    return remembered(db, "device_id",
                      lambda: db.execute("select value from meta where key = 'device_id'").fetchone()[0])


def ensure_device_id(db: sqlite_utils.Database, data_dir: Path) -> str:
    """Keeps the device id in the database and in a file beside it; mints a new one if they differ.

    A database restored from a backup or a cloned disk carries an old id whose sequence numbers
    the world has already seen past; a new id gives its future changes a fresh, unused stream.
    """
    marker = data_dir / DEVICE_FILE
    row = db.execute("select value from meta where key = 'device_id'").fetchone()
    stored = row[0] if row else None
    on_disk = marker.read_text().strip() if marker.exists() else None
    if stored and stored == on_disk and origin_key(db, stored):
        return stored
    return rotate_device_id(db, data_dir)


def origin_key(db: sqlite_utils.Database, origin: str) -> str | None:
    """The private signing key (hex) of one of this database's origins, or None."""
    row = db.execute("select value from meta where key = ?", ["origin_key:" + origin]).fetchone()
    return row[0] if row else None


def rotate_device_id(db: sqlite_utils.Database, data_dir: Path) -> str:
    """Mints a new device id for this database and writes it to the marker file.

    Also used by sync when a peer has seen more of our own stream than we hold: we are a
    restored backup, and must not reuse sequence numbers the world already has.
    """
    chosen, private = keys.new_origin()  # the id is derived from its signing key (kiosk.keys)
    with transaction(db):
        db.execute("insert or replace into meta (key, value) values ('device_id', ?)", [chosen])
        db.execute("insert into meta (key, value) values (?, ?)", ["origin_key:" + chosen, private])
        forget_facts(db)
    marker = Path(data_dir) / DEVICE_FILE
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(chosen)
    tmp.replace(marker)
    return chosen


# One connection per server thread, reused from request to request: a fresh SQLite connection
# re-reads the schema and re-prepares every statement, which costs more than a check-in
# (measured 3.9 ms per check-in with a new connection, 1.4 ms reused).
_held = threading.local()


def get_db() -> sqlite_utils.Database:
    """The request's database connection: this thread's, opened on first use."""
    from flask import current_app, g  # here, not at the top: the domain imports kiosk.db without Flask

    if "db" not in g:
        path = current_app.config["DATABASE"]
        held = getattr(_held, "db", None)
        if held is None or held[0] != path:
            if held is not None:
                held[1].close()
            held = _held.db = (path, connect(path))
        g.db = held[1]
    return g.db


def init_app(app) -> None:
    """Migrates the database and registers connection clean-up on the app."""
    from flask import g

    data = Path(app.config["DATA_DIR"])
    db = open_data_dir(data)
    app.config["DEVICE_ID"] = device_id(db)
    db.close()

    def close_db(_error=None) -> None:
        """Ends the request's use of its connection, rolling back anything it left open."""
        db = g._get_current_object().pop("db", None)  # not through the proxy: a µs on every request
        if db is not None and db.conn.in_transaction:
            db.conn.rollback()

    app.teardown_appcontext(close_db)
