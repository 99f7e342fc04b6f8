"""What keeps the kiosk's pages safe in a room full of tablets: headers, tablet fences, rate limits.

* Security headers on every answer: a Content-Security-Policy with no inline script and
  `frame-ancestors 'none'`, `nosniff`, no referrer (a pairing link must not leak), and
  `Cache-Control: no-store` on everything but static files (pages and APIs carry names).
* A paired registration tablet reaches only the registration page, its JSON and its assets:
  every other page, API and the sync endpoints answer 403 `tablet_only`.
* A token bucket per tablet: a tablet cannot create a thousand people a minute.
"""

from __future__ import annotations

import threading
import time

from flask import current_app, g, render_template, request

from kiosk.people import tablets
from kiosk.store.db import get_db
from kiosk.webkit.errors import error_response, reason_message, wants_json
from kiosk.webkit.security import install_security_headers

TABLET_COOKIE = "kiosk_tablet"
# What a paired tablet may open: the registration page, its JSON, its assets.
TABLET_ENDPOINTS = frozenset({
    "register.page", "register.submit", "register.heartbeat", "register.badge_pdf", "register.areas",
    "register.pair", "register.pair_short", "register.service_worker", "static", "font",
})
CACHEABLE_ENDPOINTS = frozenset({"static", "font", "register.areas"})


class RateLimiter:
    """A token bucket per key: `burst` at once, then `per_minute` a minute."""

    def __init__(self, per_minute: float, burst: int):
        self.rate = per_minute / 60.0
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Takes one token for `key`; False when its bucket is empty."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1, now)
            return True


def current_tablet() -> dict | None:
    """The paired registration tablet this browser is, or None."""
    if "tablet" not in g:
        token = request.cookies.get(TABLET_COOKIE)
        g.tablet = tablets.tablet_for_token(get_db(), token) if token else None
    return g.tablet


def limiter() -> RateLimiter:
    """The app's per-tablet limiter (REGISTER_PER_MINUTE, REGISTER_BURST)."""
    app = current_app
    if "register_limiter" not in app.extensions:
        app.extensions["register_limiter"] = RateLimiter(float(app.config["REGISTER_PER_MINUTE"]),
                                                         int(app.config["REGISTER_BURST"]))
    return app.extensions["register_limiter"]


def _fence_tablets():
    """Refuses a paired tablet everything but registration (before any view or login check)."""
    if "HTTP_COOKIE" not in request.environ:  # a scanner or script: no cookie to parse
        return None
    if request.endpoint in TABLET_ENDPOINTS or request.cookies.get(TABLET_COOKIE) is None:
        return None
    if current_tablet() is None:
        return None  # revoked or unknown: an ordinary browser
    if wants_json():
        return error_response("tablet_only")
    return render_template("error.html", message=reason_message("tablet_only"), status=403), 403


def install(app) -> None:
    """Headers on every answer, the tablet fence before every request."""
    app.config.setdefault("REGISTER_PER_MINUTE", 20)
    app.config.setdefault("REGISTER_BURST", 20)
    app.before_request(_fence_tablets)
    install_security_headers(app, CACHEABLE_ENDPOINTS)
