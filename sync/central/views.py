"""Coordinators' pages on the central server: totals across venues, devices, enrolment codes.

Pages need the admin password (HTTP Basic, set with `kiosk-central set-password`); until one is
set they answer only to the machine itself. Forms refuse posts from other origins.
"""

import base64
import io
from urllib.parse import urlsplit

import qrcode
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.security import check_password_hash

from sync.central import dashboards

bp = Blueprint("central", __name__)


def storage():
    return current_app.extensions["central_storage"]


@bp.before_request
def _guard():
    stored = storage().get_meta("admin_password_hash")
    if stored:
        auth = request.authorization
        if not auth or not check_password_hash(stored, auth.password or ""):
            return ("", 401, {"WWW-Authenticate": 'Basic realm="kiosk-central"'})
    elif request.remote_addr not in ("127.0.0.1", "::1"):
        abort(403)
    if request.method == "POST":
        origin = request.headers.get("Origin") or request.headers.get("Referer")
        if origin and urlsplit(origin).netloc != request.host:
            abort(403)


@bp.get("/")
def index():
    return render_template("central/index.html", programs=dashboards.program_totals(storage()))


@bp.get("/devices")
def devices():
    return render_template("central/devices.html", devices=storage().device_list())


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


def qr_png(text: str) -> bytes:
    """A QR code of `text` as PNG bytes."""
    out = io.BytesIO()
    qrcode.make(text, box_size=8, border=2).save(out, format="PNG")
    return out.getvalue()


def qr_data_uri(text: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(text)).decode()
