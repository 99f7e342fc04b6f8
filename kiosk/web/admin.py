"""Coordinator pages: programs, cohorts, session days, sites, targets, rosters, badges, accounts."""

import io

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

import sync
from kiosk import reports
from kiosk.badges.issuing import active_badge, cohort_cards, issue_missing_badges, missing_badges
from kiosk.clock import LOCAL_ZONE, local_day, now_utc
from kiosk.documents.records import record_file
from kiosk.door.screen import badge_of
from kiosk.errors import KioskError
from kiosk.ops import log
from kiosk.people import participants as people
from kiosk.people import privacy
from kiosk.people.roster import HeldRosters, import_roster
from kiosk.program import events
from kiosk.store.db import get_db
from kiosk.thai import ROLES, area_choices, area_names, area_parts
from kiosk.trust import accounts as auth
from kiosk.trust import programkeys
from kiosk.web.access import current_user, login_required
from kiosk.webkit.errors import reason_message, user_message

bp = Blueprint("admin", __name__)


def _form(name: str) -> str:
    return request.form.get(name, "").strip()


def _attempt(action, done: str, not_a_number: str | None = None) -> bool:
    """Runs one set-up action and flashes its outcome in the user's language; True if it worked."""
    try:
        action()
    except ValueError:
        flash(not_a_number or _("Numbers are expected here."), "error")
        return False
    except KioskError as exc:
        flash(user_message(exc), "error")
        return False
    flash(done, "ok")
    return True


def _program_or_404(program_id: str) -> dict:
    return events.get_program(get_db(), program_id) or abort(404)


def _cohort_or_404(cohort_id: str) -> dict:
    return events.cohort_by_id(get_db(), cohort_id) or abort(404)


@bp.get("/")
@login_required()
def home():
    """Today's control room: each session of the day with its state and counts, one click from its
    door, people, tablets and sheet; the next sessions when none is today."""
    db = get_db()
    now = now_utc().astimezone(LOCAL_ZONE)
    today, hhmm = now.date(), now.strftime("%H:%M")
    sessions = [{**s, "state": events.session_state(s, today, hhmm)}
                for s in reports.session_counts(db, events.sessions_on(db, today))]
    return render_template("home.html", programs=events.programs(db), today=today, sessions=sessions,
                           upcoming=[] if sessions else events.next_sessions(db, today))


@bp.post("/programs")
@login_required("coordinator")
def create_program():
    try:
        year = int(_form("fiscal_year")) if _form("fiscal_year") else None
        program_id = events.create_program(get_db(), _form("title"), _form("organizer"), year)
    except ValueError:
        flash(_("The fiscal year must be a number, such as 2570."), "error")
    except KioskError as exc:
        flash(user_message(exc), "error")
    else:
        return redirect(url_for("admin.program", program_id=program_id))
    return redirect(url_for("admin.home"))


@bp.get("/programs/<program_id>")
@login_required()
def program(program_id):
    db = get_db()
    found = _program_or_404(program_id)
    targets = [{**t, "areas": area_parts(t["area_code"])} for t in reports.target_progress(db, program_id)]
    return render_template("program.html", program=found, cohorts=reports.cohort_summaries(db, program_id),
                           sites=events.sites(db, program_id), targets=targets, roles=ROLES,
                           choices=area_choices, areas_url=url_for("register.areas"))


@bp.post("/programs/<program_id>/key")
@login_required("coordinator")
def program_key(program_id):
    """The program's key on a page to print, for a kiosk that never sees a network (a POST, so
    that no link, history entry or prefetch shows it)."""
    found = _program_or_404(program_id)
    key = programkeys.key_of(get_db(), program_id)
    if key is None:
        flash(user_message(programkeys.ProgramKeyError("program_key_missing")), "error")
        return redirect(url_for("admin.program", program_id=program_id))
    return render_template("program_key.html", program=found, groups=programkeys.format_key(key).split("-"))


@bp.post("/programs/<program_id>/cohorts")
@login_required("coordinator")
def add_cohort(program_id):
    _program_or_404(program_id)
    _attempt(lambda: events.add_cohort(
        get_db(), program_id, int(_form("number") or 0), events.parse_day(_form("starts_on")),
        int(_form("days") or 1), _form("site_id") or None, _form("title")),
        _("Cohort added."), _("Cohort number and days must be numbers."))
    return redirect(url_for("admin.program", program_id=program_id))


@bp.post("/programs/<program_id>/sites")
@login_required("coordinator")
def add_site(program_id):
    _program_or_404(program_id)
    _attempt(lambda: events.add_site(get_db(), program_id, _form("name"), _form("kind") or "venue", _form("address")),
             _("Site added."))
    return redirect(url_for("admin.program", program_id=program_id))


def _area_codes() -> tuple[str, str, str]:
    return _form("province"), _form("district"), _form("subdistrict")


@bp.post("/programs/<program_id>/targets")
@login_required("coordinator")
def add_target(program_id):
    _program_or_404(program_id)
    _attempt(lambda: events.add_target(
        get_db(), program_id, _form("expected"), _form("cohort_id") or None, _form("role") or None,
        area_codes=_area_codes()), _("Target added."))
    return redirect(url_for("admin.program", program_id=program_id, _anchor="targets"))


@bp.post("/targets/<target_id>/edit")
@login_required("coordinator")
def edit_target(target_id):
    target = events.get_target(get_db(), target_id) or abort(404)
    _attempt(lambda: events.edit_target(get_db(), target_id, _form("expected"), _form("cohort_id") or None,
                                        _form("role") or None, _area_codes()), _("Target saved."))
    return redirect(url_for("admin.program", program_id=target["program_id"], _anchor="targets"))


@bp.post("/targets/<target_id>/remove")
@login_required("coordinator")
def remove_target(target_id):
    target = events.get_target(get_db(), target_id) or abort(404)
    _attempt(lambda: events.remove_target(get_db(), target_id),
             _("Target removed. The people it counted and their attendance stay."))
    return redirect(url_for("admin.program", program_id=target["program_id"], _anchor="targets"))


@bp.get("/cohorts/<cohort_id>")
@login_required()
def cohort(cohort_id):
    db = get_db()
    found = _cohort_or_404(cohort_id)
    query = request.args.get("q", "").strip()[:100]
    return render_template("cohort.html", cohort=found, program=events.get_program(db, found["program_id"]),
                           sessions=reports.session_counts(db, events.sessions(db, cohort_id)),
                           removed=reports.session_counts(db, events.sessions(db, cohort_id, removed=True)),
                           people=reports.cohort_people(db, cohort_id, query), query=query,
                           total=reports.cohort_size(db, cohort_id), missing=missing_badges(db, cohort_id))


@bp.post("/cohorts/<cohort_id>/sessions")
@login_required("coordinator")
def add_session(cohort_id):
    _cohort_or_404(cohort_id)
    _attempt(lambda: events.add_session(
        get_db(), cohort_id, events.parse_day(_form("day")), _form("slot") or "day", _form("opens_at") or None,
        _form("closes_at") or None, title=_form("title")), _("Session added."))
    return redirect(url_for("admin.cohort", cohort_id=cohort_id))


def _session_or_404(session_id: str) -> dict:
    return events.get_session(get_db(), session_id) or abort(404)


@bp.post("/sessions/<session_id>/edit")
@login_required("coordinator")
def edit_session(session_id):
    session = _session_or_404(session_id)
    _attempt(lambda: events.edit_session(get_db(), session_id, events.parse_day(_form("day")), _form("slot"),
                                         _form("opens_at") or None, _form("closes_at") or None, _form("title")),
             _("Session saved."))
    return redirect(url_for("admin.cohort", cohort_id=session["cohort_id"], _anchor="sessions"))


@bp.post("/sessions/<session_id>/remove")
@login_required("coordinator")
def remove_session(session_id):
    session = _session_or_404(session_id)
    try:
        kept = events.remove_session(get_db(), session_id)
    except KioskError as exc:
        flash(user_message(exc), "error")
    else:
        flash(_("Session removed. Its %(count)d check-ins are kept on record but count nowhere; restore the "
                "session to count them again.", count=kept) if kept else _("Session removed."), "ok")
    return redirect(url_for("admin.cohort", cohort_id=session["cohort_id"], _anchor="sessions"))


@bp.post("/sessions/<session_id>/restore")
@login_required("coordinator")
def restore_session(session_id):
    session = _session_or_404(session_id)
    _attempt(lambda: events.restore_session(get_db(), session_id), _("Session restored with its check-ins."))
    return redirect(url_for("admin.cohort", cohort_id=session["cohort_id"], _anchor="sessions"))


@bp.post("/sessions/<session_id>/split")
@login_required("coordinator")
def split_session(session_id):
    session = events.get_session(get_db(), session_id) or abort(404)
    _attempt(lambda: events.split_day(get_db(), session_id), _("The day is now a morning and an afternoon session."))
    return redirect(url_for("admin.cohort", cohort_id=session["cohort_id"]))


@bp.post("/cohorts/<cohort_id>/roster")
@login_required("coordinator")
def upload_roster(cohort_id):
    db = get_db()
    found = _cohort_or_404(cohort_id)
    upload = request.files.get("file")
    if not upload or not upload.filename:
        flash(_("Choose a CSV or Excel file."), "error")
        return redirect(url_for("admin.cohort", cohort_id=cohort_id))
    return _import(db, found, upload.read(), upload.filename, bool(request.form.get("skip_bad")), False)


@bp.post("/cohorts/<cohort_id>/roster/confirm")
@login_required("coordinator")
def confirm_roster(cohort_id):
    """Imports a roster held back: its good rows only, or with people who move from another cohort."""
    found = _cohort_or_404(cohort_id)
    held = HeldRosters.take(current_app.config["DATA_DIR"], request.form.get("token", ""), cohort_id)
    if held is None:
        flash(_("The roster upload expired. Choose the file again."), "error")
        return redirect(url_for("admin.cohort", cohort_id=cohort_id))
    return _import(get_db(), found, held.data, held.filename, held.skip_bad or bool(request.form.get("skip_bad")),
                   bool(request.form.get("allow_moves")))


def _import(db, found: dict, data: bytes, filename: str, skip_bad: bool, allow_moves: bool):
    try:
        result = import_roster(db, data, events.get_program(db, found["program_id"]), found, filename,
                               skip_bad=skip_bad, allow_moves=allow_moves, by=current_user()["username"])
    except KioskError as exc:
        flash(user_message(exc), "error")
        return redirect(url_for("admin.cohort", cohort_id=found["id"]))
    token = None
    if not result.imported and (result.needs_confirmation or result.good):
        token = HeldRosters.hold(current_app.config["DATA_DIR"], data, filename, skip_bad, found["id"])
    return render_template("roster_result.html", cohort=found, result=result, reason_message=reason_message,
                           token=token)


@bp.route("/participants/<participant_id>", methods=["GET", "POST"])
@login_required("coordinator")
def participant(participant_id):
    """Correct a person's details, or withdraw / reinstate them; every change is logged for sync."""
    db = get_db()
    person = people.get_participant(db, participant_id) or abort(404)
    program = events.get_program(db, person["program_id"])
    form = request.form if request.method == "POST" else None
    if form is not None:
        action = form.get("action", "save")
        if action in ("withdrawn", "active"):
            _attempt(lambda: people.set_status(db, person, action), _("Saved."))
            return redirect(url_for("admin.participant", participant_id=participant_id))
        if action == "admit":
            _attempt(lambda: people.admit(db, person), _("Admitted: the badge is ready to print."))
            return redirect(url_for("admin.participant", participant_id=participant_id))
        if _attempt(lambda: people.edit_participant(db, person, form.to_dict()), _("Saved.")):
            return redirect(url_for("admin.participant", participant_id=participant_id))
    return render_template("participant.html", person=person, program=program, form=form or {**person, **area_names(person)},
                           cohort=events.cohort_by_id(db, person["cohort_id"]), roles=ROLES, today=local_day().isoformat(),
                           history=reports.attendance_of(db, participant_id),
                           corrections=people.corrections_of(db, participant_id),
                           erasure=privacy.erasure_of(db, participant_id),
                           has_badge=bool(active_badge(db, participant_id)))


@bp.get("/participants/<participant_id>/record.<fmt>")
@login_required("coordinator")
def participant_record(participant_id, fmt):
    """Everything kept about a person (PDPA §30), as a Thai PDF or as JSON; the export is logged."""
    if fmt not in ("pdf", "json"):
        abort(404)
    db = get_db()
    person = people.get_participant(db, participant_id) or abort(404)
    record = privacy.person_record(db, participant_id, sync.acknowledged(current_app.config["DATA_DIR"],
                                                                          person["program_id"]))
    log.audit("person_record", current_user()["username"], participant_id=participant_id, format=fmt)
    body, mimetype = record_file(record, fmt)
    return send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True,
                     download_name=f"personal-data-{participant_id[:8]}.{fmt}")


@bp.post("/participants/<participant_id>/erase")
@login_required("coordinator")
def erase_participant(participant_id):
    """Erases a person's data (PDPA §33) on this kiosk now and everywhere at the next sync."""
    db = get_db()
    people.get_participant(db, participant_id) or abort(404)
    _attempt(lambda: privacy.erase_person(db, participant_id, _form("reason"), current_user()["username"]),
             _("The person's data is erased here, and will be on every computer after the next sync. "
               "Their attendance stays in the reports without a name."))
    return redirect(url_for("admin.participant", participant_id=participant_id))


@bp.post("/participants/<participant_id>/attendance")
@login_required("coordinator")
def correct_attendance(participant_id):
    """Marks a person present at a session, or undoes their check-in, with the reason given."""
    db = get_db()
    person = people.get_participant(db, participant_id) or abort(404)
    session = events.get_session(db, _form("session_id")) or abort(404)
    by = current_user()["username"]
    if _form("action") == "undo":
        _attempt(lambda: people.undo_checkin(db, person, session, by, _form("reason")),
                 _("Check-in undone. The reason is kept with the person's record."))
    else:
        _attempt(lambda: people.mark_attended(db, person, session, by, _form("reason")),
                 _("Marked present. The reason is kept with the person's record."))
    return redirect(url_for("admin.participant", participant_id=participant_id, _anchor="attendance"))


@bp.get("/participants/<participant_id>/badge.pdf")
@login_required()
def participant_badge(participant_id):
    """One person's badge (A6, or ?paper=a4), to print at once."""
    from kiosk.badges.pdf import badge_pdf

    card = badge_of(get_db(), participant_id) or abort(404)
    paper = "a4" if request.args.get("paper") == "a4" else "a6"
    log.audit(f"badge-{paper}.pdf", current_user()["username"], participant_id=participant_id)
    return send_file(io.BytesIO(badge_pdf(card, paper)), mimetype="application/pdf",
                     download_name=f"badge-{paper}.pdf")


@bp.get("/cohorts/<cohort_id>/badges.pdf")
@login_required()
def badges_pdf(cohort_id):
    from kiosk.badges.pdf import badge_sheet_pdf_apart

    found = _cohort_or_404(cohort_id)
    pdf = badge_sheet_pdf_apart(cohort_cards(get_db(), cohort_id))  # in memory, in a second process
    log.audit(f"badges-cohort-{found['number']}.pdf", current_user()["username"], cohort_id=cohort_id)
    return send_file(io.BytesIO(pdf), mimetype="application/pdf",
                     download_name=f"badges-cohort-{found['number']}.pdf")


@bp.post("/cohorts/<cohort_id>/badges")
@login_required()
def issue_badges(cohort_id):
    """Issues badges to the people of a cohort who have none (synced or added without one)."""
    _cohort_or_404(cohort_id)
    count = issue_missing_badges(get_db(), cohort_id)
    flash(_("%(count)d badges issued.", count=count), "ok")
    return redirect(url_for("admin.cohort", cohort_id=cohort_id))


@bp.route("/users", methods=["GET", "POST"])
@login_required("coordinator")
def users():
    """Staff accounts: create one, make an API token, reset a password, disable or enable."""
    db = get_db()
    token = None
    if request.method == "POST":
        try:
            token = _account_action(db, request.form.get("action", "create"))
        except KioskError as exc:
            flash(user_message(exc), "error")
        if token is None:
            return redirect(url_for("admin.users"))
    return render_template("users.html", users=auth.users(db), token=token)


def _account_action(db, action: str) -> str | None:
    """One change to the accounts, said in a flash; an API token made is returned to show once."""
    name = _form("username")
    if action == "token":
        return auth.issue_token(db, name)
    if action in ("disable", "enable"):
        auth.set_disabled(db, name, action == "disable", by=current_user()["username"])
        flash(_("%(name)s can no longer log in; their logins and token stopped.", name=name) if action == "disable"
              else _("%(name)s can log in again.", name=name), "ok")
    elif action == "password":
        auth.change_password(db, name, request.form.get("password", ""))
        flash(_("New password set for %(name)s; their other logins and token stopped. Give them the password "
                "in person.", name=name), "ok")
    else:
        auth.add_user(db, name, _form("role"), request.form.get("password", ""), _form("display_name"))
        flash(_("Account created."), "ok")
    return None
