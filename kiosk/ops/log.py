"""The kiosk's log: one JSON line per request and per domain act, rotated in DATA/logs/.

Lines carry ids, counts, reasons and timings, never a person's name, phone or national ID, nor
a password, token or secret: request lines keep the path without its query string (a search
may be a phone number), and a last guard masks any long run of digits in every line (in a
request's line, in each of its strings: the rest of it is the kiosk's own constants and numbers).
Acts log through `logging.getLogger("kiosk.<act>")` with `extra={"act": ..., fields...}`.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import time
from datetime import datetime, timezone
from pathlib import Path

LOGGERS = ("kiosk", "sync", "waitress")  # the loggers this file takes (`configure`)
LOG_DIR = "logs"
LOG_FILE = "kiosk.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
# Fields of a LogRecord that are not the act's own.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# 9 or more digits, possibly split by spaces or dashes: phones (10), national IDs (13).
_LONG_NUMBER = re.compile(r"(?<![\w.-])\+?\d(?:[ -]?\d){8,}(?![\w.-])")
_installed: dict = {}


class JsonLines(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, and the act's fields; masked."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
                **{k: v for k, v in vars(record).items() if k not in _STANDARD}}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return redact(json.dumps(line, ensure_ascii=False, default=str))


def redact(text: str) -> str:
    """`text` with every phone- or ID-like number masked."""
    return _LONG_NUMBER.sub("[number]", text)


def log_path(data_dir) -> Path:
    return Path(data_dir) / LOG_DIR / LOG_FILE


def configure(data_dir) -> Path:
    """Sends the `kiosk`, `sync` and `waitress` loggers to DATA/logs/kiosk.log (rotated), through a
    queue so that a request never waits on the disk; replaces an earlier configuration of this process."""
    path = log_path(data_dir)
    if _installed.get("path") == path:
        return path
    shutdown()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    file = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                                encoding="utf-8", delay=True)
    file.setFormatter(JsonLines())
    lines: queue.SimpleQueue = queue.SimpleQueue()
    front = logging.handlers.QueueHandler(lines)
    listener = logging.handlers.QueueListener(lines, file)
    listener.start()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(front)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # waitress puts a stderr handler on the root: not every request there
    _installed.update(path=path, front=front, listener=listener, file=file)
    return path


def shutdown() -> None:
    """Writes the queued lines and detaches the log file of this process (tests, and before a restore)."""
    if not _installed:
        return
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(_installed["front"])
        logging.getLogger(name).propagate = True
    _installed["listener"].stop()
    _installed["file"].close()
    _installed.clear()


def tail(data_dir, lines: int = 200) -> list[dict]:
    """The newest `lines` log lines, newest first, as dicts (for the coordinator's health page)."""
    path = log_path(data_dir)
    if not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - lines * 400))
        raw = f.read().decode("utf-8", errors="replace").splitlines()[-lines:]
    out = []
    for text in reversed(raw):
        try:
            out.append(json.loads(text))
        except ValueError:
            continue
    return out


# --- who took personal data out ----------------------------------------------------------------------

audit_log = logging.getLogger("kiosk.audit")


def audit(what: str, who: str | None, **ids) -> None:
    """One line for an export or print of personal data (a roster, sheet, badges, report with
    names, a person's record): who, what, when (the line's time), and ids only, never a name,
    phone or ID."""
    audit_log.info("personal data out", extra={"act": "personal_data", "what": what, "who": who or "?", **ids})


# --- one line per request ------------------------------------------------------------------------

REQUEST_LOGGER = "kiosk.request"
request_log = logging.getLogger(REQUEST_LOGGER)


def init_app(app) -> None:
    """Times each request and logs one line for it: method, path (no query), status, ms, user."""
    from flask import g, request

    @app.before_request
    def _start_clock():
        g.log_started = time.perf_counter()

    @app.after_request
    def _log_request(response):
        started = g.get("log_started")
        if started is not None and request.endpoint != "static":
            user = g.get("user")
            request_log.info("request", extra={
                "act": "request", "method": request.method, "path": request.path, "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 2), "user": user["username"] if user else None})
        return response
