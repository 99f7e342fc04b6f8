"""Self-registration: the tablet's page and JSON, pairing, and the coordinator's tablet page.

The tablet's page posts JSON to /register/submit (CSRF token in the X-CSRFToken header) with a
submission key and, for a form saved while offline, the time it was made. Every rule lives in
`kiosk.people.registration`; this module only turns its answers into pages and JSON.
"""

import io

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from kiosk.badges import pdf
from kiosk.badges.drawing import display_code, qr_matrix
from kiosk.clock import local_day
from kiosk.door import screen as door
from kiosk.errors import KioskError
from kiosk.ops.backup import KEEP_DAYS
from kiosk.people import privacy, registration
from kiosk.people import tablets as pairing
from kiosk.program import events
from kiosk.store.db import get_db
from kiosk.thai import ROLES, area_lists, full_name
from kiosk.web import contact
from kiosk.web.access import current_user, login_required
from kiosk.web.security import TABLET_COOKIE, current_tablet, limiter
from kiosk.webkit.errors import error_of, error_response, reason_message, user_message
from kiosk.webkit.language import current_language, role_label
from kiosk.webkit.qr import qr_data_uri

bp = Blueprint("register", __name__)
MAX_BODY = 16 * 1024
SIGNED_FOR = 15 * 60  # seconds a badge link stays valid
TABLET_COOKIE_AGE = 30 * 24 * 3600


def _signer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=f"register-{purpose}")


def _sign(purpose: str, tablet: dict, value: str) -> str:
    return _signer(purpose).dumps([tablet["id"], value])


def _unsign(purpose: str, tablet: dict, token) -> str | None:
    """The value a token of this tablet names, or None if forged, foreign or expired."""
    try:
        tablet_id, value = _signer(purpose).loads(str(token or ""), max_age=SIGNED_FOR)
    except (BadSignature, ValueError, TypeError):
        return None
    return value if tablet_id == tablet["id"] else None


# --- the tablet -------------------------------------------------------------------------------


@bp.get("/register")
def page():
    """The registration form of this tablet's cohort, or how to pair one."""
    tablet = current_tablet()
    if tablet is None:
        return render_template("register_unpaired.html"), 403
    db = get_db()
    cohort = events.cohort_by_id(db, tablet["cohort_id"])
    today = [s for s in events.sessions(db, cohort["id"]) if s["day"] == local_day().isoformat()]
    return render_template("register.html", tablet=tablet, cohort=cohort,
                           program=events.get_program(db, cohort["program_id"]), sessions=today,
                           settings=pairing.settings_of(db, cohort["id"]), titles=registration.FORM_TITLES,
                           roles=[(r, role_label(r)) for r in pairing.tablet_roles(tablet)],
                           walk_ins=registration.walk_in_state(db, tablet),
                           notice={"paragraphs": privacy.NOTICE, "version": privacy.current_notice_version(),
                                   "backup_days": KEEP_DAYS})


@bp.get("/register/areas.json")
def areas():
    """Provinces, districts and subdistricts (geothai, CC-BY-4.0) for the form's lists."""
    data = current_app.extensions.get("register_areas")
    if data is None:
        data = current_app.extensions["register_areas"] = current_app.json.dumps(area_lists())
    response = current_app.response_class(data, mimetype="application/json")
    response.cache_control.max_age = 86400
    return response


@bp.get("/sw.js")
def service_worker():
    """The service worker, served from the root so that it may answer for every tablet page."""
    response = current_app.send_static_file("js/sw.js")
    response.headers["Service-Worker-Allowed"] = "/"
    response.cache_control.no_cache = True
    return response


def _pair(code: str):
    try:
        tablet, token = pairing.claim_pairing(get_db(), code)
    except KioskError as exc:
        return render_template("error.html", message=user_message(exc), status=exc.status), exc.status
    lang = current_language()  # read first: it also takes a ?lang= on the pairing link
    session.clear()  # a registration tablet carries no staff login
    session["lang"] = lang
    response = make_response(redirect(url_for("register.page")))
    response.set_cookie(TABLET_COOKIE, token, max_age=TABLET_COOKIE_AGE, httponly=True, samesite="Lax",
                        secure=bool(current_app.config["HTTPS"]), path="/")
    current_app.logger.info("tablet %s paired", tablet["id"])
    return response


@bp.get("/register/pair/<code>")
def pair(code):
    """Opens the pairing link: this browser becomes the cohort's registration tablet."""
    return _pair(code)


@bp.get("/r/<code>")
def pair_short(code):
    """The short pairing link typed from the kiosk's screen."""
    return _pair(code)


def _tablet_json():
    """(tablet, body) for a tablet's JSON request, or (None, error response)."""
    tablet = current_tablet()
    if tablet is None:
        return None, error_response("not_paired")
    if (request.content_length or 0) > MAX_BODY:
        return None, error_response("payload_too_large")
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict):
        return None, error_response("bad_json")
    if not limiter().allow(tablet["id"]):
        return None, error_response("too_many_requests")
    return tablet, body


@bp.post("/register/submit")
def submit():
    """Registers the person on the form; answers their badge, or what to fix, or "already registered?"."""
    tablet, body = _tablet_json()
    if tablet is None:
        return body
    fields = body.get("fields") if isinstance(body.get("fields"), dict) else {}
    deferred = body.get("deferred") is True
    try:
        done = registration.register_walk_in(
            get_db(), tablet, fields, body.get("key"), late=contact.late_claim(_device(tablet), body, "made_at"),
            confirm_new=body.get("confirm_new") is True, deferred=deferred)
    except registration.RegistrationError as exc:
        return _refusal(exc)
    except KioskError as exc:
        return error_of(exc)
    return _registered(tablet, done)


def _device(tablet: dict) -> str:
    return f"tablet:{tablet['id']}"


@bp.post("/register/contact")
def heartbeat():
    """The tablet reaches the laptop: a fresh contact stamp (kiosk.web.contact) and whether the
    cohort is full now."""
    tablet = current_tablet()
    if tablet is None:
        return error_response("not_paired")
    return jsonify({"ok": True, **contact.stamp(_device(tablet)),
                    "walk_ins": registration.walk_in_state(get_db(), tablet)})


def _refusal(exc: registration.RegistrationError):
    if exc.errors:
        errors = {name: {"reason": e.reason, "message": reason_message(e.reason)} for name, e in exc.errors.items()}
        return error_response(exc.reason, status=exc.status, errors=errors)
    if exc.matches:  # which typed facts match someone: nothing of that someone
        return error_response(exc.reason, status=exc.status, matches=exc.matches)
    return error_of(exc)


def _registered(tablet: dict, done: registration.Registration):
    db = get_db()
    card = registration.badge_view(db, done)
    result = registration.check_in_now(db, tablet, done)
    badge = None
    if card:
        link = url_for("register.badge_pdf", t=_sign("badge", tablet, card.pop("ref")))  # no code in a URL
        badge = {**card, "role_name": role_label(card["role"]), "display_code": display_code(card["code"]),
                 "qr": ["".join("1" if dark else "0" for dark in row) for row in qr_matrix(card["code"], mask=2)],
                 "pdf_url": link}
    return jsonify({"ok": True, "status": done.status, "replayed": done.replayed, "made_at": done.made_at,
                    "name": full_name(done.person), "badge": badge,
                    "checkin": door.result_json(result) if result else None, **contact.stamp(_device(tablet))})


@bp.get("/register/badge.pdf")
def badge_pdf():
    """The badge just shown, as a PDF to print (A6, or ?paper=a4), built in memory."""
    tablet = current_tablet()
    badge_id = _unsign("badge", tablet, request.args.get("t")) if tablet else None
    card = registration.current_card(get_db(), badge_id) if badge_id else None
    if card is None:
        abort(404)
    paper = "a4" if request.args.get("paper") == "a4" else "a6"
    data = pdf.badge_pdf(card, paper)
    return send_file(io.BytesIO(data), mimetype="application/pdf", download_name=f"badge-{paper}.pdf",
                     max_age=0)


# --- the coordinator --------------------------------------------------------------------------


def _pair_url(code: str) -> str:
    """The short pairing link with an address a tablet can reach (not the laptop's loopback)."""
    host = request.host
    if request.host.split(":")[0] in ("127.0.0.1", "localhost"):
        from kiosk.ops.tls import lan_addresses

        found = lan_addresses()
        if found:
            port = request.host.rsplit(":", 1)[1] if ":" in request.host else ""
            host = found[0] + (f":{port}" if port else "")
    return f"{request.scheme}://{host}" + url_for("register.pair_short", code=code.replace("-", ""))


def _tablets_page(cohort: dict, paired: dict | None = None):
    db = get_db()
    link = _pair_url(paired["code"]) if paired else None
    return render_template("tablets.html", cohort=cohort, program=events.get_program(db, cohort["program_id"]),
                           tablets=pairing.tablets_of(db, cohort["id"]),
                           settings=pairing.settings_of(db, cohort["id"]), paired=paired, link=link,
                           qr=qr_data_uri(link) if link else None, modes=pairing.QUOTA_MODES,
                           roles=[(r, role_label(r)) for r in ROLES], offered=pairing.tablet_roles)


@bp.get("/cohorts/<cohort_id>/tablets")
@login_required("coordinator")
def tablets(cohort_id):
    """The cohort's registration tablets: pair, revoke, and the registration settings."""
    return _tablets_page(events.cohort_by_id(get_db(), cohort_id) or abort(404))


@bp.post("/cohorts/<cohort_id>/tablets")
@login_required("coordinator")
def add_tablet(cohort_id):
    """A pairing code for a new tablet, shown once as a QR and a short link."""
    cohort = events.cohort_by_id(get_db(), cohort_id) or abort(404)
    try:
        paired = pairing.pair_tablet(get_db(), cohort_id, request.form.get("label", ""),
                                     current_user()["username"])
    except KioskError as exc:
        flash(user_message(exc), "error")
        return redirect(url_for("register.tablets", cohort_id=cohort_id))
    return _tablets_page(cohort, paired)


def _tablets_change(cohort_id: str, change, done: str):
    """Runs one change of the tablets page, says how it went, and goes back to that page."""
    try:
        change()
    except KioskError as exc:
        flash(user_message(exc), "error")
    else:
        flash(done, "ok")
    return redirect(url_for("register.tablets", cohort_id=cohort_id))


def _tablet_or_404(tablet_id: str) -> dict:
    return pairing.get_tablet(get_db(), tablet_id) or abort(404)


@bp.post("/tablets/<tablet_id>/revoke")
@login_required("coordinator")
def revoke(tablet_id):
    """Unpairs a tablet at once."""
    tablet = _tablet_or_404(tablet_id)
    return _tablets_change(tablet["cohort_id"], lambda: pairing.revoke_tablet(get_db(), tablet_id),
                           _("The tablet is unpaired."))


@bp.post("/tablets/<tablet_id>/roles")
@login_required("coordinator")
def set_roles(tablet_id):
    """The roles a walk-in may choose on this tablet."""
    tablet = _tablet_or_404(tablet_id)
    return _tablets_change(tablet["cohort_id"],
                           lambda: pairing.set_roles(get_db(), tablet_id, request.form.getlist("roles")), _("Saved."))


@bp.post("/tablets/<tablet_id>/resume")
@login_required("coordinator")
def resume(tablet_id):
    """Resumes a tablet paused after finding several people already registered."""
    tablet = _tablet_or_404(tablet_id)
    return _tablets_change(tablet["cohort_id"], lambda: pairing.resume_tablet(get_db(), tablet_id),
                           _("The tablet takes registrations again."))


@bp.post("/cohorts/<cohort_id>/registration-settings")
@login_required("coordinator")
def save_settings(cohort_id):
    """What a full cohort does, its capacity, immediate check-in, and the idle time of the tablets' form."""
    events.cohort_by_id(get_db(), cohort_id) or abort(404)
    form = request.form
    return _tablets_change(cohort_id, lambda: pairing.save_settings(
        get_db(), cohort_id, form.get("quota_mode", ""), bool(form.get("checkin_on_register")),
        form.get("idle_seconds"), capacity=form.get("capacity")), _("Saved."))
