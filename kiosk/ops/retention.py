"""The retention dates kept by themselves: at start and then daily, every program whose date has
come has its people erased on this laptop (kiosk.people.privacy.apply_retention), with no network,
and the backups taken before go with them."""

import logging
import threading
from collections.abc import Callable
from datetime import date

from kiosk.clock import local_day, now_utc
from kiosk.ops import backup
from kiosk.people import privacy
from kiosk.store.db import DB_NAME, connect

log = logging.getLogger("kiosk.retention")


def keep_retention(data_dir, today: date | None = None) -> int:
    """One look: erases the people of every program due; then the backups that still hold them
    go, and a fresh backup is taken. Returns how many people were erased."""
    started = now_utc()
    db = connect(data_dir / DB_NAME)
    try:
        erased = privacy.apply_retention(db, today)
        if erased:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # nothing of them left in the WAL either
    finally:
        db.close()
    if erased:
        backup.drop_before(data_dir, started)
        backup.take_backup(data_dir)
    return erased


class RetentionScheduler:
    """A daemon thread: `keep(today)` at start and whenever the venue's day changes (`kiosk serve`
    keeps this laptop's dates with `keep_retention`; `kiosk-central serve` its own)."""

    def __init__(self, keep: Callable[[date], int], tick: float = 600):
        self.keep, self.tick = keep, tick
        self._stop = threading.Event()
        self._done_for: date | None = None

    def start(self) -> "RetentionScheduler":
        threading.Thread(target=self._loop, name="kiosk-retention", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> None:
        """Keeps the retention dates once a day; never raises (the thread must live on)."""
        today = local_day()
        if self._done_for == today:
            return
        try:
            self.keep(today)
            self._done_for = today
        except Exception:
            log.exception("retention failed", extra={"act": "retention", "reason": "failed"})

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.tick)
