"""The coordinator's health page (checks, backups, the log) and /healthz for monitoring."""

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from kiosk.errors import message_of
from kiosk.ops import backup, health, log
from kiosk.web.access import login_required

bp = Blueprint("health", __name__)
LOG_LINES = 200


def _data_dir() -> str:
    return current_app.config["DATA_DIR"]


def _back():
    return redirect(url_for("health.page"))


@bp.get("/healthz")
def healthz():
    """Statuses only, no login: no figure or name that could tell anything about a person."""
    summary = health.public_summary(health.run_checks(_data_dir(), integrity=False))
    return jsonify(summary), 200 if summary["ok"] else 503


@bp.get("/health")
@login_required(role="coordinator")
def page():
    """Every check explained, the backups and their second folder, and the newest log lines."""
    checks = health.run_checks(_data_dir())
    explained = [{"key": c.key, "status": c.status, "title": _(c.title), "text": _(c.message) % c.values}
                 for c in checks]
    lines = log.tail(_data_dir(), LOG_LINES)
    return render_template("health.html", checks=explained, overall=health.overall(checks),
                           last=backup.last_backup(_data_dir()), second=backup.second_folder(_data_dir()),
                           recovery=backup.recovery_key(_data_dir()), suggestions=backup.removable_folders(),
                           laptop=health.laptop_name(),
                           problems=sum(line.get("level") in ("warning", "error", "critical") for line in lines))


@bp.get("/health/log")
@login_required(role="coordinator")
def log_page():
    """The newest log lines, for whoever is asked to look into a problem (no names in them)."""
    return render_template("health_log.html", lines=log.tail(_data_dir(), LOG_LINES), count=LOG_LINES)


@bp.post("/health/backup")
@login_required(role="coordinator")
def backup_now():
    """A backup now, into the data folder and the second folder if one is chosen."""
    try:
        written = backup.take_backup(_data_dir())
    except backup.BackupError as exc:
        flash(_(message_of(exc.reason)), "bad")
        return _back()
    flash(_("Backup saved: %(files)s.", files=", ".join(str(p) for p in written)), "ok")
    return _back()


@bp.post("/health/second-folder")
@login_required(role="coordinator")
def choose_second_folder():
    """Chooses (or, empty, forgets) the second backup folder, such as a USB stick."""
    try:
        chosen = backup.set_second_folder(_data_dir(), request.form.get("folder", ""))
    except backup.BackupError as exc:
        flash(_(message_of(exc.reason)), "bad")
        return _back()
    if chosen:
        flash(_("Backups also go to %(folder)s, sealed.", folder=str(chosen / backup.SECOND_SUBDIR)), "ok")
        if backup.recovery_key(_data_dir()) is None:
            return _recovery_key_page(backup.make_recovery_key(_data_dir()))
    else:
        flash(_("Backups go to the data folder only."), "ok")
    return _back()


@bp.post("/health/recovery-key")
@login_required(role="coordinator")
def new_recovery_key():
    """A new recovery key for the backups that leave this laptop, shown this once."""
    return _recovery_key_page(backup.make_recovery_key(_data_dir()))


def _recovery_key_page(digits: str):
    """The recovery key's digits, on a page of its own (never in a cookie or a flash), to print now."""
    return render_template("recovery_key.html", groups=digits.split("-"), recovery=backup.recovery_key(_data_dir()))
