"""The kiosk's report pages and papers (coordinators), and the public certificate check."""

from __future__ import annotations

import io

from flask import Blueprint, abort, request, send_file

from kiosk.documents import papers
from kiosk.ops import log
from kiosk.program import events
from kiosk.reports.settings import kiosk_writer
from kiosk.reports.sources import kiosk_dataset, kiosk_reader
from kiosk.reports.verify import person_dataset, verify_certificate
from kiosk.store.db import get_db
from kiosk.trust.programkeys import program_keys
from kiosk.web.access import current_user, login_required
from kiosk.webkit.report_views import register_report_views, verify_view

bp = Blueprint("reports", __name__, url_prefix="/reports")


class KioskSource:
    """The report views' rows from this kiosk's database."""

    def dataset(self, program_id, cohort_number=None, province=None):
        db = get_db()
        if not events.get_program(db, program_id):
            return None
        cohort = events.get_cohort(db, program_id, cohort_number) if cohort_number else None
        if cohort_number and not cohort:
            return None
        data = kiosk_dataset(db, program_id, cohort["id"] if cohort else None)
        return data.restricted(province_code=province) if province else data

    def reader(self):
        return kiosk_reader(get_db())

    def program_key(self, program_id):
        return program_keys(get_db()).get(program_id)

    def writer(self):
        return kiosk_writer(get_db())

    def author(self):
        return current_user()["username"]

    def verify(self, code):
        db = get_db()
        return verify_certificate(code, program_keys(db), lambda program_id, participant_id: person_dataset(
            kiosk_reader(db), program_id, participant_id))


SOURCE = KioskSource()
register_report_views(bp, SOURCE, "base.html", guard=login_required("coordinator"))


@bp.get("/sessions/<session_id>/sheet.pdf")
@login_required("coordinator")
def sheet_pdf(session_id):
    """A session's signature sheet; ?blank=1 for walk-in rows only."""
    db = get_db()
    session = events.get_session(db, session_id) or abort(404)
    data = kiosk_dataset(db, session["program_id"], session["cohort_id"])
    blank = bool(request.args.get("blank"))
    body = papers.pdf_bytes(papers.sheet, data, session, SOURCE.program_key(session["program_id"]), blank=blank)
    # a day's morning and afternoon sheets, and the blank one, each get a name of their own
    name = f"sheet-cohort-{data.cohorts[0]['number']}-{session['day']}-{session['slot']}{'-blank' if blank else ''}.pdf"
    log.audit(name, SOURCE.author(), session_id=session_id)
    return send_file(io.BytesIO(body), mimetype="application/pdf", as_attachment=True, download_name=name)


public = Blueprint("verify", __name__)
public.add_url_rule("/verify", "verify", verify_view(SOURCE, "base.html"))
public.add_url_rule("/verify/<code>", "verify_code", verify_view(SOURCE, "base.html"))
