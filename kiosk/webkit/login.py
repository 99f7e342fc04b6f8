"""Logging in on either web app: the back-off per account and address, a fresh session, safe redirects."""

from urllib.parse import urlparse

from flask import current_app, flash, request, session
from flask_babel import gettext

from kiosk.trust.accounts import LoginThrottle


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
