"""The coordinator's day-end sync page: last successful sync, changes waiting to go, the central
server's reachability, conflicts to review, "sync now", enrolment, and USB bundles both ways."""

import tempfile
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from kiosk.clock import now_utc
from kiosk.errors import KioskError
from kiosk.ops.health import bundle_name, laptop_name
from kiosk.store.changes import mark_conflict_reviewed
from kiosk.store.db import get_db
from kiosk.web.access import login_required
from kiosk.webkit.errors import reason_message, user_message
from sync import SyncError, enrol, open_conflicts, status, sync_now
from sync import export_bundle as write_bundle
from sync import import_bundle as read_bundle

bp = Blueprint("sync_page", __name__, url_prefix="/sync")
MAX_BUNDLE_BYTES = 50 * 1024 * 1024


def _back():
    return redirect(url_for("sync_page.index"))


def _data_dir() -> str:
    return current_app.config["DATA_DIR"]


@bp.get("/")
@login_required(role="coordinator")
def index():
    return render_template("sync.html", status=status(_data_dir(), probe=True), conflicts=open_conflicts(_data_dir()),
                           laptop=laptop_name(), reason_message=reason_message)


@bp.post("/now")
@login_required(role="coordinator")
def now():
    try:
        summary = sync_now(_data_dir())
    except SyncError as exc:
        flash(_("Sync failed: %(error)s", error=user_message(exc)), "error")
    else:
        flash(_("Synced: %(pushed)d sent, %(pulled)d received.", pushed=summary["pushed"],
                pulled=summary["pulled"]), "ok")
    return _back()


@bp.post("/enrol")
@login_required(role="coordinator")
def enrol_here():
    url, code = request.form.get("url", "").strip(), request.form.get("code", "").strip()
    if not url.startswith(("http://", "https://")) or not code:
        flash(_("Give the central server's address (http://… or https://…) and the one-time code."), "error")
        return _back()
    ca = request.files.get("ca")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ca_path = None
            if ca and ca.filename:
                ca_path = Path(tmp) / "ca.pem"
                ca.save(ca_path)
            answer = enrol(_data_dir(), url, code, ca=ca_path)
    except SyncError as exc:
        flash(_enrol_failure(exc, url), "error")
    else:
        flash(_("This kiosk is enrolled. It syncs every minute while it runs."), "ok")
        if answer.get("plain_http"):
            flash(_("Warning: this address is plain http, so the device secret and personal data cross the "
                    "network readable. Ask for the central server's https:// address."), "error")
    return _back()


def _enrol_failure(exc: SyncError, url: str) -> str:
    """Why connecting failed, in words that say what to do; nothing was sent, nothing waits."""
    if exc.reason == "unreachable":
        return _("Connecting failed: nothing answered at %(url)s. Check the address (with its port, such as :8090) "
                 "and that this laptop is on the central server's network, then try again.", url=url)
    return _("Connecting failed: %(error)s", error=reason_message(exc.reason))


@bp.get("/bundle")
@login_required(role="coordinator")
def export_bundle():
    """Every change this kiosk holds, as a USB bundle to carry to the central office."""
    folder = Path(_data_dir()) / "bundles"
    folder.mkdir(exist_ok=True)
    name = bundle_name(laptop_name(), now_utc())
    write_bundle(get_db(), folder / name)
    return send_file(folder / name, mimetype="application/gzip", as_attachment=True, download_name=name)


@bp.post("/bundle")
@login_required(role="coordinator")
def import_bundle():
    """Applies an uploaded bundle whole; a truncated or altered one is refused and changes nothing."""
    upload = request.files.get("file")
    if not upload or not upload.filename:
        flash(_("Choose a bundle file (.jsonl.gz)."), "error")
        return _back()
    if (request.content_length or 0) > MAX_BUNDLE_BYTES:
        flash(_("The bundle is too large."), "error")
        return _back()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.jsonl.gz"
        upload.save(path)
        try:
            result = read_bundle(get_db(), path, program_key=request.form.get("program_key", "").strip() or None)
        except KioskError as exc:
            flash(_("The bundle was refused, nothing changed: %(error)s", error=user_message(exc)), "error")
            return _back()
    flash(_("Bundle imported: %(applied)d new of %(total)d changes.", applied=result["applied"],
            total=result["changes"]), "ok")
    return _back()


@bp.post("/conflicts/<int:conflict_id>")
@login_required(role="coordinator")
def review(conflict_id):
    mark_conflict_reviewed(get_db(), conflict_id)
    return _back()
