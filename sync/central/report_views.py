"""The central server's report pages across venues: the kiosk's views over central's rows,
filterable by program, cohort and province; and the public certificate check."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template

from kiosk.webkit.language import role_label, thai_date
from kiosk.webkit.report_views import register_report_views, verify_view
from sync.central import national, reports
from sync.central.views import require_login

bp = Blueprint("central_reports", __name__, url_prefix="/reports")
public = Blueprint("central_verify", __name__)


def storage():
    return current_app.extensions["central_storage"]


class CentralSource:
    """The report views' rows from the central server's storage."""

    def dataset(self, program_id, cohort_number=None, province=None):
        return reports.central_dataset(storage(), program_id, cohort_number, province)

    def reader(self):
        return reports.central_reader(storage())

    def program_key(self, program_id):
        return reports.program_key(storage(), program_id)

    def writer(self):
        return storage().originate

    def author(self):
        return g.user["username"]

    def verify(self, code):
        return reports.verify(storage(), code)


bp.before_request(require_login)


@bp.get("/")
def index():
    """Every program on central, each linking to its reports (counted by the database)."""
    return render_template("central/reports.html", programs=national.programs_overview(storage()))


SOURCE = CentralSource()
register_report_views(bp, SOURCE, "central/base.html")
public.add_url_rule("/verify", "verify", verify_view(SOURCE, "central/base.html"))
public.add_url_rule("/verify/<code>", "verify_code", verify_view(SOURCE, "central/base.html"))


def register(app) -> None:
    """Adds the report pages and the public /verify to the central app."""
    app.register_blueprint(bp)
    app.register_blueprint(public)
    app.jinja_env.filters.setdefault("thai_date", thai_date)
    app.jinja_env.filters.setdefault("role", role_label)
