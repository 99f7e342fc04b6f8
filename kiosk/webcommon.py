"""What every web app of the project shares (the kiosk, its peer sync endpoints, the central server).

The one JSON error body and the handlers that produce it for every route, the user's language, the
Thai-aware message of a domain error, and the Sarabun font. Neither the kiosk's blueprints nor the
central server's views live here: both import this, neither imports the other's web layer.
"""

import json
import logging
from urllib.parse import urlparse

from babel import Locale
from flask import current_app, flash, jsonify, render_template, request, send_from_directory, session
from flask_babel import Babel, gettext
from werkzeug.exceptions import HTTPException

from kiosk.errors import HTTP_REASONS, KioskError, error_body, message_of, status_of

log = logging.getLogger(__name__)
LANGUAGES = ("th", "en")
# Parsed once: Babel's Locale.parse looks for locale files on disk every time it runs.
_LOCALES = {code: Locale.parse(code) for code in LANGUAGES}
JSON_PREFIX = "/api/"
# A multipart form field, or a whole url-encoded form, larger than this is refused 413: no title,
# name or note is near it, and a 10 MB title would make every page that shows it 10 MB.
MAX_FORM_MEMORY_SIZE = 256 * 1024
FORM_MIMETYPE = "application/x-www-form-urlencoded"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def select_locale() -> Locale:
    """The language the user picked (?lang= remembered in the session, or a `lang` cookie), else Thai.

    Anything but a known language is ignored, never an error.
    """
    environ = request.environ
    chosen = request.args.get("lang") if environ.get("QUERY_STRING") else None  # a scanner sends none
    if chosen in LANGUAGES:
        session["lang"] = chosen
    if "HTTP_COOKIE" not in environ:  # no session and no cookie to name another language: a scanner
        return _LOCALES.get(chosen, _LOCALES["th"])  # (the session is left untouched: no Vary to add)
    cookie = request.cookies.get("lang")
    return _LOCALES.get(session.get("lang") or cookie, _LOCALES["th"])


def init_babel(app) -> None:
    """Flask-Babel with the one locale selector."""
    Babel(app, locale_selector=select_locale)


def reason_message(reason: str) -> str:
    """A reason's message in the user's language."""
    return gettext(message_of(reason))


def user_message(exc: KioskError) -> str:
    """A domain error as the user reads it: the reason's message, with the English detail when it adds one."""
    text = reason_message(exc.reason)
    detail = str(exc)
    return text if detail in (text, message_of(exc.reason)) else f"{text} ({detail})"


def error_response(reason: str, message: str | None = None, status: int | None = None, **extra):
    """The one JSON error response; the message defaults to the reason's, translated."""
    body = error_body(reason, str(message) if message is not None else reason_message(reason), **extra)
    return jsonify(body), status or status_of(reason)


def error_of(exc: KioskError, **extra):
    """The JSON error response of a domain error, its message in the user's language."""
    return error_response(exc.reason, user_message(exc), exc.status, **extra)


def wants_json() -> bool:
    """True for API paths and JSON requests: they answer JSON errors, pages answer an HTML page."""
    return request.path.startswith(JSON_PREFIX) or request.is_json


def install_error_handlers(app, page: str | None = "error.html") -> None:
    """Every error on every route answers the one JSON body under /api/, or the `page` template.

    An app without pages (`page=None`, the bare peer app) answers JSON everywhere.
    """

    def answer(reason: str, message: str, status: int):
        if page is None or wants_json():
            return error_response(reason, message, status)
        return render_template(page, message=message, status=status), status

    @app.errorhandler(KioskError)
    def _domain(exc: KioskError):
        return answer(exc.reason, user_message(exc), exc.status)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        reason = HTTP_REASONS.get(exc.code, "bad_request")
        message = reason_message(reason) if exc.code in (404, 405) else (exc.description or exc.name)
        return answer(reason, message, exc.code or 400)

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http(exc)
        log.exception("request %s %s failed", request.method, request.path)
        return answer("server_error", reason_message("server_error"), 500)


SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))


def install_security_headers(app, cacheable=frozenset({"static", "font"})) -> None:
    """Security headers on every answer of `app`: a CSP with no inline script or style and
    `frame-ancestors 'none'`, `nosniff`, no framing, no referrer, and `Cache-Control: no-store`
    on everything but the `cacheable` endpoints (pages and APIs carry names).
    """

    def headers(response):
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        if request.endpoint not in cacheable:
            response.cache_control.no_store = True
            response.cache_control.max_age = None
            response.cache_control.public = False
        return response

    app.after_request(headers)


def install_form_limit(app) -> None:
    """Bounds url-encoded forms to MAX_FORM_MEMORY_SIZE in all (413 before any view reads them).

    Werkzeug applies MAX_FORM_MEMORY_SIZE to multipart fields only: a url-encoded body is read
    whole, so without this it is bounded only by MAX_CONTENT_LENGTH (or not at all).
    """

    def bound():
        if request.mimetype == FORM_MIMETYPE:
            request.max_content_length = MAX_FORM_MEMORY_SIZE

    app.before_request(bound)


def serve_font(name: str):
    """Sarabun, served from the installed font package: no web font comes from the internet."""
    from fontpkg_sarabun import ROOT

    return send_from_directory(ROOT / "files", name, max_age=86400)


def safe_next(target: str | None, fallback: str) -> str:
    """Only a path on this site: a login link must not bounce the user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return fallback


def attempt_login(authenticate) -> tuple[dict | None, int | None]:
    """One login attempt from the posted form, through the app's back-off per account and address.

    `authenticate(username, password)` gives the user or None. Returns (user, None), or
    (None, 429) while the back-off holds, or (None, None) for a wrong password; the refusal is
    flashed in the user's language.
    """
    from kiosk.auth import LoginThrottle

    throttle = current_app.extensions.setdefault("login_throttle", LoginThrottle())
    username = request.form.get("username", "")
    keys = ("user:" + username.lower(), "address:" + (request.remote_addr or ""))
    wait = throttle.wait_seconds(*keys)
    if wait:
        flash(gettext("Too many wrong passwords: wait %(seconds)d seconds and try again.", seconds=int(wait) + 1), "error")
        return None, 429
    user = authenticate(username, request.form.get("password", ""))
    if user:
        throttle.succeeded(*keys)
        return user, None
    throttle.failed(*keys)
    flash(gettext("Wrong user name or password."), "error")
    return None, None


def start_login_session(key: str, session_id: str) -> None:
    """A fresh cookie session for a login (nothing of the one before it) but the language chosen."""
    lang = session.get("lang")
    session.clear()
    session.permanent = True
    session[key] = session_id
    if lang:
        session["lang"] = lang
