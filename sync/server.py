"""The server side of the protocol as a Flask blueprint, shared by the central server and a kiosk
that serves its peers: reading bodies within limits, checking signatures, one error shape.

A backend object does the work: `lookup(device)`, `remember_nonce(device, nonce)`,
`enrol(body)`, `hello(device, offset, body)`, `push(device, offset, body)`,
`pull(device, offset, body)`; each returns a dict or raises SyncError.
"""

import logging
import os
import threading
import time

from flask import Blueprint, jsonify, request

from kiosk.webkit.errors import error_response
from sync import auth
from sync.protocol import MAX_ENROL_BYTES, MAX_REQUEST_BYTES, SyncError, decode_body

log = logging.getLogger(__name__)
SIGNED = ("hello", "push", "pull")


class TestHooks:
    """Fault-test hooks read from the environment; all off in normal use.

    SYNC_TEST_FAIL_EVERY=n        every n-th sync request fails with 503 (odd turns before it is
                                  handled, even turns after it was handled and committed);
    SYNC_TEST_DELAY_BEFORE_COMMIT=s   a push sleeps s seconds inside its transaction;
    SYNC_TEST_DELAY_AFTER_COMMIT=s    a push sleeps s seconds after committing, before answering;
    SYNC_TEST_DELAY_FROM_PUSH=k   the delays start with the k-th push (default 1).

    A delayed push logs "test hook: push N finished" when it is done, committed or not, so that
    a test can wait for it instead of sleeping.
    """

    def __init__(self, env=os.environ):
        self.fail_every = int(env.get("SYNC_TEST_FAIL_EVERY") or 0)
        self.before = float(env.get("SYNC_TEST_DELAY_BEFORE_COMMIT") or 0)
        self.after = float(env.get("SYNC_TEST_DELAY_AFTER_COMMIT") or 0)
        self.from_push = int(env.get("SYNC_TEST_DELAY_FROM_PUSH") or 1)
        self._requests = self._pushes = self._failures = 0
        self._lock = threading.Lock()

    def next_request(self) -> str | None:
        """'before' or 'after' when this request must fail, else None."""
        if not self.fail_every:
            return None
        with self._lock:
            self._requests += 1
            if self._requests % self.fail_every:
                return None
            self._failures += 1
            return "before" if self._failures % 2 else "after"

    def next_push(self) -> int:
        with self._lock:
            self._pushes += 1
            return self._pushes

    def delay(self, which: str, push_number: int) -> None:
        seconds = self.before if which == "before" else self.after
        if seconds and push_number >= self.from_push:
            log.warning("test hook: push %d sleeps %.1fs %s commit", push_number, seconds, which)
            time.sleep(seconds)

    def finished(self, push_number: int) -> None:
        if (self.before or self.after) and push_number >= self.from_push:
            log.warning("test hook: push %d finished", push_number)


def read_raw() -> bytes:
    """The request body's bytes, refused (413) before reading if longer than the limit."""
    length = request.content_length
    if length is not None and length > MAX_REQUEST_BYTES:
        raise SyncError("payload_too_large", f"request of {length} bytes exceeds {MAX_REQUEST_BYTES}")
    raw = request.stream.read(MAX_REQUEST_BYTES + 1)
    if len(raw) > MAX_REQUEST_BYTES:
        raise SyncError("payload_too_large", f"request exceeds {MAX_REQUEST_BYTES} bytes")
    return raw


def make_blueprint(name: str, get_backend) -> Blueprint:
    """The sync API (`/api/sync/<endpoint>`) over the backend `get_backend()` returns."""
    bp = Blueprint(name, __name__, url_prefix="/api/sync")
    hooks = TestHooks()

    @bp.route("/<endpoint>", methods=["GET", "POST"])
    def api(endpoint):
        if endpoint not in ("enrol", *SIGNED):
            return error_response("not_found", f"no sync endpoint {endpoint}")
        if request.method != "POST":
            return error_response("method_not_allowed")
        failing = hooks.next_request()
        if failing == "before":
            return error_response("unreachable", "test hook")
        try:
            answer = _handle(get_backend(), endpoint, hooks)
        except SyncError as exc:  # devices read the English detail; people read the sync page
            return error_response(exc.reason, str(exc), exc.status)
        if failing == "after":
            return error_response("unreachable", "test hook (after)")
        return jsonify({"ok": True, **answer})

    return bp


def _handle(backend, endpoint: str, hooks: TestHooks) -> dict:
    raw = read_raw()
    if endpoint == "enrol":
        return backend.enrol(decode_body(raw, request.headers.get("Content-Encoding"), MAX_ENROL_BYTES))
    # A backend with `push_nonce` records a push's nonce in the transaction that applies it.
    deferred = endpoint == "push" and getattr(backend, "push_nonce", False)
    device, offset = auth.verify(request.headers, request.method, request.path, raw,
                                 backend.lookup, None if deferred else backend.remember_nonce)
    nonce = request.headers.get("X-Nonce")
    try:
        body = decode_body(raw, request.headers.get("Content-Encoding"))
    except SyncError:
        if deferred and not backend.remember_nonce(device, nonce):
            raise SyncError("replayed", "this request was already received") from None
        raise
    if endpoint == "push":
        number = hooks.next_push()
        extra = {"nonce": nonce} if deferred else {}
        try:
            return backend.push(device, offset, body, lambda: hooks.delay("before", number),
                                lambda: hooks.delay("after", number), **extra)
        finally:
            hooks.finished(number)
    return getattr(backend, endpoint)(device, offset, body)
