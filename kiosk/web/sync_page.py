"""The coordinator's day-end sync page: last successful sync, changes waiting to go, the central
server's reachability, conflicts to review, and a "sync now" button."""

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from kiosk.web import login_required
from sync.protocol import SyncError
from sync.syncer import open_conflicts, status, sync_now

bp = Blueprint("sync_page", __name__, url_prefix="/sync")


@bp.get("/")
@login_required(role="coordinator")
def index():
    data_dir = current_app.config["DATA_DIR"]
    return render_template("sync.html", status=status(data_dir, probe=True), conflicts=open_conflicts(data_dir))


@bp.post("/now")
@login_required(role="coordinator")
def now():
    data_dir = current_app.config["DATA_DIR"]
    try:
        summary = sync_now(data_dir)
    except SyncError as exc:
        flash(_("Sync failed: %(error)s", error=str(exc)), "error")
    else:
        flash(_("Synced: %(pushed)d sent, %(pulled)d received.", pushed=summary["pushed"],
                pulled=summary["pulled"]), "ok")
    return redirect(url_for("sync_page.index"))
