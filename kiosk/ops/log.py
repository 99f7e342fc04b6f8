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
import pickle
import queue
import re
import threading
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
# 9 or more digits, possibly split by spaces or dashes: phones (10), national IDs (13). Read as
# "(?<![\w.-])\+?\d(?:[ -]?\d){8,}(?![\w.-])", but written to start with a character class, which
# lets the regex engine skip to the next digit or plus instead of trying every position.
_LONG_NUMBER = re.compile(r"[+\d](?<![\w.-].)(?:(?<=\+)\d|(?<=\d))(?:[ -]?\d){8,}(?![\w.-])")
# One encoder for every line: json.dumps with options builds a new one each call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode
_STRING = json.encoder.encode_basestring  # a str as that encoder writes it (quoted, escaped)
_installed: dict = {}


class JsonLines(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, and the act's fields."""

    _second, _stamp = None, ""

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.unredacted(record))

    def unredacted(self, record: logging.LogRecord) -> str:
        """The line before `redact`."""
        line = self.fields(record.created, record.levelname.lower(), record.name, record.getMessage(),
                           {k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return _ENCODE(line)

    def fields(self, created: float, level: str, logger: str, msg: str, fields: dict) -> dict:
        """A line's object: time, level, logger, message, then the act's fields (records and `_Line`s)."""
        return {"at": self._at(created), "level": level, "logger": logger, "msg": msg, **fields}

    def _at(self, created: float) -> str:
        """UTC time with milliseconds, as isoformat gives it; the part down to the second is reused."""
        second = int(created)
        micro = round((created - second) * 1e6)  # as datetime rounds, then cut to milliseconds
        if micro >= 1_000_000:
            second, micro = second + 1, 0
        if second != self._second:
            stamp = datetime.fromtimestamp(second, timezone.utc).isoformat()
            self._second, self._stamp = second, stamp[:-6]
        return f"{self._stamp}.{micro // 1000:03d}+00:00"


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
    writer = _Writer(path)
    front = _Enqueue(writer.queue)
    _cheap_records()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(front)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # waitress puts a stderr handler on the root: not every request there
    _installed.update(path=path, front=front, writer=writer)
    return path


def _cheap_records() -> None:
    """No record of this process looks up the file, line, thread or process of its call.

    Our lines carry none of them, and finding the caller walked the stack on every request; these
    are the switches the logging documentation gives for it ("Optimization").
    """
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


class _Enqueue(logging.handlers.QueueHandler):
    """Hands the record over as it is: the writer's thread formats it (fields stay in the record).

    No handler lock: the queue is thread-safe, and eight door threads queuing on the lock took a
    third of the time of a trivial request (profiled with py-spy at 8 connections).
    """

    def handle(self, record: logging.LogRecord) -> bool:
        self.queue.put_nowait(self.prepare(record))
        return True

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        return record


class _Line:
    """A line queued without a LogRecord (a check-in's): building a LogRecord and its `extra`
    cost a third of a trivial request's own time."""

    __slots__ = ("created", "name", "msg", "fields")

    def __init__(self, name: str, msg: str, fields: dict):
        self.created, self.name, self.msg, self.fields = time.time(), name, msg, fields


def info_line(logger: logging.Logger, msg: str, fields: dict) -> None:
    """`logger.info(msg, extra=fields)`, straight to the log file's queue when it is configured."""
    writer = _installed.get("writer")
    if writer is not None and logger.name.partition(".")[0] in LOGGERS and logger.isEnabledFor(logging.INFO):
        writer.queue.put_nowait(_Line(logger.name, msg, fields))
    else:
        logger.info(msg, extra=fields)


class _Writer:
    """The thread that writes queued records in batches: formatted once, one write and one flush a
    batch, rotated by size. (A RotatingFileHandler formats every record twice and flushes each.)

    After each batch it rests PAUSE seconds, so that a busy door's lines gather into one batch
    instead of waking this thread (and taking the GIL from a request) once per line: measured
    0.47 -> 0.40 ms of server CPU per /api/ping at 8 connections. `stop` ends the rest at once.

    While the door's writer process runs (kiosk.writer), the batches go to it unformatted, and it
    makes and writes the lines: formatting them here, beside eight request threads, cost the
    server 14 µs a request at 8 connections, seven times what it costs alone. If the process is
    gone, this thread writes them again itself.
    """

    BATCH = 512
    PAUSE = 0.05

    def __init__(self, path: Path):
        self.path = path
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.file = LogFile(path)
        self.sink = None  # the writer process's end of the server's pipe, while it writes the lines
        self.thread = threading.Thread(target=self._run, name="kiosk-log", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            items = [r for r in batch if r is not None]
            if items and not self._forward(items):
                self.file.write(items)
            if None in batch:
                return
            if len(batch) < self.BATCH:
                self.stopping.wait(self.PAUSE)

    def _forward(self, items: list) -> bool:
        """True if the writer process took the batch. A LogRecord is made into its line here
        (its arguments may not pickle); request tuples and `_Line`s go as they are."""
        sink = self.sink
        if sink is None:
            return False
        self.file.release()  # the process appends to the file, and rotates it
        portable = [item if type(item) in (tuple, _Line) else self.file.format(item) for item in items]
        try:
            try:
                message = pickle.dumps(portable)
            except Exception:  # an act's field that does not pickle: send the lines made
                message = pickle.dumps([self.file.format(item) for item in items])
            sink.send_bytes(message)
            return True
        except Exception:  # the process is gone (or its pipe closed): write them here
            if self.sink is sink:  # not a new process's, handed over meanwhile
                self.sink = None
            return False

    def stop(self) -> None:
        self.queue.put(None)
        self.stopping.set()
        self.thread.join(10)
        sink, self.sink = self.sink, None
        if sink is not None:
            try:  # the process writes what it was sent, then says so: the file is whole on return
                sink.send_bytes(pickle.dumps(None))
                if sink.poll(10):
                    sink.recv_bytes()
            except Exception:
                pass
        self.file.close()


class LogFile:
    """The log file, rotated by size, and the making of its lines: written by the server's log
    thread, or by the door's writer process while it runs (`write_forwarded`)."""

    def __init__(self, path: Path):
        self.handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                                            encoding="utf-8", delay=True)
        self._formatter = JsonLines()

    def write(self, items: list) -> None:
        """One write and one flush for the batch's lines; a new file once it passes MAX_BYTES."""
        lines = [item if type(item) is str else self.format(item) for item in items]
        handler = self.handler
        if handler.stream is None:
            handler.stream = handler._open()
        handler.stream.write("\n".join(lines) + "\n")
        handler.stream.flush()
        if handler.stream.tell() >= MAX_BYTES:
            handler.doRollover()

    def release(self) -> None:
        """Closes the file until the next `write` (another process writes it meanwhile)."""
        if self.handler.stream is not None:
            self.handler.stream.close()
            self.handler.stream = None

    def close(self) -> None:
        self.handler.close()

    def format(self, item) -> str:
        """A queued request tuple, `_Line` or LogRecord as its JSON line, masked (`redact`)."""
        if type(item) is tuple:
            return self._request(*item)
        if type(item) is _Line:
            return redact(_ENCODE(self._formatter.fields(item.created, "info", item.name, item.msg, item.fields)))
        return redact(self._formatter.unredacted(item))

    def _request(self, created: float, method: str, path: str, status: int, ms: float, user: str | None) -> str:
        """A request's line, as `fields` and the encoder would write it, with its three strings
        masked one by one: the rest is our own constants and numbers (a status, milliseconds),
        and masking the whole line cost more than formatting it (the time alone has 17 digits).
        """
        return (f'{{"at": "{self._formatter._at(created)}", "level": "info", "logger": "{REQUEST_LOGGER}", '
                f'"msg": "request", "act": "request", "method": {_STRING(redact(method))}, '
                f'"path": {_STRING(redact(path))}, "status": {status}, "ms": {ms}, '
                f'"user": {"null" if user is None else _STRING(redact(user))}}}')


def forward_to(sink, path: Path) -> bool:
    """Hands the lines of the log file at `path` to the writer process at the other end of `sink`
    (kiosk.writer), if this process's log is that file; True if it does."""
    writer = _installed.get("writer")
    if writer is None or writer.path != Path(path):
        return False
    writer.sink = sink
    return True


def write_forwarded(path: Path, source) -> None:
    """In the writer process: writes the batches the server's log thread sends over `source`
    until it says it stops (answered once the file is whole) or hangs up."""
    out = LogFile(Path(path))
    try:
        while (items := pickle.loads(source.recv_bytes())) is not None:
            try:
                out.write(items)
            except OSError:  # a full disk: these lines are lost, never the door (`kiosk doctor` warned first)
                out.release()
    finally:
        out.close()
    source.send_bytes(b"written")


def shutdown() -> None:
    """Flushes and detaches the log file of this process (tests, and before a restore)."""
    if not _installed:
        return
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(_installed["front"])
        logging.getLogger(name).propagate = True
    _installed["writer"].stop()
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


# --- one line per request ------------------------------------------------------------------------

REQUEST_LOGGER = "kiosk.request"
request_log = logging.getLogger(REQUEST_LOGGER)


def request_line(method: str, path: str, status: int, ms: float, user: str | None) -> None:
    """Logs one request: queued as a bare tuple when the log file is configured (the writer's
    thread makes the line), else as a record with the same fields."""
    writer = _installed.get("writer")
    if writer is not None and request_log.isEnabledFor(logging.INFO):
        writer.queue.put_nowait((time.time(), method, path, status, ms, user))
    else:
        request_log.info("request", extra={"act": "request", "method": method, "path": path, "status": status,
                                           "ms": ms, "user": user})


STARTED = "kiosk.log_started"


def init_app(app) -> None:
    """Times each request and logs one line for it: method, path (no query), status, ms, user.

    The clock starts in a WSGI wrapper (a before_request hook and `g` cost more than the stamp).
    """
    from flask import g, request

    inner = app.wsgi_app

    def timed(environ, start_response):
        environ[STARTED] = time.perf_counter()
        return inner(environ, start_response)

    app.wsgi_app = timed

    @app.after_request
    def _log_request(response):
        current = request._get_current_object()  # one proxy lookup, not five
        started = current.environ.get(STARTED)
        if started is not None and current.endpoint != "static":
            user = g._get_current_object().get("user")  # g.get through its proxy: 1 µs more
            request_line(current.method, current.path, response.status_code,
                         round((time.perf_counter() - started) * 1000, 2), user["username"] if user else None)
        return response
