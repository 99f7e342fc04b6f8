"""The door's writer process: under `kiosk serve`, scans that meet commit in a process of their own.

One Python process runs one thread at a time. At eight scanners the writer thread waited for
the GIL after each of its statements while request threads ran Flask and JSON, and the whole
door was one core's worth of Python: check-ins at 8 connections fell below those at 1. Here the
batches of scans are decided, stored and committed on the other core, by a process started beside
the server (spawned, so it shares nothing but the database file), while the server's threads
parse, read and answer.

A request thread sends its `Job` (pickled) over its own connection to the process and waits
for the answer, which comes only after the commit (synchronous=FULL), as before. The process
batches the jobs waiting at that moment into one transaction, with the same rules as the
writer thread (kiosk.db.GroupCommitter). Both processes take the database's write lock, which
becomes an `flock` too (kiosk.db.WriteLock): registrations, the checkpointer and the process
wait on one another without SQLite's sleeps. Every scan goes to the process, a lone one too
(about 0.1 ms more): keeping lone scans on the request's thread pulled the door's writes back
into the server at 8 connections.

The connection is a Unix socket in the abstract namespace (Linux) with a fresh 32-byte key:
multiprocessing's handshake proves the key before a single pickle is read. The process exits
when the server does (its pipe to the server closes), even after a kill -9; if it dies, the
server's threads go back to the writer thread and the door goes on, and under `kiosk serve` a
new process is started a second later (`WriterProcess.restart`).

Over that pipe the server's log thread sends its batches of log lines, unformatted, and the
process makes and writes them (kiosk.ops.log): off the server's GIL, as the commits are.
"""

import logging
import os
import pickle
import queue
import struct
import sys
import threading
import time
from multiprocessing import connection, get_context

from kiosk import db as kdb
from kiosk.ops import log as kiosk_log

log = logging.getLogger("kiosk.writer")

START_SECONDS = 60.0
ANSWER_READ = 65536  # an answer of the door is about 2 kB


def supported() -> bool:
    """A writer process needs `flock` and abstract Unix sockets: Linux."""
    return sys.platform.startswith("linux") and kdb.fcntl is not None


class WriterProcess:
    """The server's side of the door's writer process for one database file.

    With `restart` (as `kiosk serve` runs it), a process found dead is started again after
    RESTART_SECONDS[0], the wait doubling up to RESTART_SECONDS[1] while each new one dies
    young (before LIVED_SECONDS): a door that lost its process is back on the other core
    within a second or two, and one that keeps crashing stays with the writer thread.
    """

    RESTART_SECONDS = (1.0, 300.0)
    LIVED_SECONDS = 600.0

    def __init__(self, path: str, log_path=None, restart: bool = False, _restarts: int = 0):
        self.path = kdb._real_path(str(path))
        self.log_path = log_path  # the server's log file, for the process to write (kiosk.ops.log)
        self.restart = restart
        self.address = "\0kiosk-writer-" + os.urandom(12).hex()
        self._authkey = os.urandom(32)
        self._local = threading.local()
        self._process = self._pipe = None
        self._restarts = _restarts  # how many died young in a row before this one
        self._started = 0.0
        self._lock = threading.Lock()
        self._stopped = False
        self.successor = None  # the restart's timer, then the process that took over

    def start(self) -> "WriterProcess":
        """Spawns the process; it takes the door's batches once it answers (a thread waits for
        that, so that serving starts at once, with the writer thread meanwhile)."""
        context = get_context("spawn")
        mine, theirs = context.Pipe()
        self._process = context.Process(target=_main, args=(self.path, self.address, self._authkey, theirs,
                                                            kdb._autocheckpoint, self.log_path),
                                        name="kiosk-writer", daemon=True)
        self._process.start()
        self._started = time.monotonic()
        theirs.close()
        self._pipe = mine
        threading.Thread(target=self._join, name="kiosk-writer-start", daemon=True).start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _join(self) -> None:
        try:
            ready = self._pipe.poll(START_SECONDS) and self._pipe.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            log.warning("the door's writer process did not start; the writer thread takes the door",
                        extra={"act": "writer"})
            return
        kdb.GroupCommitter._write_lock(self.path).share()
        with self._lock:
            if self._stopped:  # stopped while it started: it never takes the door
                return
            kdb.GroupCommitter.processes[self.path] = self
        writes_log = self.log_path is not None and kiosk_log.forward_to(self._pipe, self.log_path)
        log.info("the door's writer process is ready", extra={"act": "writer", "pid": self.pid, "writes_log": writes_log})

    def run(self, job: kdb.Job) -> tuple[bool, object]:
        """(True, result) of `job` committed by the process, or (False, None) if the process is gone
        (it is then left for the writer thread). The job's own error is raised."""
        try:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = connection.Client(self.address, family="AF_UNIX", authkey=self._authkey)
            conn.send(job)
            ok, value = _receive(conn)
        except (EOFError, OSError):
            self._lost()
            return False, None
        if ok:
            return True, value
        raise value

    def _lost(self) -> None:
        processes = kdb.GroupCommitter.processes
        if processes.get(self.path) is not self or processes.pop(self.path, None) is not self:
            return  # another thread found it gone first, or it never took the door (or one took its place)
        if self._process is not None and not self._stopped:
            self._process.kill()  # gone for this server either way: never two of them at the door
            self._process.join(5)
        exit_code = self._process.exitcode if self._process else None
        with self._lock:
            if not self.restart or self._stopped:
                log.warning("the door's writer process ended; the writer thread takes the door",
                            extra={"act": "writer", "exit_code": exit_code})
                return
            young = time.monotonic() - self._started < self.LIVED_SECONDS
            restarts = self._restarts + 1 if young else 1
            wait = min(self.RESTART_SECONDS[1], self.RESTART_SECONDS[0] * 2 ** (restarts - 1))
            self.successor = threading.Timer(wait, self._start_successor, args=(restarts,))
            self.successor.daemon = True
            self.successor.start()
        log.warning("the door's writer process ended; the writer thread takes the door until a new one starts",
                    extra={"act": "writer", "exit_code": exit_code, "restart_in_seconds": wait})

    def _start_successor(self, restarts: int) -> None:
        with self._lock:
            if not self._stopped:
                self.successor = WriterProcess(self.path, self.log_path, restart=True, _restarts=restarts).start()

    def stop(self) -> None:
        """Ends the process (and one started in its place, or the wait for it)."""
        with self._lock:
            self._stopped = True
            successor, self.successor = self.successor, None
        if isinstance(successor, threading.Timer):
            successor.cancel()
        elif successor is not None:
            successor.stop()
        self._lost()
        if self._pipe is not None:
            self._pipe.close()
        if self._process is not None:
            self._process.join(10)


def _receive(conn):
    """The process's answer on `conn`, read whole in one system call where it fits.

    Connection.recv reads the length, then the bytes: two reads, and each one lets go of the
    GIL, which at eight scanners is a hand-over round the request threads. The answer comes
    in multiprocessing's framing (a 4-byte length, then the pickle), one answer per job."""
    fd, data, size = conn.fileno(), b"", None
    while size is None or len(data) < 4 + size:
        more = os.read(fd, ANSWER_READ)
        if not more:
            raise EOFError("the writer process hung up")
        data += more
        if size is None and len(data) >= 4:
            size = struct.unpack("!i", data[:4])[0]
            if size < 0:  # multiprocessing's mark of an answer over 2 GiB: never the door's
                raise RuntimeError("the writer process sent an answer too large to read")
    if len(data) != 4 + size:
        raise RuntimeError("the writer process sent more than one answer")
    return pickle.loads(data[4:])


def _main(path: str, address: str, authkey: bytes, server, autocheckpoint: int, log_path=None) -> None:
    """The process: accepts the server threads' connections and commits what they send, batch by
    batch. Its commits leave checkpoints to the server's checkpointer, as the server's do."""
    import gc

    kdb._autocheckpoint = autocheckpoint
    db = kdb.connect(path)
    lock = kdb.GroupCommitter._write_lock(path)
    lock.share()
    listener = connection.Listener(address, family="AF_UNIX", authkey=authkey)
    joined: queue.SimpleQueue = queue.SimpleQueue()
    wake_read, wake_write = os.pipe()
    ended = threading.Event()
    threading.Thread(target=_accept, args=(listener, joined, wake_write), daemon=True).start()
    threading.Thread(target=_watch_server, args=(server, log_path, ended, wake_write), daemon=True).start()
    gc.freeze()
    server.send("ready")
    clients: list = []
    while True:
        ready = connection.wait([wake_read, *clients])
        if ended.is_set():
            os._exit(0)  # the server ended: between two batches, never in the middle of one
        if wake_read in ready:
            os.read(wake_read, 4096)
            while not joined.empty():
                clients.append(joined.get())
        batch = _received([c for c in ready if c in clients], clients)
        if batch:
            with lock:
                answers = _commit(db, batch)
            _answer(answers, clients)


def _watch_server(server, log_path, ended: threading.Event, wake: int) -> None:
    """Writes the log lines the server sends (kiosk.ops.log.write_forwarded) and, when its pipe
    closes (the server ended, even by kill -9), wakes the main loop to end the process.

    Anything else that stops the log's lines ends the process too, rather than leave the server
    sending lines nobody writes: its threads then take back the door and the log."""
    try:
        if log_path is not None:
            kiosk_log.write_forwarded(log_path, server)
        while True:
            server.recv_bytes()  # nothing more comes once the log has stopped: this waits for the end
    except Exception:  # EOFError or OSError when the server has ended
        pass
    ended.set()
    os.write(wake, b"!")


def _accept(listener, joined: queue.SimpleQueue, wake: int) -> None:
    while True:
        try:
            client = listener.accept()
        except (OSError, EOFError, connection.AuthenticationError):
            continue  # a caller without the key, or one that hung up during the handshake
        joined.put(client)
        os.write(wake, b".")


def _received(ready: list, clients: list) -> list:
    """The (client, job) pairs sent; a client whose thread is gone is dropped, one whose job
    cannot be read is answered with the error at once."""
    batch = []
    for client in ready:
        try:
            batch.append((client, client.recv()))
        except (EOFError, OSError):
            clients.remove(client)
        except Exception as exc:  # a job that does not unpickle here: the server's bug, told to it
            _answer([(client, (False, exc))], clients)
    return batch


class _Reply:
    """What the writer's batch (kiosk.db.GroupCommitter._commit) hands a job's answer to: kept
    for its client, to be sent once the batch is committed."""

    __slots__ = ("client", "answer")

    def __init__(self, client):
        self.client, self.answer = client, None

    def set_result(self, value) -> None:
        self.answer = (True, value)

    def set_exception(self, error: BaseException) -> None:
        self.answer = (False, error)


def _commit(db, batch: list) -> list:
    """Each job's (client, (ok, value)), with the writer thread's rules: the batch in one
    transaction, or, if a job raises, each job again in a transaction of its own."""
    replies = [(job, _Reply(client)) for client, job in batch]
    kdb.GroupCommitter._commit(db, replies, room_checked=False)  # the server's threads did not ask
    return [(reply.client, reply.answer) for _, reply in replies]


def _answer(answers: list, clients: list) -> None:
    for client, answer in answers:
        try:
            message = pickle.dumps(answer)
        except Exception as exc:  # a result that does not pickle: committed, but told as an error
            message = pickle.dumps((False, RuntimeError(f"the writer could not send its answer: {exc!r}")))
        try:
            client.send_bytes(message)  # what Connection.send does after pickling
        except (OSError, ValueError):  # the server's thread is gone
            if client in clients:
                clients.remove(client)
