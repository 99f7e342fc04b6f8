"""Error answers of every web app (the kiosk, its peer sync endpoints, the central server).

The one JSON error body and the handlers that produce it for every route, and the message of a
domain error in the user's language. Neither the kiosk's blueprints nor the central server's views
live in kiosk.webkit: both import it, neither imports the other's web layer.
"""

import logging

from flask import jsonify, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from kiosk.errors import HTTP_REASONS, KioskError, error_body, message_of, status_of

log = logging.getLogger(__name__)
JSON_PREFIX = "/api/"


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


