"""Coordinators' pages on the central server: totals across venues, devices, enrolment codes.

Every page needs a coordinator's login (a session cookie, HttpOnly, SameSite=Lax); forms carry a
CSRF token (Flask-WTF). The first account is made at /setup with the one-time code that
`kiosk-central serve` prints while none exists, or with `kiosk-central user add NAME`.
"""


from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext

from kiosk.errors import KioskError
from kiosk.trust.accounts import AuthError
from kiosk.webkit.errors import user_message
from kiosk.webkit.login import attempt_login, safe_next, start_login_session
from kiosk.webkit.qr import qr_data_uri
from sync.central import national
from sync.protocol import SyncError

bp = Blueprint("central", __name__)
OPEN = ("central.login", "central.setup")


def storage():
    return current_app.extensions["central_storage"]


@bp.before_request
def require_login():
    """Every central page but login and set-up needs a logged-in coordinator."""
    g.user = storage().session_user(session.get("central_login"))
    if g.user is None and request.endpoint not in OPEN:
        if not storage().has_users():
            return redirect(url_for("central.setup"))
        return redirect(url_for("central.login", next=request.full_path.rstrip("?")))


def _log_in(user_id: str):
    start_login_session("central_login", storage().start_session(user_id))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not storage().has_users():
        return redirect(url_for("central.setup"))
    if request.method == "POST":
        user, status = attempt_login(storage().authenticate)
        if user:
            _log_in(user["id"])
            return redirect(safe_next(request.args.get("next"), url_for("central.index")))
        return render_template("central/login.html"), status or 401
    return render_template("central/login.html")


@bp.post("/logout")
def logout():
    storage().end_session(session.get("central_login"))
    session.clear()
    return redirect(url_for("central.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if storage().has_users():
        return redirect(url_for("central.login"))
    if request.method == "POST":
        try:
            user_id = storage().create_first_user(request.form.get("code", ""), request.form.get("username", ""),
                                                  request.form.get("password", ""))
        except AuthError as exc:
            flash(user_message(exc), "error")
            return render_template("central/setup.html"), 400
        _log_in(user_id)
        return redirect(url_for("central.index"))
    return render_template("central/setup.html")


@bp.get("/")
def index():
    """Every program on central with its people, those who came and its target."""
    return render_template("central/index.html", programs=national.programs_overview(storage()))


@bp.get("/devices")
def devices():
    return render_template("central/devices.html", devices=storage().device_list(), areas=_area_choices())


def _area_choices() -> list[tuple[str, str]]:
    """Provinces and their districts, for a room's area: (code, name)."""
    import geothai

    return [(d.code, f"{d.name_th} ({p.name_th})") if len(d.code) == 4 else (d.code, d.name_th)
            for p in geothai.provinces() for d in [p, *geothai.districts(p.code)]]


@bp.post("/devices/<device_id>/room")
def room(device_id):
    """Names the room a kiosk stands in and the area whose people it expects."""
    try:
        storage().set_room(device_id, request.form.get("room"), request.form.get("area"))
    except (KioskError, SyncError) as exc:
        flash(user_message(exc), "error")
    else:
        flash(gettext("The room is saved."), "ok")
    return redirect(url_for("central.devices"))


@bp.post("/devices/<device_id>/revoke")
def revoke(device_id):
    storage().revoke(device_id)
    return redirect(url_for("central.devices"))


@bp.route("/enrol", methods=["GET", "POST"])
def enrol():
    code = qr = None
    if request.method == "POST":
        programs = [p.strip() for p in request.form.get("programs", "").split(",") if p.strip()]
        code = storage().create_enrol_code(request.form.get("name") or None, programs or None)
        qr = qr_data_uri(code)
    return render_template("central/enrol.html", code=code, qr=qr)


