"""Health checks of a venue laptop, explained for a coordinator: `kiosk doctor`, /health, /healthz.

Each check answers ok, warn or fail with a message (an English msgid with %(name)s fields,
translated where it is shown) and the figures behind it. Nothing here names a person.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from kiosk.clock import LOCAL_ZONE, local_day, now_utc, parse_iso
from kiosk.errors import N_
from kiosk.ops import backup, disk
from kiosk.store.db import DB_NAME, connect

OK, WARN, FAIL = "ok", "warn", "fail"
CLOCK_OFFSET_WARN_S = 120
BACKUP_WARN_S = 2 * backup.INTERVAL_SECONDS
SYNC_WARN_S = 6 * 3600
TITLES = {
    "database": N_("Database"), "disk": N_("Free disk space"), "shaping": N_("Thai text shaping and fonts"),
    "clock": N_("Clock"), "backup": N_("Last backup"), "sync": N_("Sync with the central server"),
    "keys": N_("Program keys"), "retention": N_("Personal data kept until"),
}


@dataclass(frozen=True)
class Check:
    """One check: `key`, `status` (ok | warn | fail), `message` (msgid) % `values`."""

    key: str
    status: str
    message: str
    values: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return TITLES[self.key]


def run_checks(data_dir, *, integrity: bool = True, now: datetime | None = None) -> list[Check]:
    """Every check, in the order a coordinator reads them."""
    import sync

    data_dir, now = Path(data_dir), now or now_utc()
    synced = sync.status(data_dir)
    return [database(data_dir, integrity), free_disk(data_dir), shaping(), clock(data_dir, now, synced),
            last_backup(data_dir, now), sync_state(synced, now), program_keys(data_dir), retention(data_dir)]


def overall(checks: list[Check]) -> str:
    """The worst status among the checks."""
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK


def database(data_dir: Path, integrity: bool = True) -> Check:
    """The database file's size and, with `integrity`, SQLite's integrity_check."""
    path = data_dir / DB_NAME
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    values = {"size": human_size(size)}
    if not path.exists():
        return Check("database", FAIL, N_("No database in the data folder."), values)
    if not integrity:
        return Check("database", OK, N_("%(size)s."), values)
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        result = str(exc)
    if result != "ok":
        return Check("database", FAIL, N_("The database is damaged (%(size)s): stop the kiosk and put the latest "
                                          "backup back with the command kiosk restore."), values)
    return Check("database", OK, N_("Intact, %(size)s."), values)


def free_disk(data_dir: Path) -> Check:
    """Free space where the data lives: a warning under 500 MB, writes refused under 64 MB."""
    free = disk.free_bytes(data_dir)
    values = {"free": human_size(free), "warn": human_size(disk.WARN_BYTES), "refuse": human_size(disk.REFUSE_BYTES)}
    if free < disk.REFUSE_BYTES:
        return Check("disk", FAIL, N_("Only %(free)s free: nothing more is saved until space is freed."), values)
    if free < disk.WARN_BYTES:
        return Check("disk", WARN, N_("Only %(free)s free (under %(warn)s): free some space soon. "
                                      "Below %(refuse)s the kiosk stops saving."), values)
    return Check("disk", OK, N_("%(free)s free."), values)


def raqm_available() -> bool:
    """Whether Pillow shapes Thai (Raqm layout with fribidi)."""
    from PIL import features

    return bool(features.check("raqm"))


def shaping() -> Check:
    """Raqm for Thai tone marks on badges, and the Sarabun font files."""
    from kiosk.badges.drawing import FONT_BOLD, FONT_REGULAR

    missing = [p.name for p in (FONT_REGULAR, FONT_BOLD) if not p.exists()]
    if not raqm_available():
        return Check("shaping", FAIL, N_("Badges would print Thai without its tone marks: a library for Thai "
                                         "text is missing. Run scripts/setup.sh (it installs libraqm0 and "
                                         "libfribidi0), then restart the kiosk."))
    if missing:
        return Check("shaping", FAIL, N_("Font files are missing: %(fonts)s. Reinstall the kiosk."),
                     {"fonts": ", ".join(missing)})
    return Check("shaping", OK, N_("Thai prints correctly on badges and papers, tone marks and all; the "
                                   "Sarabun font is installed."))


def clock(data_dir: Path, now: datetime, synced: dict) -> Check:
    """Today against the programs' dates, and this clock against the central server's at the last sync."""
    offset = synced["last_success"].get("clock_offset_s") if synced["last_success"] else None
    if offset is not None and abs(offset) > CLOCK_OFFSET_WARN_S:
        return Check("clock", WARN, N_("This laptop's clock was %(minutes)s minutes off the central server's "
                                       "at the last sync: set the date and time."),
                     {"minutes": round(abs(offset) / 60)})
    dates = _cohort_dates(data_dir)
    today = local_day(now)
    if dates and not any(start <= today <= end for start, end in dates):
        return Check("clock", WARN, N_("Today (%(today)s) is outside every cohort's dates: check the laptop's "
                                       "date, or the cohort's."), {"today": today.isoformat()})
    return Check("clock", OK, N_("The date is within the program's dates."), {"today": today.isoformat()})


def last_backup(data_dir: Path, now: datetime) -> Check:
    """How old the newest backup is; whether the second folder gets its sealed copies."""
    newest = backup.last_backup(data_dir)
    if backup.second_folder(data_dir) and backup.recovery_key(data_dir) is None:
        return Check("backup", WARN, N_("No recovery key yet, so no backup is copied to the second folder: make "
                                        "one on the Health page (save the folder again) and print it."))
    if newest is None:
        return Check("backup", WARN, N_("No backup yet. kiosk serve makes one every 15 minutes."))
    minutes = int((now - newest["at"]).total_seconds() // 60)
    values = {"minutes": minutes, "size": human_size(newest["bytes"])}
    if minutes * 60 > BACKUP_WARN_S:
        return Check("backup", WARN, N_("The last backup is %(minutes)s minutes old."), values)
    return Check("backup", OK, N_("%(minutes)s minutes ago (%(size)s)."), values)


def sync_state(state: dict, now: datetime) -> Check:
    """The last successful sync and the changes waiting to go (`state` is sync.status's)."""
    values = {"pending": state["pending"]}
    if not state["central_url"]:
        return Check("sync", WARN if state["pending"] else OK,
                     N_("Not enrolled with a central server; %(pending)s changes are kept only here "
                        "(and in the backups)."), values)
    last = state["last_success"]
    if not last:
        return Check("sync", WARN, N_("Never synced yet; %(pending)s changes waiting."), values)
    values["minutes"] = int((now - parse_iso(last["finished_at"])).total_seconds() // 60)
    values["hours"] = values["minutes"] // 60
    status = WARN if values["minutes"] * 60 > SYNC_WARN_S and state["pending"] else OK
    if values["hours"] >= 2:
        return Check("sync", status, N_("Last synced %(hours)s hours ago; %(pending)s changes waiting to be sent."),
                     values)
    return Check("sync", status, N_("Last synced %(minutes)s minutes ago; %(pending)s changes waiting to be sent."),
                 values)


def program_keys(data_dir: Path) -> Check:
    """Every program held here has its key: without it, its badges cannot be checked at the door."""
    path = data_dir / DB_NAME
    if not path.exists():
        return Check("keys", OK, N_("No program yet."))
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("select p.title from programs p where p.id not in (select program_id from program_keys)"
                            " order by p.title").fetchall()
    finally:
        conn.close()
    if rows:
        return Check("keys", FAIL, N_("No key for %(count)s program(s) (%(titles)s): their badges cannot be checked "
                                      "here. Sync with the central server, or type the key in with "
                                      "\"kiosk program key-add\"."),
                     {"count": len(rows), "titles": ", ".join(r[0] for r in rows)[:200]})
    return Check("keys", OK, N_("Every program held here has its key."))


def retention(data_dir: Path) -> Check:
    """When each program's people are erased (the privacy notice's promise), and whether a date has
    come that was not kept yet (kiosk serve keeps it at start and daily)."""
    from kiosk.people.privacy import retention_plan

    path = data_dir / DB_NAME
    if not path.exists():
        return Check("retention", OK, N_("No program yet."))
    db = connect(path)
    try:
        plans = [p for p in retention_plan(db) if p["date"] and p["people"]]
    finally:
        db.close()
    if not plans:
        return Check("retention", OK, N_("No personal data of a program with sessions is kept here."))
    due = [p for p in plans if p["due"]]
    first = min(plans, key=lambda p: p["date"])
    values = {"count": sum(p["people"] for p in (due or [first])), "title": (due or [first])[0]["title"][:80],
              "date": (due or [first])[0]["date"].isoformat()}
    if due:
        return Check("retention", WARN, N_("The retention date of %(title)s (%(date)s) has come: %(count)s people "
                                           "are erased when kiosk serve starts, or now with \"kiosk retention "
                                           "--now\"."), values)
    return Check("retention", OK, N_("Next erasure: the %(count)s people of %(title)s on %(date)s "
                                     "(\"kiosk retention\" lists every program)."), values)


def _cohort_dates(data_dir: Path) -> list[tuple[date, date]]:
    conn = sqlite3.connect(data_dir / DB_NAME)
    try:
        rows = conn.execute("select starts_on, ends_on from cohorts where starts_on is not null").fetchall()
    finally:
        conn.close()
    return [(date.fromisoformat(a), date.fromisoformat(b or a)) for a, b in rows]


def laptop_name() -> str:
    """This computer's name as people read it on a file (letters, digits and dashes only)."""
    import socket

    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-")[:40] or "kiosk"


def bundle_name(laptop: str, moment: datetime) -> str:
    """A USB bundle's file name that says where and when it was made: kiosk-LAPTOP-2026-12-07-1730.jsonl.gz."""
    return f"kiosk-{laptop}-{moment.astimezone(LOCAL_ZONE):%Y-%m-%d-%H%M}.jsonl.gz"


def human_size(size: int) -> str:
    """A size as people read it: '77 GB', '1.2 GB', '530 MB', 'under 1 MB'."""
    mb = size / (1024 * 1024)
    if mb < 1:
        return "< 1 MB"
    if mb < 1000:
        return f"{mb:.0f} MB"
    gb = mb / 1024
    return f"{gb:.1f} GB" if gb < 10 else f"{gb:.0f} GB"


def public_summary(checks: list[Check]) -> dict:
    """What /healthz shows: statuses only, no figure that could name anyone."""
    return {"ok": overall(checks) != FAIL, "status": overall(checks), "checks": {c.key: c.status for c in checks}}
