"""The JSON API for scanners, tablets and scripts.

Every endpoint but /api/ping needs a staff session or `Authorization: Bearer TOKEN`. Errors have
one shape: {"ok": false, "reason": CODE, "error": MESSAGE}.

POST /api/checkins takes {"code"} or, as a staff override for a forgotten badge,
{"participant_id"}, plus optional "session", "nonce", "at" (ISO 8601), "direction" ("in" |
"out") and "paper" (true: the code is a signed sheet's row, recorded for its own session). An "at" more than a couple of minutes ahead of the kiosk's clock, or more than one session day back,
is refused (400 bad_time, not stored). A page sending a scan it kept while the kiosk was
unreachable adds "queued": true and the contact stamp it held ("contact", from POST /api/contact,
and "contact_seen_at", when it got it on its own clock): its time is then counted from that
contact (kiosk.people.tablets.carried_time).
What is a scan attempt and what is not:

* a body over 16 KB (413 payload_too_large), a body that is not JSON sent as application/json, or JSON
  that is not an object (400 bad_json): not a scan, nothing is stored;
* an object whose optional fields have the wrong type or form (400 bad_request): a client bug,
  nothing is stored;
* any other object is a scan attempt and is stored, successful or not: 200 for checked_in,
  already_checked_in and checked_out; 422 for a code that is not ours (invalid_code,
  wrong_program), 404 unknown_participant, 410 revoked_badge, 409 for the rest.
"""


from flask import Blueprint, current_app, jsonify, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from kiosk.badges import issuing
from kiosk.clock import local_day, parse_iso
from kiosk.door import camera, checkin
from kiosk.door import screen as door
from kiosk.people.tablets import OfflineError, scan_time
from kiosk.program.events import get_session
from kiosk.store.db import get_db
from kiosk.web import contact
from kiosk.web.access import current_user, login_required
from kiosk.webkit.errors import error_of, error_response, reason_message
from kiosk.webkit.language import role_label, thai_date

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_CHECKIN_BODY = 16 * 1024
MAX_FIELD_LEN = 128

SEND_JSON = _l("Send a JSON object with Content-Type: application/json.")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
THAI_LAYOUT_MESSAGE = _l("The code arrived as Thai letters: the scanner types through a Thai keyboard layout. "
                         "Use the scan page, or switch the keyboard to English.")


@bp.before_request
def _cookie_writes_need_json():
    """A write by session cookie must be what only our own pages' scripts can send.

    The API is exempt from form CSRF tokens (scanners and scripts send a Bearer token), so a
    cookie-authenticated write needs a body another page cannot make without a CORS preflight:
    a JSON object as application/json (a camera frame as its image type), or the X-CSRFToken
    header. Otherwise any page on the same site could post a form that revokes a badge.
    """
    if request.method in SAFE_METHODS or request.headers.get("Authorization", "").startswith("Bearer "):
        return None
    if current_user() is None or _csrf_header_valid():
        return None  # no cookie login: login_required refuses it
    if request.endpoint == "api.decode_frame":
        return None if request.mimetype in camera.FRAME_MIMETYPES else error_response("bad_image")
    if (request.content_length or 0) > MAX_CHECKIN_BODY:
        return error_response("payload_too_large")
    body = request.get_json(silent=True) if request.is_json else None
    return None if isinstance(body, dict) else error_response("bad_json", str(SEND_JSON))


def _csrf_header_valid() -> bool:
    token = request.headers.get("X-CSRFToken")
    try:
        return bool(token) and validate_csrf(token) is None
    except ValidationError:
        return False


@bp.get("/ping")
def ping():
    """A trivial endpoint: health checks, and the baseline of the check-in benchmark."""
    return jsonify({"ok": True})


def _person(public: dict | None) -> dict | None:
    """A participant for the API, with the role named in the user's language."""
    if public:
        public["role_name"] = role_label(public["role"])
    return public


def _checkin_error(exc: checkin.CheckinError):
    extra = door.refusal_json(exc, get_db())
    message = THAI_LAYOUT_MESSAGE if exc.detail == "thai_layout" else _refusal_message(exc, extra)
    _person(extra["participant"])
    return error_response(exc.reason, message, exc.status, **extra)


def _refusal_message(exc: checkin.CheckinError, extra: dict) -> str:
    """What the red screen says: for a closed door, when it opens or closed; for a wrong cohort,
    where the person belongs. Otherwise the reason's own message."""
    cohort, session = extra.get("cohort") or {}, extra.get("session") or {}
    number, days = cohort.get("number"), _days(cohort.get("days") or [])
    if exc.reason == "no_open_session" and number is not None:
        if exc.detail == "not_yet" and session:
            return _("Check-in for cohort %(cohort)s opens at %(time)s.", cohort=number, time=session["opens_at"])
        if exc.detail == "closed" and session:
            return _("Check-in for cohort %(cohort)s closed at %(time)s.", cohort=number, time=session["closes_at"])
        if exc.detail in ("no_session_today", "other_day") and days:
            return _("Cohort %(cohort)s has no session today. Its days: %(days)s.", cohort=number, days=days)
    if exc.reason == "wrong_cohort" and number is not None and days:
        return _("This person is in cohort %(cohort)s, which meets on %(days)s.", cohort=number, days=days)
    return reason_message(exc.reason)


def _days(days: list[str]) -> str:
    """A cohort's days as people read them: one date, or the first and the last."""
    if not days:
        return ""
    return thai_date(days[0]) if len(days) == 1 else f"{thai_date(days[0])} – {thai_date(days[-1])}"


def _storable(text: str) -> bool:
    """False for a string SQLite cannot store: a lone surrogate, which JSON can spell ("\\ud800").
    Refused here as bad input, rather than failing when the scan is stored."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scan_request():
    """(fields, None) from the request body, or (None, error response) if it is not a scan attempt."""
    if (request.content_length or 0) > MAX_CHECKIN_BODY:
        return None, error_response("payload_too_large")
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict):
        return None, error_response("bad_json", str(SEND_JSON))
    fields = {"code": body.get("code"), "participant_id": body.get("participant_id")}
    for name in ("session", "nonce", "at", "direction", "participant_id"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD_LEN or not _storable(value)):
            return None, error_response("bad_request", _("Field %(name)s must be short text.", name=name))
        fields[name] = value or None
    if isinstance(fields["code"], str) and not _storable(fields["code"]):
        return None, error_response("bad_request", _("Field %(name)s must be short text.", name="code"))
    if fields["code"] is not None and fields["participant_id"]:
        return None, error_response("bad_request", _("Send a code or a participant_id, not both."))
    if fields["direction"] not in (None, *checkin.DIRECTIONS):
        return None, error_response("bad_request", _("direction is \"in\" or \"out\"."))
    fields["paper"] = body.get("paper", False)
    if fields["paper"] not in (True, False) or (fields["paper"] and fields["direction"] == "out"):
        return None, error_response("bad_request", _("paper is true or false, and only for arriving."))
    try:
        fields["at"] = parse_iso(fields["at"]) if fields["at"] else None
    except ValueError:
        return None, error_response("bad_request", _("at must be an ISO 8601 time."))
    # The laptop's clock decides: a scan the page kept while the laptop was unreachable carries its
    # time as counted from its last contact (kiosk.web.contact); any other "at" only within bounds.
    late = contact.late_claim(contact.staff_device(current_user()), body, "at") if body.get("queued") is True else None
    session = get_session(get_db(), fields["session"]) if fields["session"] else None
    try:
        fields["at"] = scan_time(get_db(), fields["at"], late, session["program_id"] if session else None)
    except OfflineError as exc:
        return None, error_of(exc)
    return fields, None


@bp.post("/checkins")
@login_required()
def create_checkin():
    """Checks a badge code (or a participant, for a forgotten badge) in or out of a session."""
    fields, problem = _scan_request()
    if problem:
        return problem
    scan = {"code": fields["code"], "session_id": fields["session"], "at": fields["at"],
            "operator": current_user()["username"], "nonce": fields["nonce"],
            "direction": fields["direction"] or "in", "participant_id": fields["participant_id"],
            "paper": fields["paper"]}
    try:
        result = checkin.check_in(get_db(), **scan)
    except checkin.CheckinError as exc:
        return _checkin_error(exc)
    body = door.result_json(result)
    _person(body["participant"])
    return jsonify(body)


@bp.post("/contact")
@login_required()
def heartbeat():
    """The scan page reaches the laptop: a fresh contact stamp for the scans it may have to keep."""
    return jsonify({"ok": True, **contact.stamp(contact.staff_device(current_user()))})


@bp.get("/sessions")
@login_required()
def sessions():
    """Today's sessions (venue time) with counts and whether each is open for check-in."""
    return jsonify({"ok": True, "day": local_day().isoformat(), "sessions": door.door_sessions(get_db())})


@bp.get("/sessions/<session_id>/attendance")
@login_required()
def session_attendance(session_id):
    """Checked in / expected for one session, in total and by role."""
    db = get_db()
    session = door.get_door_session(db, session_id)
    if session is None:
        return error_response("not_found", _("No such session."))
    counts = door.session_attendance(db, session)
    return jsonify({"ok": True, "session": door.public_session(session), "open": door.is_open(session), **counts})


@bp.get("/participants/search")
@login_required()
def search_participants():
    """People by any part of a Thai or Latin name, or phone; ?session= adds their check-in time."""
    query = request.args.get("q", "")
    if len(query) > MAX_FIELD_LEN:
        return error_response("bad_request", _("The search is too long."))
    people = door.find_people(get_db(), query, request.args.get("session") or None)
    return jsonify({"ok": True, "participants": [_person(p) for p in people]})


@bp.post("/participants/<participant_id>/badge")
@login_required()
def reissue_badge(participant_id):
    """A new badge for a lost one: the old code stops working at once."""
    try:
        code = issuing.reissue_badge(get_db(), participant_id)
    except issuing.BadgeError as exc:
        return error_of(exc)
    current_app.logger.info("badge reissued for %s by %s", participant_id, current_user()["username"])
    return jsonify({"ok": True, "code": code,
                    "badge_url": url_for("scan.badge_png", participant_id=participant_id, v=code[-4:])})


@bp.post("/decode")
@login_required()
def decode_frame():
    """QR codes in one camera frame (the body is the image) for browsers without BarcodeDetector."""
    if (request.content_length or 0) > camera.MAX_FRAME_BYTES:
        return error_response("frame_too_large", _("A camera frame must be under 2 MB."))
    try:
        codes = camera.decode_frame(request.get_data(cache=False))
    except camera.FrameError as exc:
        return error_of(exc)
    return jsonify({"ok": True, "codes": codes})
