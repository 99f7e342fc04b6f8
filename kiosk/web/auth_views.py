"""Log in, log out, and the one-time set-up of the first coordinator."""


from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from kiosk.store.db import get_db
from kiosk.trust import accounts as auth
from kiosk.webkit.errors import user_message
from kiosk.webkit.login import attempt_login, safe_next, start_login_session

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    db = get_db()
    if not auth.has_coordinator(db):
        return redirect(url_for("auth.setup"))
    if request.method == "POST":
        user, status = attempt_login(lambda username, password: auth.authenticate(db, username, password))
        if user:
            _log_in(db, user["id"])
            return redirect(safe_next(request.args.get("next"), url_for("admin.home")))
        if status:
            return render_template("login.html"), status
    return render_template("login.html")


def _log_in(db, user_id: str) -> None:
    start_login_session("login", auth.start_session(db, user_id))


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

