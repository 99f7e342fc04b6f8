"""Backups and restore: consistent snapshots under load, refusals that change nothing, a new identity."""

import re
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.cli.main import cli
from kiosk.door.checkin import check_in
from kiosk.ops import backup, sealing
from kiosk.ops.backup import BackupError
from kiosk.store.db import DB_NAME, DEVICE_FILE, connect, device_id

from support import KioskServer, build_event, free_port


def scan_ids(path):
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("select id from scans where result = 'checked_in'")}
    finally:
        conn.close()


def test_a_backup_taken_during_check_ins_holds_every_one_acknowledged_before_it(data_dir, db):
    people = build_event(db, open_now=True, extra_people=240)["people"]
    acknowledged, lock, stop = [], threading.Lock(), threading.Event()

    def door(share):
        conn = connect(data_dir / DB_NAME)
        for person in share:
            if stop.is_set():
                break
            result = check_in(conn, person["code"])
            with lock:
                acknowledged.append(result.scan_id)
        conn.close()

    threads = [threading.Thread(target=door, args=(people[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    while len(acknowledged) < 60:
        threading.Event().wait(0.005)
    with lock:
        before = list(acknowledged)
    [path] = backup.take_backup(data_dir)
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) > len(before), "check-ins must go on while the backup runs"
    conn = sqlite3.connect(path)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert set(before) <= scan_ids(path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700


def test_restore_refuses_a_truncated_file_and_leaves_the_current_database_untouched(data_dir, db, tmp_path):
    event = build_event(db, open_now=True)
    [good] = backup.take_backup(data_dir)
    check_in(db, event["people"][0]["code"])
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    before = scan_ids(data_dir / DB_NAME)
    with pytest.raises(BackupError) as caught:
        backup.restore(data_dir, truncated)
    assert caught.value.reason == "backup_damaged"
    assert scan_ids(data_dir / DB_NAME) == before and len(before) == 1
    assert not (data_dir / backup.ASIDE_DIR).exists()
    assert not list(data_dir.glob("*.restoring"))


def test_restore_refuses_an_sqlite_file_that_is_not_a_kiosk_database(data_dir, db, tmp_path):
    build_event(db, open_now=True)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table notes (text)")
    conn.commit()
    conn.close()
    identity = device_id(db)
    with pytest.raises(BackupError) as caught:
        backup.restore(data_dir, other)
    assert caught.value.reason == "not_a_kiosk_database"
    not_sqlite = tmp_path / "roster.csv"
    not_sqlite.write_text("ชื่อ,นามสกุล\nสมชาย,ใจดี\n")
    with pytest.raises(BackupError) as caught:
        backup.restore(data_dir, not_sqlite)
    assert caught.value.reason == "not_a_kiosk_database"
    assert device_id(db) == identity and db.execute("select count(*) from participants").fetchone()[0] == 4


def test_restore_keeps_the_current_database_aside_and_gives_a_new_device_id(data_dir, db):
    people = build_event(db, open_now=True)["people"]
    check_in(db, people[0]["code"])
    [path] = backup.take_backup(data_dir)
    later = [check_in(db, p["code"]).scan_id for p in people[1:3]]
    old_identity = device_id(db)
    db.close()

    report = backup.restore(data_dir, path)

    assert report.device_id != old_identity
    assert (data_dir / DEVICE_FILE).read_text() == report.device_id
    assert report.lacks["scans"] == 2 and report.lacks["attendance"] == 2 and report.lacks["changes"] == 2
    assert report.lacks["participants"] == 0
    assert set(later) <= scan_ids(report.aside)  # nothing is lost: the replaced database is kept
    restored = connect(data_dir / DB_NAME)
    assert device_id(restored) == report.device_id
    assert not set(later) & scan_ids(data_dir / DB_NAME)
    assert restored.execute("pragma integrity_check").fetchone()[0] == "ok"
    restored.close()


def test_restore_refuses_while_the_kiosk_serves_and_works_once_it_is_stopped_even_by_kill(data_dir, db):
    people = build_event(db, open_now=True)["people"]
    [path] = backup.take_backup(data_dir)
    check_in(db, people[0]["code"])
    db.close()
    before = (data_dir / DB_NAME).read_bytes()
    server = KioskServer(data_dir)
    server.start()
    try:
        with pytest.raises(BackupError) as refused:
            backup.restore(data_dir, path)
        assert refused.value.reason == "kiosk_running"
        assert (data_dir / DB_NAME).read_bytes() == before and not (data_dir / "replaced").exists()
        second = subprocess.run([sys.executable, "-c", "from kiosk.cli.main import main; main()", "--data", str(data_dir),
                                 "serve", "--port", str(free_port())], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already serves" in second.stderr  # one server per data folder
    finally:
        server.kill()  # SIGKILL: the operating system lets go of the lock with the process
    assert backup.restore(data_dir, path).lacks["scans"] == 1


def test_the_restored_copy_writes_a_new_stream(data_dir, db):
    people = build_event(db, open_now=True)["people"]
    [path] = backup.take_backup(data_dir)
    old_identity = device_id(db)
    db.close()
    backup.restore(data_dir, path)
    restored = connect(data_dir / DB_NAME)
    result = check_in(restored, people[0]["code"])
    origin = restored.execute("select origin from changes where entity = 'scans' and entity_id = ?",
                              [result.scan_id]).fetchone()[0]
    assert origin == device_id(restored) != old_identity
    restored.close()


def test_pruning_keeps_the_last_24_and_the_newest_of_each_day(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    start = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)  # 08:00 in Bangkok
    names = []
    for i in range(60):  # hourly from 08:00 on 20 November (venue time) to 19:00 on the 22nd
        moment = start + timedelta(hours=i)
        name = backup.PREFIX + moment.strftime(backup.STAMP) + backup.SUFFIX
        (folder / name).write_bytes(b"")
        names.append(name)
    gone = backup.prune(folder)
    kept = sorted(p.name for p in backup.backups(folder))
    # the last 24 reach back to 20:00 on the 21st (venue time); the 20th keeps its newest, 23:00
    assert kept == sorted({*names[-24:], "kiosk-20261120T160000.000000Z.db"})
    assert len(gone) == 60 - len(kept)


def test_a_backup_that_fails_its_check_prunes_nothing(data_dir, db, monkeypatch):
    build_event(db, open_now=True)
    backup.take_backup(data_dir)
    monkeypatch.setattr(backup, "verify", lambda path: (_ for _ in ()).throw(BackupError("backup_damaged")))
    with pytest.raises(BackupError):
        backup.take_backup(data_dir)
    assert len(backup.backups(data_dir / backup.BACKUP_DIR)) == 1
    assert not list((data_dir / backup.BACKUP_DIR).glob("*.partial"))


def test_the_second_folder_must_exist_and_then_gets_every_backup(data_dir, db, tmp_path):
    build_event(db, open_now=True)
    with pytest.raises(BackupError) as caught:
        backup.set_second_folder(data_dir, str(tmp_path / "no-usb-stick"))
    assert caught.value.reason == "backup_folder_unusable"
    usb = tmp_path / "usb"
    usb.mkdir()
    backup.set_second_folder(data_dir, str(usb))
    digits = backup.make_recovery_key(data_dir)  # what the Health page does when the folder is chosen
    local, copy = backup.take_backup(data_dir)
    assert copy.parent == usb / backup.SECOND_SUBDIR
    assert b"".join(sealing.chunks(copy, sealing.parse_recovery_key(digits))) == local.read_bytes()
    backup.set_second_folder(data_dir, "")
    assert len(backup.take_backup(data_dir)) == 1


def test_a_session_closing_makes_a_backup_due(data_dir, db):
    from kiosk.clock import local_day
    from kiosk.store import changes

    event = build_event(db, open_now=True)
    changes.write(db, event["program_id"], "sessions", event["session_id"], {"closes_at": "12:00"})
    today = local_day().isoformat()
    scheduler = backup.BackupScheduler(data_dir)
    [path] = backup.take_backup(data_dir)
    taken = backup.last_backup(data_dir)["at"]

    def venue(hhmm):
        return datetime.fromisoformat(f"{today}T{hhmm}").replace(tzinfo=backup.LOCAL_ZONE)

    assert scheduler._session_closed(venue("11:59"), venue("12:01"))
    assert not scheduler._session_closed(venue("12:00"), venue("12:10"))
    scheduler._checked = taken
    assert not scheduler.due(taken + timedelta(minutes=14))
    assert scheduler.due(taken + timedelta(minutes=15))


def test_kiosk_backup_and_restore_from_the_command_line(data_dir, db, tmp_path):
    from click.testing import CliRunner

    build_event(db, open_now=True)
    runner = CliRunner()
    out = tmp_path / "stick"
    made = runner.invoke(cli, ["--data", str(data_dir), "backup", "--to", str(out)])
    assert made.exit_code == 0, made.output
    [digits] = re.findall(r"\d{6}(?:-\d{6}){7}", made.output)  # outside the data folder: sealed
    [path] = backup.backups(out)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all")
    refused = runner.invoke(cli, ["--data", str(data_dir), "restore", str(junk)])
    assert refused.exit_code != 0 and "not_a_kiosk_database" in refused.output
    db.close()
    done = runner.invoke(cli, ["--data", str(data_dir), "restore", str(path), "--recovery-key", digits])
    assert done.exit_code == 0, done.output
    assert "new device id" in done.output and "lacks nothing" in done.output


# --- a crafted backup (issue 20, finding 11) ------------------------------------------------------

def _craft(good, crafted):
    """A copy of a genuine backup with SQL of its own: a trigger that promotes the door's staff
    account at the next scan, a view, a table and a column the kiosk does not know, an index."""
    import shutil

    shutil.copyfile(good, crafted)
    conn = sqlite3.connect(crafted)
    conn.executescript("""
        create trigger promote after insert on scans
            begin update users set role = 'coordinator' where username = 'door'; end;
        create view everyone as select first_name, phone from participants;
        create table loot (what text);
        insert into loot values ('names');
        alter table participants add column secret_note text;
        create index strange on participants(phone, first_name);
    """)
    conn.commit()
    conn.close()


def test_restore_builds_a_fresh_database_and_drops_what_a_crafted_backup_brings(data_dir, db, tmp_path):
    from kiosk.trust import accounts as auth

    people = build_event(db, open_now=True)["people"]
    auth.add_user(db, "door", "staff", "password123")
    [good] = backup.take_backup(data_dir)
    crafted = tmp_path / "crafted.db"
    _craft(good, crafted)
    db.close()

    report = backup.restore(data_dir, crafted)

    assert sorted(report.dropped) == ["column participants.secret_note", "index strange", "table loot",
                                      "trigger promote", "view everyone"]
    restored = connect(data_dir / DB_NAME)
    assert check_in(restored, people[0]["code"]).status == "checked_in"
    assert restored.execute("select role from users where username = 'door'").fetchone()[0] == "staff"
    kinds = {r[0] for r in restored.execute("select type from sqlite_master")}
    assert not kinds & {"trigger", "view"} and "loot" not in restored.table_names()
    assert "secret_note" not in {c.name for c in restored["participants"].columns}
    assert restored.execute("select count(*) from participants").fetchone()[0] == len(people)
    assert restored.execute("pragma integrity_check").fetchone()[0] == "ok"
    restored.close()


def test_the_command_line_says_what_a_restore_dropped(data_dir, db, tmp_path):
    from click.testing import CliRunner

    build_event(db, open_now=True)
    [good] = backup.take_backup(data_dir)
    crafted = tmp_path / "crafted.db"
    _craft(good, crafted)
    db.close()
    done = CliRunner().invoke(cli, ["--data", str(data_dir), "restore", str(crafted)])
    assert done.exit_code == 0, done.output
    assert "dropped" in done.output and "trigger promote" in done.output and "table loot" in done.output
    from kiosk.ops import log

    log.shutdown()  # the queued lines reach the file
    [line] = [entry for entry in log.tail(data_dir) if entry.get("act") == "restore"]
    assert line["dropped"] == 5 and line["dropped_kinds"] == ["column", "index", "table", "trigger", "view"]


def test_a_backup_made_by_an_older_release_restores_whole(data_dir, db, tmp_path):
    """tests/data/kiosk-027f149.db.gz: a database of an older release (migrations named with
    issue tags); restored, it holds every row and takes a scan."""
    import gzip
    import shutil
    from pathlib import Path

    db.close()
    old = tmp_path / "old-backup.db"
    with gzip.open(Path(__file__).parent / "data" / "kiosk-027f149.db.gz") as packed, open(old, "wb") as out:
        shutil.copyfileobj(packed, out)
    report = backup.restore(data_dir, old)
    assert report.dropped == ()
    restored = connect(data_dir / DB_NAME)
    counts = {t: restored[t].count for t in ("participants", "badges", "scans", "changes", "attendance", "users")}
    assert counts == {"participants": 4, "badges": 4, "scans": 3, "changes": 18, "attendance": 3, "users": 1}
    assert restored.execute("select count(*) from program_keys").fetchone()[0] == 1
    restored.close()
