"""`kiosk-central` with faults injected from outside the product, for the fault tests.

Run like `python -m sync.central` (tests/support.py's CentralServer does when given faults). The
faults come from the environment, all off unless set:

    SYNC_TEST_FAIL_EVERY=n             every n-th sync request answers 503 "unreachable" (odd turns
                                       before it is handled, even turns after it was handled and committed);
    SYNC_TEST_DELAY_BEFORE_COMMIT=s    a push sleeps s seconds inside its transaction;
    SYNC_TEST_DELAY_AFTER_COMMIT=s     a push sleeps s seconds after committing, before answering;
    SYNC_TEST_DELAY_FROM_PUSH=k        the delays start with the k-th push (default 1).

A delayed push logs "test hook: push N sleeps" and, when it is done, committed or not, "test hook:
push N finished", so that a test can wait for it instead of sleeping.
"""

import itertools
import json
import logging
import os
import threading
import time

import sync.central
from sync.central.api import CentralBackend
from sync.central.cli import main
from sync.central.storage.changelog import ChangeLog

log = logging.getLogger("sync.faults")
FAIL_EVERY = int(os.environ.get("SYNC_TEST_FAIL_EVERY") or 0)
BEFORE = float(os.environ.get("SYNC_TEST_DELAY_BEFORE_COMMIT") or 0)
AFTER = float(os.environ.get("SYNC_TEST_DELAY_AFTER_COMMIT") or 0)
FROM_PUSH = int(os.environ.get("SYNC_TEST_DELAY_FROM_PUSH") or 1)
_pushes = itertools.count(1)
_current = threading.local()


def _delay(which: str, seconds: float) -> None:
    number = getattr(_current, "push", 0)
    if seconds and number >= FROM_PUSH:
        log.warning("test hook: push %d sleeps %.1fs %s commit", number, seconds, which)
        time.sleep(seconds)


def _with_push_delays(push):
    def delayed(self, *args, **kwargs):
        _current.push = next(_pushes)
        try:
            answer = push(self, *args, **kwargs)
            _delay("after", AFTER)
            return answer
        finally:
            if (BEFORE or AFTER) and _current.push >= FROM_PUSH:
                log.warning("test hook: push %d finished", _current.push)
            _current.push = 0
    return delayed


def _with_delay_inside(apply):
    def delayed(self, *args, **kwargs):
        vector = apply(self, *args, **kwargs)
        _delay("before", BEFORE)  # still inside the push's transaction
        return vector
    return delayed


class FailEvery:
    """WSGI middleware: every n-th request to /api/sync/ answers 503, before or after handling it."""

    def __init__(self, app, every: int):
        self.app, self.every, self.seen, self.failed = app, every, 0, 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        turn = self._turn() if environ.get("PATH_INFO", "").startswith("/api/sync/") else None
        if turn == "before":
            return self._unreachable(start_response)
        if turn == "after":
            body = self.app(environ, lambda *a, **k: (lambda data: None))
            b"".join(body)  # handled and committed, then the answer is lost
            getattr(body, "close", lambda: None)()
            return self._unreachable(start_response)
        return self.app(environ, start_response)

    def _turn(self) -> str | None:
        with self.lock:
            self.seen += 1
            if self.seen % self.every:
                return None
            self.failed += 1
            return "before" if self.failed % 2 else "after"

    @staticmethod
    def _unreachable(start_response):
        body = json.dumps({"ok": False, "reason": "unreachable", "error": "test hook"}).encode()
        start_response("503 SERVICE UNAVAILABLE", [("Content-Type", "application/json"),
                                                   ("Content-Length", str(len(body)))])
        return [body]


def _create_app_with_faults(create_app):
    def create(*args, **kwargs):
        app = create_app(*args, **kwargs)
        if FAIL_EVERY:
            app.wsgi_app = FailEvery(app.wsgi_app, FAIL_EVERY)
        return app
    return create


CentralBackend.push = _with_push_delays(CentralBackend.push)
ChangeLog._apply = _with_delay_inside(ChangeLog._apply)
sync.central.create_app = _create_app_with_faults(sync.central.create_app)

if __name__ == "__main__":
    main()
