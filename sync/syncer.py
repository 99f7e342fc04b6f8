"""The background syncer of `kiosk serve`, and the sync status the coordinator's page shows."""

import logging
import threading
from pathlib import Path

import requests

from kiosk.store import changes
from kiosk.store.db import DB_NAME, connect
from sync.client import sync_once
from sync.protocol import SyncError
from sync.state import SyncState

log = logging.getLogger(__name__)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def sync_lock(data_dir) -> threading.Lock:
    """One sync at a time per data folder in this process (the thread and the "sync now" button)."""
    key = str(Path(data_dir).resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def sync_now(data_dir, url: str | None = None) -> dict:
    """One sync with the central server (or `url`), waiting for a running one to finish first."""
    with sync_lock(data_dir):
        return sync_once(data_dir, url=url)


class Syncer:
    """A daemon thread that syncs with the central server every `interval` seconds once one is
    enrolled, backing off (doubling, up to `max_backoff`) while it is unreachable.

    Safe beside requests: it uses its own connections, and the kiosk database serializes writers.
    """

    def __init__(self, app_or_data_dir, interval: float = 60, max_backoff: float = 900):
        config = getattr(app_or_data_dir, "config", None)
        self.data_dir = Path(config["DATA_DIR"] if config is not None else app_or_data_dir)
        self.interval, self.max_backoff = interval, max_backoff
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Syncer":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="kiosk-syncer", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Sync as soon as possible (after a "sync now" click, or when the network returns)."""
        self._wake.set()

    def next_wait(self) -> float:
        if not self.failures:
            return self.interval
        return min(self.max_backoff, self.interval * 2 ** min(self.failures - 1, 16))

    def run_once(self) -> dict | None:
        """One attempt; None when no central server is enrolled."""
        if SyncState(self.data_dir).remote() is None:
            return None
        try:
            summary = sync_now(self.data_dir)
        except (SyncError, OSError) as exc:
            self.failures += 1
            self.last_error = str(exc)
            log.warning("background sync failed (%s); next try in %.0fs", exc, self.next_wait())
            return None
        self.failures, self.last_error = 0, None
        return summary

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the thread must survive any one bad run
                self.failures += 1
                log.exception("background sync crashed")
            self._wake.wait(self.next_wait())
            self._wake.clear()


def status(data_dir, probe: bool = False, timeout: float = 2.0) -> dict:
    """The day-end view: last successful sync, changes waiting to go, reachability, conflicts."""
    data_dir = Path(data_dir)
    state = SyncState(data_dir)
    remote = state.remote()
    db = connect(data_dir / DB_NAME)
    try:
        pending = _pending(db, state, remote["url"]) if remote else _total_own(db)
        conflicts = changes.open_conflict_count(db)
    finally:
        db.close()
    result = {
        "central_url": remote["url"] if remote else None,
        "last_success": state.last_run(remote["url"] if remote else None, ok=True),
        "last_attempt": state.last_run(remote["url"] if remote else None),
        "pending": pending, "conflicts": conflicts, "reachable": None,
        "peers": [r["url"] for r in state.remotes() if r["kind"] == "peer"],
    }
    if probe and remote:
        from sync.client import verify_for
        result["reachable"] = reachable(remote["url"], timeout, verify_for(data_dir, remote["url"]))
    return result


def reachable(url: str, timeout: float = 2.0, verify: bool | str = True) -> bool:
    """True if the server answers HTTP at all (over TLS checked with `verify`)."""
    try:
        requests.get(url, timeout=timeout, verify=verify)
    except requests.RequestException:
        return False
    return True


def _pending(db, state: SyncState, url: str) -> int:
    total = 0
    for program_id in changes.local_programs(db):
        acked = state.acked(url, program_id)
        total += sum(max(0, seq - acked.get(o, 0)) for o, seq in changes.vector(db, program_id).items())
    return total


def _total_own(db) -> int:
    return changes.change_count(db)


def open_conflicts(data_dir, limit: int = 50) -> list[dict]:
    """Merge conflicts a coordinator has not reviewed yet, newest first."""
    db = connect(Path(data_dir) / DB_NAME)
    try:
        return changes.open_conflicts(db, limit)
    finally:
        db.close()
