"""Log in, log out, and the one-time set-up of the first coordinator."""

from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from kiosk import auth
from kiosk.db import get_db
from kiosk.webcommon import user_message

bp = Blueprint("auth", __name__)


def _throttle() -> auth.LoginThrottle:
    """The app's memory of failed logins, per account and per address."""
    return current_app.extensions.setdefault("login_throttle", auth.LoginThrottle())


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a login link must not bounce users to another site."""
    if target and urlparse(target).netloc == "" and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("admin.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    db = get_db()
    if not auth.has_coordinator(db):
        return redirect(url_for("auth.setup"))
    if request.method == "POST":
        username = request.form.get("username", "")
        keys = ("user:" + username.lower(), "address:" + (request.remote_addr or ""))
        wait = _throttle().wait_seconds(*keys)
        if wait:
            flash(_("Too many wrong passwords: wait %(seconds)d seconds and try again.", seconds=int(wait) + 1),
                  "error")
            return render_template("login.html"), 429
        user = auth.authenticate(db, username, request.form.get("password", ""))
        if user:
            _throttle().succeeded(*keys)
            _log_in(db, user["id"])
            return redirect(_safe_next(request.args.get("next")))
        _throttle().failed(*keys)
        flash(_("Wrong user name or password."), "error")
    return render_template("login.html")


def _log_in(db, user_id: str) -> None:
    lang = session.get("lang")
    session.clear()
    session.permanent = True
    session["login"] = auth.start_session(db, user_id)
    if lang:
        session["lang"] = lang


@bp.post("/logout")
def logout():
    auth.end_session(get_db(), session.get("login"))
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    db = get_db()
    if auth.has_coordinator(db):
        return redirect(url_for("auth.login"))
    data_dir = current_app.config["DATA_DIR"]
    auth.setup_code(db, data_dir)
    if request.method == "POST":
        try:
            user_id = auth.create_first_coordinator(
                db, data_dir, request.form.get("code", ""), request.form.get("username", ""),
                request.form.get("password", ""))
        except auth.AuthError as exc:
            flash(user_message(exc), "error")
        else:
            _log_in(db, user_id)
            return redirect(url_for("admin.home"))
    return render_template("setup.html")

