"""Report pages and downloads, registered on a blueprint for a source of rows.

The kiosk (`kiosk.web.reports`) and the central server (`sync.central.report_views`) register the
same views over their own `source`, which answers:
  reader() -> kiosk.reports.aggregates.Reader   (the attendance page and the filters: SQL counts)
  dataset(program_id, cohort_number, province) -> Dataset | None   (None: no such program/cohort)
  program_key(program_id) -> bytes | None
  writer() -> write(program_id, entity, entity_id, fields)
  author() -> the logged-in user's name
The views hold no SQL and no rules: rows come from the source, numbers from kiosk.reports.
"""

from __future__ import annotations

import io

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from kiosk.clock import local_day
from kiosk.documents import papers
from kiosk.errors import KioskError, PeopleError, message_of
from kiosk.ops import log
from kiosk.reports import aggregates, pages
from kiosk.reports.certificates import make_rule
from kiosk.reports.rows import AREA_LEVELS
from kiosk.reports.settings import save_progress_entry, set_allowance_rate, set_certificate_rule

FORMATS = ("csv", "xlsx")
# Pages listing every person (the grid, certificates, allowances, progress, the report file) read
# the selection's people into memory: above this many, a coordinator narrows to a cohort or a
# province first (a national program has a million; central's dashboard streams its people).
PERSON_LIMIT = 20_000
ERRORS = (KioskError, PeopleError)  # PeopleError: a signer name that looks like a formula


def _report_name(kind: str, data, fmt: str) -> str:
    """A download's name that says what it holds: attendance-cohort-1-2026-12-07.xlsx."""
    cohort = f"-cohort-{data.cohorts[0]['number']}" if len(data.cohorts) == 1 else ""
    return f"{kind}{cohort}-{local_day().isoformat()}.{fmt}"


def _filters() -> dict:
    return {"cohort": request.args.get("cohort", type=int), "province": request.args.get("province") or None}


def _download(body: bytes, mimetype: str, name: str, who: str | None):
    """The file as a download; a line in the log says who took it (every one names people)."""
    log.audit(name, who)
    return send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True, download_name=name)


def _flash_error(exc) -> None:
    flash(_(message_of(exc.reason)), "error")


def register_report_views(bp, source, layout: str, guard=lambda view: view) -> None:
    """Adds the report views to `bp`; `guard` wraps each (a coordinator's login)."""

    def data_or_404(program_id):
        f = _filters()
        selected = selection_or_404(program_id)[1]
        count = aggregates.people_count(source.reader(), selected)
        if count > PERSON_LIMIT:
            flash(_("This selection has %(count)s people: choose a cohort or a province to list them one by one.",
                    count=f"{count:,}"), "error")
            abort(redirect(url_for(f"{bp.name}.attendance", program_id=program_id,
                                   **{k: v for k, v in f.items() if v})))
        found = source.dataset(program_id, f["cohort"], f["province"])
        return found if found is not None else abort(404)

    def render(template, program_id, program, **extra):
        reader = source.reader()
        cohorts = [{"id": i, "number": n} for i, n in aggregates.cohort_numbers(
            reader, aggregates.Selection(program_id)).items()]
        args = {k: v for k, v in _filters().items() if v}
        return render_template(template, layout=layout, ep=bp.name, program=program, filters=_filters(), args=args,
                               cohorts=cohorts, provinces=aggregates.provinces(reader, program_id), **extra)

    def selection_or_404(program_id):
        reader, f = source.reader(), _filters()
        program = aggregates.program_row(reader, program_id) or abort(404)
        cohort = aggregates.cohort_id(reader, program_id, f["cohort"]) if f["cohort"] is not None else None
        if f["cohort"] is not None and cohort is None:
            abort(404)
        return program, aggregates.Selection(program_id, cohort, f["province"])

    def back(endpoint, program_id):
        return redirect(url_for(f"{bp.name}.{endpoint}", program_id=program_id,
                                **{k: v for k, v in _filters().items() if v}))

    @guard
    def attendance(program_id):
        program, selected = selection_or_404(program_id)
        counted = aggregates.summary(source.reader(), selected, request.args.get("level"))
        return render("reports/attendance.html", program_id, program, page=pages.attendance_page(counted))

    @guard
    def report_file(program_id, fmt):
        if fmt not in FORMATS:
            abort(404)
        data, level = data_or_404(program_id), request.args.get("level")
        body, mime = papers.report(data, fmt, level if level in AREA_LEVELS else None)
        return _download(body, mime, _report_name("attendance", data, fmt), source.author())

    @guard
    def grid(program_id):
        data = data_or_404(program_id)
        return render("reports/grid.html", program_id, data.program, page=pages.grid_page(data))

    @guard
    def certificates(program_id):
        data = data_or_404(program_id)
        if request.method == "POST":
            form = request.form
            try:
                rule = make_rule(form.get("kind", ""), form.get("min_percent"), form.get("signer_name", ""),
                                 form.get("signer_position", ""), bool(form.get("thai_digits")),
                                 form.get("verify_url", ""))
                set_certificate_rule(source.writer(), program_id, rule)
            except ERRORS as exc:
                _flash_error(exc)
                return render("reports/certificates.html", program_id, data.program,
                              page=pages.certificate_page(data)), 400
            flash(_("The certificate rule is saved."), "ok")
            return back("certificates", program_id)
        return render("reports/certificates.html", program_id, data.program, page=pages.certificate_page(data))

    @guard
    def certificates_pdf(program_id):
        data = data_or_404(program_id)
        body = papers.pdf_bytes(papers.certificates, data, source.program_key(program_id))
        return _download(body, "application/pdf", _report_name("certificates", data, "pdf"), source.author())

    @guard
    def certificate_list(program_id, fmt):
        if fmt not in FORMATS:
            abort(404)
        data = data_or_404(program_id)
        body, mime = papers.certificate_list(data, fmt)
        return _download(body, mime, _report_name("certificate-list", data, fmt), source.author())

    @guard
    def allowances(program_id):
        data = data_or_404(program_id)
        if request.method == "POST":
            try:
                set_allowance_rate(source.writer(), program_id, request.form.get("rate", ""))
            except ERRORS as exc:
                _flash_error(exc)
                return render("reports/allowances.html", program_id, data.program, sheet=None), 400
            flash(_("The allowance rate is saved."), "ok")
            return back("allowances", program_id)
        rate = data.program.get("allowance_rate")
        sheet = papers.allowance_rows(data, rate) if rate is not None else None
        return render("reports/allowances.html", program_id, data.program, sheet=sheet)

    @guard
    def allowances_pdf(program_id):
        data = data_or_404(program_id)
        rate = data.program.get("allowance_rate")
        if rate is None:
            abort(404)
        return _download(papers.pdf_bytes(papers.allowances, data, rate), "application/pdf",
                         _report_name("allowances", data, "pdf"), source.author())

    @guard
    def progress(program_id):
        data = data_or_404(program_id)
        if request.method == "POST":
            cohort = data.cohorts[0]["id"] if _filters()["cohort"] and data.cohorts else None
            form = request.form
            try:
                save_progress_entry(source.writer(), program_id, cohort, form.get("period", ""),
                                    form.get("problems", ""), form.get("obstacles", ""), source.author())
            except ERRORS as exc:
                _flash_error(exc)
                return render("reports/progress.html", program_id, data.program, page=pages.progress_page(data)), 400
            flash(_("The progress entry is saved."), "ok")
            return back("progress", program_id)
        return render("reports/progress.html", program_id, data.program, page=pages.progress_page(data))

    rules = (("/<program_id>", attendance, ["GET"]), ("/<program_id>/report.<fmt>", report_file, ["GET"]),
             ("/<program_id>/grid", grid, ["GET"]), ("/<program_id>/certificates", certificates, ["GET", "POST"]),
             ("/<program_id>/certificates.pdf", certificates_pdf, ["GET"]),
             ("/<program_id>/certificate-list.<fmt>", certificate_list, ["GET"]),
             ("/<program_id>/allowances", allowances, ["GET", "POST"]),
             ("/<program_id>/allowances.pdf", allowances_pdf, ["GET"]),
             ("/<program_id>/progress", progress, ["GET", "POST"]))
    for rule, view, methods in rules:
        bp.add_url_rule(rule, view.__name__, view, methods=methods)


def verify_view(source, layout: str):
    """The public page for a certificate's QR: whose it is (name, program, dates), nothing else."""

    def verify(code=None):
        code = code or request.args.get("code", "")
        found = source.verify(code) if code else None
        status = 200 if found or not code else 404
        action = url_for(f"{request.blueprint}.verify")
        return render_template("reports/verify.html", layout=layout, code=code, found=found, action=action), status
    return verify
