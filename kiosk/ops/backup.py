"""Backups of the kiosk database: consistent snapshots, verified, rotated, restorable.

A backup is a snapshot taken with SQLite's online backup API inside one read transaction (never
a file copy of a live database): it holds exactly what was committed when it began, while
check-ins go on. It goes to `DATA/backups/` and, if the coordinator chose one, to a second folder
such as a USB stick. Each new file is verified (`PRAGMA integrity_check`, and that it opens as a
kiosk database) before older ones are pruned; a folder keeps the newest KEEP_RECENT and the
newest of each day. Files are 0600 and folders 0700, as private as the database; a backup holds
the kiosk database only (not the sync secrets, not the session key).

A backup written outside the data folder (the second folder, `kiosk backup --to` elsewhere) is
never in clear: it holds every name and phone, the program keys and the laptop's signing key. It
is sealed (`kiosk.ops.sealing`) under the laptop's recovery key, which the coordinator is shown
once to print; restoring it asks for that key. Without a recovery key, nothing is copied out.

`restore` refuses a file that is not a kiosk database or fails its check, builds a fresh
database from the rows of the tables and columns the kiosk knows (`kiosk.ops.rebuild`: a
trigger, view or unknown table in the file is dropped and named), keeps the current database
aside in `DATA/replaced/`, gives the restored copy a new device id (DESIGN.md "Sync": a restored
backup must not reuse its stream) and says what the restored copy lacks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kiosk.clock import LOCAL_ZONE, now_utc
from kiosk.errors import KioskError
from kiosk.ops import sealing
from kiosk.ops.rebuild import rebuild
from kiosk.ops.sealing import SealError
from kiosk.paths import FolderBusy, hold_folder, write_atomically
from kiosk.store.db import DB_NAME, connect, rotate_device_id

log = logging.getLogger("kiosk.backup")

BACKUP_DIR = "backups"
ASIDE_DIR = "replaced"
SETTINGS_FILE = "backup.json"
SECOND_SUBDIR = "attendance-kiosk-backups"  # inside the chosen second folder: prune touches nothing else
KEEP_RECENT = 24
# The newest backup of each day is kept this many days, no longer: how long a backup may outlive
# an erasure, as the privacy notice says (kiosk.people.privacy).
KEEP_DAYS = 30
INTERVAL_SECONDS = 15 * 60
PREFIX, SUFFIX = "kiosk-", ".db"
SEALED = ".sealed"  # a sealed backup is named kiosk-STAMP.db.sealed
STAMP = "%Y%m%dT%H%M%S.%fZ"
# What makes a file a kiosk database: these tables, and a device id in meta.
KIOSK_TABLES = frozenset({"meta", "programs", "participants", "badges", "scans", "attendance", "changes"})
# What restore compares: table -> the columns that identify a row.
COMPARED = {"participants": "id", "badges": "id", "sessions": "id", "scans": "id",
            "attendance": "participant_id, session_id"}


class BackupError(KioskError):
    """A backup that could not be made or trusted, or a file restore will not take."""


@dataclass(frozen=True)
class RestoreReport:
    """What `restore` did: the file now in use, where the old database went, what it lacks,
    and what of the backup file was left behind ("trigger NAME", "table NAME", …)."""

    source: Path
    aside: Path | None
    device_id: str
    lacks: dict = field(default_factory=dict)
    dropped: tuple[str, ...] = ()

    @property
    def lacks_anything(self) -> bool:
        return any(self.lacks.values())


# --- taking, verifying and pruning ---------------------------------------------------------------


def backup_dir(data_dir) -> Path:
    """The data folder's own backup folder (0700), created on first use."""
    return private_dir(Path(data_dir) / BACKUP_DIR)


def private_dir(folder: Path) -> Path:
    """The folder, created (only this account may enter it) if missing; an existing one is left as it is."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            folder.chmod(0o700)
        except OSError:  # a FAT-formatted USB stick has no modes: its files are as private as the stick
            pass
    return folder


def take_backup(data_dir, to: str | os.PathLike | None = None) -> list[Path]:
    """Snapshots the database, verifies it and prunes older backups; returns the new files.

    Without `to`, into the data folder's backups and the coordinator's second folder (if any);
    with `to`, into that folder only. A folder outside the data folder gets the backup sealed
    under the recovery key: with `to`, SealError("recovery_key_missing") if there is none yet; a
    second folder is then skipped (and the Health page says so). Raises BackupError if the
    snapshot fails its check (then nothing is pruned).
    """
    data_dir = Path(data_dir)
    second = second_folder(data_dir)
    folders = [Path(to)] if to else [backup_dir(data_dir), *([second / SECOND_SUBDIR] if second else [])]
    inside = [f for f in folders if inside_data_folder(f, data_dir)]
    key = sealing_key_of(data_dir)
    if to and not inside and key is None:
        raise SealError("recovery_key_missing", "make a recovery key first: kiosk recovery-key --new")
    name = PREFIX + now_utc().strftime(STAMP) + SUFFIX
    first = snapshot(data_dir / DB_NAME, private_dir(inside[0]) / name if inside else _unsealed_spot(data_dir))
    try:
        written = ([first] if inside else []) + _sealed_copies(first, name, [f for f in folders if f not in inside],
                                                                 key, strict=bool(to))
    finally:
        if not inside:
            first.unlink(missing_ok=True)
    for path in written:
        prune(path.parent)
    log.info("backup", extra={"act": "backup", "files": len(written), "sealed": len(written) - len(inside)})
    return written


def inside_data_folder(folder, data_dir) -> bool:
    """True if `folder` is the data folder or inside it (where a backup stays in clear)."""
    return Path(os.path.realpath(folder)).is_relative_to(os.path.realpath(data_dir))


def _unsealed_spot(data_dir: Path) -> Path:
    """Where a snapshot waits, in the data folder, to be sealed for a folder outside it."""
    fd, name = tempfile.mkstemp(prefix=".to-seal-", suffix=SUFFIX, dir=backup_dir(data_dir))
    os.close(fd)
    return Path(name)


def _sealed_copies(first: Path, name: str, folders: list[Path], key: bytes | None, strict: bool) -> list[Path]:
    """The snapshot sealed into each folder outside the data folder. A failure (a pulled stick, no
    recovery key yet) is logged and skipped, unless `strict` (the folder was asked for by name)."""
    written = []
    for folder in folders:
        try:
            if key is None:
                raise SealError("recovery_key_missing", "no recovery key: nothing is copied outside the data folder")
            written.append(_sealed_copy(first, private_dir(folder) / (name + SEALED), key))
            _drop_clear_backups(folder)
        except (OSError, KioskError) as exc:  # a pulled USB stick must not stop the local backups
            if strict:
                raise
            reason = exc.reason if isinstance(exc, KioskError) else "second_folder"
            log.warning("second backup folder failed", extra={"act": "backup", "reason": reason})
            log.debug("second backup folder error: %s", exc)
    return written


def _sealed_copy(source: Path, target: Path, key: bytes) -> Path:
    """`source` sealed into `target`, then read back whole and compared before it takes its name."""
    partial = target.with_name(target.name + ".partial")
    _create_private(partial)
    try:
        written = sealing.seal(source, partial, key)
        if sealing.opened_digest(partial, key) != written:
            raise BackupError("backup_damaged", f"{target.name} does not read back as written")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def _drop_clear_backups(folder: Path) -> None:
    """Backups an earlier release copied here in clear go once a sealed one is in place."""
    clear = [p for p in backups(folder) if not p.name.endswith(SEALED)]
    for path in clear:
        path.unlink(missing_ok=True)
    if clear:
        log.info("clear backups removed", extra={"act": "backup", "files": len(clear)})


def snapshot(source: Path, target: Path) -> Path:
    """A verified, self-contained (no WAL) copy of the database at `source`, written to `target`."""
    partial = target.with_name(target.name + ".partial")
    _create_private(partial)
    src, dst = sqlite3.connect(str(source), timeout=30), sqlite3.connect(str(partial))
    try:
        src.backup(dst)  # all pages in one step: one read transaction, one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    return _finish(partial, target)


def _create_private(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


def _finish(partial: Path, target: Path) -> Path:
    """Verifies a written file, flushes it to disk and gives it its final name (else deletes it)."""
    try:
        verify(partial)
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def verify(path: str | os.PathLike) -> None:
    """Raises BackupError unless `path` is an intact kiosk database.

    Reasons: `not_a_kiosk_database` (not SQLite, or SQLite without the kiosk's tables) and
    `backup_damaged` (truncated or corrupt: integrity_check fails).
    """
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise BackupError("not_a_kiosk_database", f"{path.name} is not an SQLite database")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchall()
            tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
            device = conn.execute("select value from meta where key = 'device_id'").fetchone() \
                if "meta" in tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError("backup_damaged", f"{path.name}: {exc}") from exc
    if check != [("ok",)]:
        raise BackupError("backup_damaged", f"{path.name}: integrity_check: {check[0][0]}")
    if not KIOSK_TABLES <= tables or not device:
        raise BackupError("not_a_kiosk_database", f"{path.name} is an SQLite file but not a kiosk database")


def backups(folder: Path) -> list[Path]:
    """The finished backups in a folder, sealed or not, oldest first."""
    if not folder.is_dir():
        return []
    found = [*folder.glob(PREFIX + "*" + SUFFIX), *folder.glob(PREFIX + "*" + SUFFIX + SEALED)]
    return sorted((p for p in found if _taken_at(p)), key=lambda p: p.name)


def _taken_at(path: Path) -> datetime | None:
    stamp = path.name[len(PREFIX):].removesuffix(SEALED).removesuffix(SUFFIX)
    try:
        return datetime.strptime(stamp, STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def prune(folder: Path, keep_recent: int = KEEP_RECENT) -> list[Path]:
    """Deletes the backups that are neither among the newest `keep_recent` nor the newest of their
    day, and every backup older than KEEP_DAYS whatever it is."""
    oldest = now_utc() - timedelta(days=KEEP_DAYS)
    found = [p for p in backups(folder) if _taken_at(p) >= oldest]
    keep = set(found[-keep_recent:])
    newest_of_day = {}
    for path in found:
        newest_of_day[_taken_at(path).astimezone(LOCAL_ZONE).date()] = path
    keep |= set(newest_of_day.values())
    found = backups(folder)
    gone = [p for p in found if p not in keep]
    stale = now_utc().timestamp() - 3600  # a copy cut short by a crash or a pulled stick
    gone += [p for pattern in (PREFIX + "*.partial", ".to-seal-*") for p in folder.glob(pattern)
             if p.stat().st_mtime < stale]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def drop_before(data_dir, moment: datetime) -> list[Path]:
    """Deletes every backup taken before `moment`, here and in the second folder: they hold people
    a retention date has erased."""
    folders = [Path(data_dir) / BACKUP_DIR, *([second] if (second := second_folder(data_dir)) else [])]
    gone = [p for folder in folders if folder.is_dir() for p in backups(folder) if _taken_at(p) < moment]
    for path in gone:
        path.unlink(missing_ok=True)
    if gone:
        log.info("backups dropped", extra={"act": "backup", "dropped": len(gone), "reason": "retention"})
    return gone


def last_backup(data_dir) -> dict | None:
    """The newest backup in the data folder: its path, time and size; None if there is none."""
    found = backups(Path(data_dir) / BACKUP_DIR)
    if not found:
        return None
    newest = found[-1]
    return {"path": newest, "at": _taken_at(newest), "bytes": newest.stat().st_size}


# --- the coordinator's second folder -------------------------------------------------------------


def _settings(data_dir) -> dict:
    path = Path(data_dir) / SETTINGS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _save_settings(data_dir, settings: dict) -> None:
    write_atomically(Path(data_dir) / SETTINGS_FILE, json.dumps(settings))  # 0600: it holds the sealing key


def second_folder(data_dir) -> Path | None:
    """The second backup folder the coordinator chose (a USB stick), or None."""
    chosen = _settings(data_dir).get("second_folder")
    return Path(chosen) if chosen else None


def set_second_folder(data_dir, folder: str | None) -> Path | None:
    """Chooses (or, with None or "", forgets) the second folder; it must exist and take a file."""
    chosen = None
    if folder and folder.strip():
        chosen = Path(folder.strip()).expanduser()
        if not chosen.is_absolute() or not chosen.is_dir() or not _writable(chosen):
            raise BackupError("backup_folder_unusable", f"cannot write backups into {chosen}")
    _save_settings(data_dir, {**_settings(data_dir), "second_folder": str(chosen) if chosen else None})
    return chosen


# --- the recovery key ------------------------------------------------------------------------------


def recovery_key(data_dir) -> dict | None:
    """The recovery key backups leaving this laptop are sealed with: {"id", "made_at"}; never the
    key itself (its digits are shown once, when it is made)."""
    kept = _settings(data_dir).get("recovery")
    return {"id": kept["id"], "made_at": kept["made_at"]} if kept else None


def make_recovery_key(data_dir) -> str:
    """A new recovery key for the backups that leave this laptop; its digits, to show once.
    Backups sealed before keep needing the key they were sealed with."""
    digits, key = sealing.new_recovery_key()
    _keep_sealing_key(data_dir, key)
    log.info("recovery key made", extra={"act": "backup", "key_id": sealing.key_id(key)})
    return digits


def sealing_key_of(data_dir) -> bytes | None:
    """The key this laptop seals backups with (derived from the recovery key), or None."""
    kept = _settings(data_dir).get("recovery")
    return bytes.fromhex(kept["key"]) if kept else None


def _keep_sealing_key(data_dir, key: bytes) -> None:
    recovery = {"id": sealing.key_id(key), "key": key.hex(), "made_at": now_utc().isoformat()}
    _save_settings(data_dir, {**_settings(data_dir), "recovery": recovery})


def _writable(folder: Path) -> bool:
    probe = folder / ".kiosk-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


def removable_folders() -> list[Path]:
    """Mounted removable media a coordinator may pick (Linux /media and /run/media)."""
    roots = [Path("/media"), Path("/run/media")]
    found = []
    for root in roots:
        for user_dir in (root.iterdir() if root.is_dir() else []):
            found.extend(p for p in (user_dir.iterdir() if user_dir.is_dir() else []) if p.is_dir())
    return sorted(found)


# --- restore -------------------------------------------------------------------------------------


def restore(data_dir, file: str | os.PathLike, recovery_key: str | None = None) -> RestoreReport:
    """Puts a backup in place of the current database (stop `kiosk serve` first).

    A sealed backup opens with the `recovery_key` it was sealed with (the printed digits); a data
    folder with no recovery key of its own then keeps that one for the backups it seals. The
    file is checked before anything changes; the current database is kept, as one file, in
    DATA/replaced/; the restored copy gets a new device id. The report says what the current
    database held that the restored one lacks.
    """
    data_dir, source = Path(data_dir), Path(file)
    try:
        lock = hold_folder(data_dir)
    except FolderBusy:
        raise BackupError("kiosk_running", f"a kiosk serves {data_dir} now: stop it first") from None
    try:
        return _restore(data_dir, source, recovery_key)
    finally:
        lock.close()


def _restore(data_dir: Path, source: Path, recovery_key: str | None) -> RestoreReport:
    current = data_dir / DB_NAME
    copied, incoming = data_dir / (DB_NAME + ".from-backup"), data_dir / (DB_NAME + ".restoring")
    try:
        _create_private(copied)
        key = _brought_in(source, copied, recovery_key)
        verify(copied)
        dropped = _rebuilt(copied, incoming)
        lacks = compare(current, incoming) if current.exists() else {}
        aside = _set_aside(data_dir, current) if current.exists() else None
    except BaseException:
        _remove(incoming)
        raise
    finally:
        _remove(copied)
    for suffix in ("-wal", "-shm"):  # the old WAL must never be replayed into the restored file
        Path(str(current) + suffix).unlink(missing_ok=True)
    os.replace(incoming, current)
    db = connect(current)
    try:
        device = rotate_device_id(db, data_dir)
    finally:
        db.close()
    if key is not None and sealing_key_of(data_dir) is None:
        _keep_sealing_key(data_dir, key)  # the coordinator's printed key stays the one to keep
    log.info("restore", extra={"act": "restore", "lacks": sum(lacks.values()), "dropped": len(dropped),
                               "dropped_kinds": sorted({d.split(" ", 1)[0] for d in dropped})})
    return RestoreReport(source, aside, device, lacks, dropped)


def _brought_in(source: Path, copied: Path, recovery_key: str | None) -> bytes | None:
    """The backup copied into the data folder, opened if it is sealed (the operator's file is
    never opened for writing); the sealing key that opened it, or None."""
    if not sealing.is_sealed(source):
        shutil.copyfile(source, copied)
        return None
    if not recovery_key:
        raise SealError("recovery_key_needed", f"{source.name} is sealed: give the recovery key printed for it")
    key = sealing.parse_recovery_key(recovery_key)
    sealing.unseal(source, copied, key)
    return key


def _rebuilt(copied: Path, incoming: Path) -> tuple[str, ...]:
    """A fresh database at `incoming` from the rows of the checked copy; what was dropped."""
    _remove(incoming)
    _create_private(incoming)
    try:
        dropped = rebuild(copied, incoming)
    except sqlite3.DatabaseError as exc:  # a file that passed its check but whose tables do not fit
        raise BackupError("not_a_kiosk_database", f"the backup's tables do not fit the kiosk's: {exc}") from exc
    verify(incoming)
    return dropped


def _remove(path: Path) -> None:
    """A working file of restore, with the WAL files a connection may have left beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _set_aside(data_dir: Path, current: Path) -> Path:
    target = private_dir(data_dir / ASIDE_DIR) / (PREFIX + now_utc().strftime(STAMP) + SUFFIX)
    return snapshot(current, target)


def compare(current: Path, restored: Path) -> dict[str, int]:
    """Rows of the current database the restored one lacks, per table, and changes of the log."""
    db = connect(current)
    try:
        db.execute("attach database ? as restored", [str(restored)])
        lacks = {}
        for table, key in COMPARED.items():
            lacks[table] = db.execute(
                f"select count(*) from main.{table} where ({key}) not in (select {key} from restored.{table})"
            ).fetchone()[0]
        lacks["changes"] = db.execute(
            "select count(*) from main.changes c where not exists (select 1 from restored.changes r"
            " where r.program_id = c.program_id and r.origin = c.origin and r.seq = c.seq)").fetchone()[0]
        db.execute("detach database restored")
    finally:
        db.close()
    return lacks


# --- while `kiosk serve` runs --------------------------------------------------------------------


class BackupScheduler:
    """A daemon thread of `kiosk serve`: a backup every `interval` seconds and after each session closes."""

    def __init__(self, data_dir, interval: float = INTERVAL_SECONDS, tick: float = 30):
        self.data_dir = Path(data_dir)
        self.interval, self.tick = interval, tick
        self._stop = threading.Event()
        self._checked = now_utc()
        self._thread: threading.Thread | None = None

    def start(self) -> "BackupScheduler":
        self._thread = threading.Thread(target=self._loop, name="kiosk-backup", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def due(self, now: datetime) -> bool:
        """A backup is due when the last is `interval` old (or missing), or a session closed since the last look."""
        last = last_backup(self.data_dir)
        if last is None or (now - last["at"]).total_seconds() >= self.interval:
            return True
        return self._session_closed(self._checked, now)

    def _session_closed(self, since: datetime, now: datetime) -> bool:
        from kiosk.program.events import sessions_on

        before, after = since.astimezone(LOCAL_ZONE), now.astimezone(LOCAL_ZONE)
        db = connect(self.data_dir / DB_NAME)
        try:
            today = sessions_on(db, after.date())
        finally:
            db.close()
        return any(before.strftime("%H:%M") < s["closes_at"] <= after.strftime("%H:%M")
                   for s in today if before.date() == after.date())

    def run_once(self) -> list[Path] | None:
        """One look: a backup if one is due; never raises (the thread must survive a bad disk)."""
        now = now_utc()
        try:
            return take_backup(self.data_dir) if self.due(now) else None
        except Exception:  # noqa: BLE001 - logged; the next look tries again
            log.exception("backup failed", extra={"act": "backup", "reason": "failed"})
            return None
        finally:
            self._checked = now

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.tick)
