"""The national dashboard's pages (coordinators): a program by area, cohort, session and role, its
tile map, downloads of what is shown and of the people of an area, and the live rooms of a session.

No SQL and no rules here: `sync.central.national` and `sync.central.rooms` count, this module
reads the query string, renders and streams.
"""

from __future__ import annotations

import os
import tempfile

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request, url_for

from kiosk.reports.export import csv_stream, write_xlsx
from kiosk.thai import ROLES
from sync.central import national, rooms
from sync.central.views import require_login

bp = Blueprint("national", __name__)
bp.before_request(require_login)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def storage():
    return current_app.extensions["central_storage"]


def _program(program_id: str) -> dict:
    found = storage().entity_row(program_id, "programs", program_id)
    return found if found else abort(404)


def _view(program_id: str) -> national.View:
    """The page's view from the query string; 404 for a cohort or session not of the program."""
    area, role = request.args.get("area", ""), request.args.get("role") or None
    if area and not (area.isdigit() and len(area) in (2, 4, 6)) or role and role not in ROLES:
        abort(404)
    number = request.args.get("cohort", type=int)
    cohort = national.cohort_id(storage(), program_id, number) if number is not None else None
    session_id = request.args.get("session") or None
    session = national.session_of(storage(), program_id, session_id) if session_id else None
    if number is not None and cohort is None or session_id and session is None:
        abort(404)
    if session and cohort not in (None, session["cohort_id"]):
        abort(404)
    cohort = session["cohort_id"] if session else cohort
    return national.View(program_id, area, cohort, role, session_id)


def _args(view: national.View, numbers: dict, **changes) -> dict:
    """The query string of `view` with `changes` (None drops a filter): links keep the other filters."""
    view = view.with_(**changes)
    cohort = numbers.get(view.cohort_id, {}).get("number") if view.cohort_id else None
    found = {"area": view.area, "cohort": cohort, "role": view.role, "session": view.session_id}
    return {k: v for k, v in found.items() if v not in (None, "")}


@bp.get("/national/<program_id>")
def program(program_id):
    """One program: the headline, the map (whole country) or the areas one level down, and more."""
    found, view = _program(program_id), _view(program_id)
    page = national.dashboard(storage(), view)
    return render_template("central/national.html", program=found, page=page, view=view,
                           link=lambda **changes: url_for("national.program", program_id=program_id,
                                                          **_args(view, page["cohort_numbers"], **changes)),
                           here=_args(view, page["cohort_numbers"]), trail=_trail(view.area), roles=ROLES)


def _trail(area: str) -> list[tuple[str, str]]:
    """The areas above this one, from the country down: (code, name)."""
    from kiosk.reports.rows import area_name

    return [("", "ทั้งประเทศ")] + [(area[:n], area_name(area[:n])) for n in (2, 4) if len(area) > n]


@bp.get("/national/<program_id>/table.<fmt>")
def table(program_id, fmt):
    """What the page shows (the headline, areas, cohorts, roles, sessions), as CSV or XLSX."""
    _program(program_id)
    view = _view(program_id)
    return _download(national.shown_tables(national.dashboard(storage(), view)), fmt,
                     f"national-{view.area or 'th'}")


@bp.get("/national/<program_id>/people.<fmt>")
def people(program_id, fmt):
    """The people of the page's area and filters with their sessions, streamed row by row."""
    _program(program_id)
    view = _view(program_id)
    return _download([national.people_table(storage(), view)], fmt, f"people-{view.area or 'th'}")


def _download(tables: list, fmt: str, name: str) -> Response:
    if fmt == "csv":
        return Response(csv_stream(tables), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt != "xlsx":
        abort(404)
    handle, path = tempfile.mkstemp(suffix=".xlsx", dir=current_app.config["CENTRAL_DATA"])
    os.close(handle)
    try:
        write_xlsx(tables, path)
    except BaseException:
        os.unlink(path)
        raise
    return Response(_file_chunks(path), mimetype=XLSX, direct_passthrough=True,
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"',
                             "Content-Length": str(os.path.getsize(path))})


def _file_chunks(path: str, size: int = 1 << 16):
    """A file's bytes in pieces, the file removed once sent (or the client gone)."""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(size):
                yield chunk
    finally:
        os.unlink(path)


@bp.get("/live/<program_id>/<session_id>")
def live(program_id, session_id):
    """Each room's count of a session against the people it expects; the page refreshes itself."""
    found = _program(program_id)
    session = national.session_of(storage(), program_id, session_id) or abort(404)
    return render_template("central/live.html", program=found, live=rooms.live_rooms(storage(), program_id, session))


@bp.get("/live/<program_id>/<session_id>.json")
def live_json(program_id, session_id):
    """The live counts for the page's script."""
    _program(program_id)
    session = national.session_of(storage(), program_id, session_id) or abort(404)
    found = rooms.live_rooms(storage(), program_id, session)
    return jsonify({"ok": True, "present": found["present"], "expected": found["expected"],
                    "percent": found["percent"], "rooms": found["rooms"]})
