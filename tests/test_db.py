"""The database helpers: the one write lock, and the group commit the door writes through."""

import os
import threading
import time
from pathlib import Path

import pytest

from kiosk.store import schema
from kiosk.store.db import Checkpointer, commit_together, connect, transaction, write_lock


@pytest.fixture
def table(db):
    db.execute("create table things (name text primary key)")
    return db


def _insert(name: str, pause: float = 0.0):
    """A job writing `name`; one whose name ends in 7 fails after writing."""
    def job(db):
        db.execute("insert into things values (?)", [name])
        time.sleep(pause)  # a write that takes a while, as an fsync does: others queue meanwhile
        if name.endswith("7"):
            raise ValueError("job failed after writing")
        return name
    return job


def _commit_from_threads(path: str, count: int, commit) -> list[str]:
    """`commit(name)` for n0..n<count-1>, each in a thread of its own. Checks that each job
    answered its own name and that the table holds exactly those; returns the names that failed."""
    answers, errors = {}, []

    def one(name):
        try:
            answers[name] = commit(name)
        except ValueError:
            errors.append(name)

    threads = [threading.Thread(target=one, args=(f"n{i}",)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = {r[0] for r in connect(path).execute("select name from things")}
    assert answers == {name: name for name in names}
    assert names == {f"n{i}" for i in range(count)} - set(errors)
    return sorted(errors)


def _own_connection(path: str):
    """A thread's own connection, as each server thread has (kiosk.db.get_db)."""
    return connect(path)


def test_jobs_from_many_threads_are_committed_and_a_failing_one_changes_nothing(table, data_dir):
    path = str(data_dir / "kiosk.db")
    failed = _commit_from_threads(path, 40, lambda name: commit_together(_own_connection(path), _insert(name)))
    assert failed == ["n17", "n27", "n37", "n7"]


def test_callers_with_their_own_connections_share_commits(table, data_dir):
    """The door's threads: whoever takes the lock commits every job queued meanwhile. Every job
    is answered, failures change nothing, and jobs share commits (counted on every connection)."""
    path = str(data_dir / "kiosk.db")
    commits, start = [], threading.Barrier(24)

    def commit(name):
        db = _own_connection(path)
        db.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        start.wait()
        return commit_together(db, _insert(name, pause=0.002))

    assert _commit_from_threads(path, 24, commit) == ["n17", "n7"]
    assert len(commits) < 24, commits  # some commits carried several jobs


def test_an_answered_job_is_already_visible_to_other_connections(table, data_dir):
    path = str(data_dir / "kiosk.db")
    commit_together(table, lambda db: db.execute("insert into things values ('seen')"))
    assert connect(path).execute("select count(*) from things").fetchone()[0] == 1


def test_a_lone_job_runs_at_once_on_the_callers_connection(table, data_dir):
    path = str(data_dir / "kiosk.db")
    seen = commit_together(table, lambda d: (d.execute("insert into things values ('x')"), d)[1])
    assert seen is table and not table.conn.in_transaction
    assert connect(path).execute("select count(*) from things").fetchone()[0] == 1


def test_a_lone_job_that_fails_leaves_nothing(table, data_dir):
    path = str(data_dir / "kiosk.db")

    def job(d):
        d.execute("insert into things values ('y')")
        raise ValueError("no")

    with pytest.raises(ValueError):
        commit_together(table, job)
    assert connect(path).execute("select count(*) from things").fetchone()[0] == 0


def test_a_job_inside_the_callers_transaction_is_a_savepoint_of_it(table, data_dir):
    path = str(data_dir / "kiosk.db")

    def failing(d):
        d.execute("insert into things values ('inner')")
        raise ValueError("no")

    with transaction(table):
        table.execute("insert into things values ('outer')")
        with pytest.raises(ValueError):
            commit_together(table, failing)
        commit_together(table, lambda d: d.execute("insert into things values ('kept')"))
    names = {r[0] for r in connect(path).execute("select name from things")}
    assert names == {"outer", "kept"}


def test_every_writer_takes_one_lock_however_the_path_is_spelt(table, data_dir, monkeypatch):
    """Plain transactions (edits, imports, sync) and the door's group commits share the lock."""
    monkeypatch.chdir(data_dir.parent)
    other = connect(f"{data_dir.name}/../{data_dir.name}/kiosk.db")
    assert write_lock(table) is write_lock(other)
    lock = write_lock(table)
    held = []
    with transaction(other):
        held.append(lock.locked())
    assert held == [True] and not lock.locked()


def test_the_checkpointer_takes_checkpoints_off_the_commits_and_copies_the_wal(table, data_dir):
    import os

    from kiosk.store.db import Checkpointer

    from support import wait_until

    path = str(data_dir / "kiosk.db")
    checkpointer = Checkpointer(path, interval=0.05).start()
    try:
        writer = connect(path)
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # commits leave it alone
        before = os.path.getsize(path)
        for i in range(300):
            writer.execute("insert into things values (?)", [f"{i:04d}" + "x" * 1000])
        # The database file grows only when a checkpoint copies pages into it from the WAL;
        # the writer, still open, never checkpoints itself.
        wait_until(lambda: os.path.getsize(path) >= before + 300 * 1000, 10, "the WAL copied into the database")
        assert connect(path).execute("select count(*) from things").fetchone()[0] == 300
        writer.close()
    finally:
        checkpointer.stop()
    assert connect(path).execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # back to SQLite's own


def test_the_wal_starts_over_while_the_door_keeps_writing_and_reading(table, data_dir, monkeypatch):
    """A PASSIVE checkpoint alone never let SQLite start the WAL over under a steady stream of
    commits and reads: the file grew without end. The checkpointer finishes the job."""
    path = str(data_dir / "kiosk.db")
    monkeypatch.setattr(Checkpointer, "RESTART_FRAMES", 100)
    restarts, checkpoint = [], Checkpointer.checkpoint
    monkeypatch.setattr(Checkpointer, "checkpoint", lambda self, db: restarts.append(checkpoint(self, db)) or restarts[-1])
    stop, wal = threading.Event(), Path(path + "-wal")
    sizes, written = [], [0]

    def write():
        writer = connect(path)
        while not stop.is_set():
            commit_together(writer, lambda db: db.execute("insert into things values (?)", [os.urandom(2000).hex()]))
            written[0] += 1

    def read():  # the door's reads: short lookups by key
        db = connect(path)
        while not stop.is_set():
            db.execute("select name from things where rowid = ?", [written[0]]).fetchone()

    checkpointer = Checkpointer(path, interval=0.05).start()
    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            sizes.append(wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
        checkpointer.stop()
    # A WAL that never starts over grows with every commit; the checkpointer starts it over once
    # it holds RESTART_FRAMES, as often as the readers let it (counted, not timed: how often depends
    # on how busy the machine is).
    assert sum(restarts) >= 2, (restarts, written[0], sizes)


def test_a_database_made_before_the_migrations_were_renamed_upgrades_and_keeps_everything(tmp_path):
    """tests/data/kiosk-027f149.db.gz was made by main at 027f149 (build_event, three check-ins),
    when migration names carried issue tags."""
    import gzip
    import shutil

    from kiosk.door.checkin import check_in
    from kiosk.store.db import open_data_dir

    source = Path(__file__).parent / "data" / "kiosk-027f149.db.gz"
    with gzip.open(source) as packed, open(tmp_path / "kiosk.db", "wb") as out:
        shutil.copyfileobj(packed, out)
    db = open_data_dir(tmp_path)
    names = [r[0] for r in db.execute("select name from _sqlite_migrations order by rowid")]
    assert names[:6] == ["0001_initial", "0002_reports", "0003_registration", "0004_signed_changes",
                         "0005_login_sessions", "0006_program_keys"]  # renamed, not run again
    assert len(names) == len(set(names))  # and the later ones run once
    assert schema.migrations.pending(db) == []  # every migration of today ran
    counts = {t: db[t].count for t in ("participants", "badges", "scans", "changes", "attendance", "users")}
    assert counts == {"participants": 4, "badges": 4, "scans": 3, "changes": 18, "attendance": 3, "users": 1}
    code = db.execute("select code from badges b join participants p on p.id = b.participant_id"
                      " where p.id not in (select participant_id from attendance) limit 1").fetchone()[0]
    session_id = db.execute("select id from sessions limit 1").fetchone()[0]
    assert check_in(db, code, session_id=session_id, at=_session_time(db, session_id)).status == "checked_in"
    open_data_dir(tmp_path)  # a second start applies nothing again
    assert [r[0] for r in db.execute("select name from _sqlite_migrations order by rowid")] == names


def _session_time(db, session_id):
    from datetime import datetime

    from kiosk.clock import LOCAL_ZONE

    day, opens = db.execute("select day, opens_at from sessions where id = ?", [session_id]).fetchone()
    return datetime.fromisoformat(f"{day}T{opens}").replace(tzinfo=LOCAL_ZONE)
