"""The kiosk's SQLite database: connections, migrations, transactions, device identity."""

import collections
import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

import sqlite_utils

from kiosk.ops import disk
from kiosk.paths import make_private
from kiosk.store import schema
from kiosk.trust import keys

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
    # loss). Its cost, an fsync per commit, is shared by the scans of a group commit.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # What is deleted or overwritten is zeroed in the file too: an erased person's name must not
    # linger in free space (kiosk.people.privacy).
    conn.execute("PRAGMA secure_delete=ON")
    # A WAL once grown (a roster import in one transaction) is cut back when it starts over.
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    conn.execute("PRAGMA busy_timeout=30000")
    return sqlite_utils.Database(conn)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database):
    """One write transaction; nested calls become savepoints through `db.atomic()`.

    Every writer of this process takes the database file's write lock first (`write_lock`), then
    BEGIN IMMEDIATE: one regime for the door, registrations, edits, imports and sync. Another
    process (the CLI beside the server) is kept out by SQLite's own lock and its busy wait. The
    transaction is refused (KioskError "disk_full") when the disk is nearly full, before anything
    is written. While it lasts, `held_facts(db)` keeps what the transaction read and wrote.
    """
    if db.conn.in_transaction:
        try:
            with db.atomic():
                yield db
        except BaseException:
            forget_facts(db)  # the savepoint's writes are undone: so is what was kept of them
            raise
        return
    with write_lock(db):
        with _begun(db):
            yield db


@contextlib.contextmanager
def _begun(db: sqlite_utils.Database):
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error), with the write lock already held."""
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


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def write_lock(db: sqlite_utils.Database) -> threading.Lock:
    """The lock every writer of `db`'s file takes in this process, however the path is spelt.

    Left to SQLite alone, a waiting writer polls with sleeps of up to 100 ms (its busy handler),
    which at the door turns a 1 ms check-in into a 250 ms one whenever two writes meet; a mutex
    hands over the moment the writer before is done.
    """
    key = _real_path(db)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class _Pending:
    """A job waiting for a group commit, and its outcome once the commit is done."""

    __slots__ = ("job", "done", "value", "error")

    def __init__(self, job):
        self.job, self.done, self.value, self.error = job, False, None, None

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.value


_waiting: dict[str, collections.deque] = {}


def commit_together(db: sqlite_utils.Database, job):
    """Runs `job(db)` in a write transaction shared with the jobs of other threads that arrive
    meanwhile; returns (or raises) its result once it is committed.

    Inside a transaction of the caller's, the job is a savepoint of it. Otherwise every caller
    queues its job, then takes the write lock; whoever gets the lock commits every
    job queued so far in one transaction on its own connection, so the door's scans that meet
    share one fsync (synchronous=FULL) instead of queuing for one each. A caller that finds its
    job already done returns at once. If a job raises, each job of the batch runs again in a
    transaction of its own, so one failure undoes only its own writes. A job writes only to the
    database it is given, and may run twice.
    """
    if db.conn.in_transaction:  # inside the caller's transaction: a savepoint of it
        with transaction(db):
            return job(db)
    pending = _Pending(job)
    queue = _waiting.setdefault(_real_path(db), collections.deque())
    queue.append(pending)  # before the lock, so that its holder can take this job along
    with write_lock(db):  # the same lock as `transaction`: one regime for every writer
        if not pending.done:
            _commit_batch(db, [queue.popleft() for _ in range(len(queue))])
    return pending.outcome()


def _commit_batch(db, batch: list[_Pending]) -> None:
    try:
        with _begun(db):
            values = [entry.job(db) for entry in batch]
    except Exception:
        for entry in batch:
            _commit_alone(db, entry)
        return
    for entry, value in zip(batch, values):
        entry.value, entry.done = value, True


def _commit_alone(db, entry: _Pending) -> None:
    try:
        with _begun(db):
            entry.value = entry.job(db)
    except Exception as exc:  # the job's own failure (or the commit's): its writes are undone
        entry.error = exc
    entry.done = True


_erased_since_checkpoint = threading.Event()


def truncate_wal_soon() -> None:
    """Asks the Checkpointer to empty the WAL at its next look: a person's values were erased,
    and the WAL's older frames still hold them (without a Checkpointer, SQLite removes the WAL
    when the last connection closes)."""
    _erased_since_checkpoint.set()


class Checkpointer:
    """A daemon thread of `kiosk serve` that copies the WAL into the database every `interval` seconds.

    Left to SQLite, the commit that crosses 1,000 WAL pages copies them itself, with the write
    lock held and two more fsyncs, and every scan queued behind it waits. A PASSIVE checkpoint
    here makes no writer or reader wait, and it changes nothing about when a commit is durable:
    that is the WAL's fsync at COMMIT (synchronous=FULL).

    Under a steady stream of check-ins the WAL is rarely free of readers long enough to start
    over by itself, and would grow without end: `checkpoint` starts it over.
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
        an older part of it, so each try gives such readers a moment to end. After an erasure
        (`truncate_wal_soon`) the WAL is emptied instead, so that no frame keeps an erased value.
        """
        _, frames, _ = db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        erased = _erased_since_checkpoint.is_set()
        if frames < self.RESTART_FRAMES and not erased:
            return False
        mode = "TRUNCATE" if erased else "RESTART"
        with write_lock(db):
            for _ in range(self.RESTART_TRIES):
                busy, _, _ = db.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                if not busy:
                    if erased:
                        _erased_since_checkpoint.clear()
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


def _real_path(db: sqlite_utils.Database) -> str:
    """`database_path` with links resolved, the key of the file's write lock (asked once per connection)."""
    path = getattr(db, "_kiosk_real_path", None)
    if path is None:
        path = db._kiosk_real_path = os.path.realpath(database_path(db))
    return path


def migrate(db: sqlite_utils.Database) -> None:
    """Applies every pending migration."""
    schema.rename_applied(db)
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
    chosen, private = keys.new_origin()  # the id is derived from its signing key (kiosk.trust.keys)
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
# re-reads the schema and re-prepares every statement, which costs more than a check-in.
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
        db = g.pop("db", None)
        if db is not None and db.conn.in_transaction:
            db.conn.rollback()

    app.teardown_appcontext(close_db)
