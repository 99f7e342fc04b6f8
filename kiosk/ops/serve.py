"""`kiosk serve`: waitress on the venue network, plain or over HTTPS (kiosk.webkit.https), with
bounds on what one client may hold (kiosk.webkit.connections), and the background work (sync,
backups, WAL checkpoints)."""

from __future__ import annotations

import signal
import threading
from functools import partial
from pathlib import Path

from kiosk.webkit import connections
from kiosk.webkit.https import serve_https


def serve(app, host: str, port: int, threads: int = 8, https: bool = False) -> None:
    """Starts the log and the background work of the app's data folder, then serves it until stopped."""
    from kiosk.ops import log

    log.configure(app.config["DATA_DIR"])
    start_background(app)
    if threading.current_thread() is threading.main_thread():  # only there can a signal be caught
        signal.signal(signal.SIGTERM, _stop)
    try:
        if https:
            serve_https(app, host, port, Path(app.config["DATA_DIR"]), threads)
        else:
            connections.serve(app, host, port, threads, ident="kiosk")
    finally:
        log.shutdown()  # the lines still queued reach the file


def _stop(_signum, _frame) -> None:
    """SIGTERM ends waitress's loop like Ctrl-C does, so that the log is flushed on the way out."""
    raise SystemExit(0)


def start_background(app) -> None:
    """The background syncer (every minute, once enrolled), backups (every 15 minutes, and after
    each session closes), WAL checkpoints (every second, off the door's commits) and the programs'
    retention dates (at start and daily)."""
    from kiosk.ops.backup import BackupScheduler
    from kiosk.ops.retention import RetentionScheduler, keep_retention
    from kiosk.store.db import Checkpointer
    from sync import Syncer

    Checkpointer(app.config["DATABASE"]).start()
    Syncer(app).start()
    BackupScheduler(app.config["DATA_DIR"]).start()
    RetentionScheduler(partial(keep_retention, Path(app.config["DATA_DIR"]))).start()


